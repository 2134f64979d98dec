"""The browser workbench: `make app` (or `workbench app`) runs this with Streamlit."""

import streamlit as st

st.set_page_config(page_title="sft-workbench", page_icon="🛠️", layout="wide")
page = st.navigation([
    st.Page("pages/overview.py", title="Overview", icon="📊", default=True),
])
page.run()
