"""The browser workbench: `make app` (or `workbench app`) runs this with Streamlit."""

import getpass

import streamlit as st

st.set_page_config(page_title="sft-workbench", page_icon=":material/build:", layout="wide")
page = st.navigation({
    "Work": [
        st.Page("pages/overview.py", title="Overview", icon=":material/bar_chart:", default=True),
        st.Page("pages/review.py", title="Review", icon=":material/rate_review:"),
    ],
})
# Who is working: every revision the app writes carries this name.
st.sidebar.text_input("Your name", value=getpass.getuser(), key="author",
                      help="Saved with every change you make, in each record's history.")
page.run()
