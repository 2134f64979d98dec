"""The browser workbench: `make app` (or `workbench app`) runs this with Streamlit."""

import getpass
import os

import streamlit as st

from workbench.errors import StoreBusyError

st.set_page_config(page_title="sft-workbench", page_icon=":material/build:", layout="wide")
page = st.navigation(
    {
        "Work": [
            st.Page("pages/overview.py", title="Overview", icon=":material/bar_chart:", default=True),
            st.Page("pages/review.py", title="Review", icon=":material/rate_review:"),
            st.Page("pages/quality.py", title="Quality", icon=":material/rule:"),
            st.Page("pages/coverage.py", title="Coverage", icon=":material/target:"),
            st.Page("pages/clusters.py", title="Clusters", icon=":material/bubble_chart:"),
        ],
        "Data": [
            st.Page("pages/imports.py", title="Import", icon=":material/upload_file:"),
        ],
        "Model": [
            st.Page("pages/playground.py", title="Playground", icon=":material/chat:"),
            st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
            st.Page("pages/evaluate.py", title="Evaluate", icon=":material/compare_arrows:"),
        ],
    }
)
# Who is working: every revision the app writes carries this name.
st.sidebar.text_input(
    "Your name",
    value=getpass.getuser(),
    key="author",
    help="Saved with every change you make, in each record's history.",
)
# Pages run inside this frame. A link opened before this file has run once in the server (a bookmark
# after `make app`) makes Streamlit run the page alone, as if from a plain pages/ folder: the page
# then runs this file itself, which runs the page inside the frame (see the top of each page).
st.session_state["in_frame"] = True
# `make app` asks for the demo workspace in an empty store (WORKBENCH_DEMO_ON_EMPTY=1): built once, with progress.
if os.environ.get("WORKBENCH_DEMO_ON_EMPTY") == "1" and not st.session_state.get("demo_checked"):
    from workbench.demo import build_demo, store_is_empty
    from workbench.store import Store

    st.session_state["demo_checked"] = True
    demo_store = Store.open()
    if store_is_empty(demo_store):
        with st.status(
            "The store is empty: building the demo workspace (a few minutes, once)", expanded=True
        ) as box:
            build_demo(demo_store, progress=box.write, author=st.session_state.get("author") or "demo")
            box.update(label="The demo workspace is ready", state="complete", expanded=False)
try:
    page.run()
except (
    StoreBusyError
) as exc:  # the store busy or a conflict anywhere in a page: the message and Retry, no traceback
    st.error(str(exc))
    st.button("Retry", key="app_busy_retry")
