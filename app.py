"""The browser workbench: `make app` (or `workbench app`) runs this with Streamlit."""

import getpass
import os

import streamlit as st

import ui
from ui.sign_in import require_sign_in
from workbench.errors import ForbiddenError, StoreBusyError
from workbench.markup import escape_markdown
from workbench.store import default_root

st.set_page_config(page_title="sft-workbench", page_icon=":material/build:", layout="wide")
PAGES = {
    "Work": [
        st.Page("pages/overview.py", title="Overview", icon=":material/bar_chart:", default=True),
        st.Page("pages/review.py", title="Review", icon=":material/rate_review:"),
        st.Page("pages/quality.py", title="Quality", icon=":material/rule:"),
        st.Page("pages/coverage.py", title="Coverage", icon=":material/target:"),
        st.Page("pages/clusters.py", title="Clusters", icon=":material/bubble_chart:"),
        st.Page("pages/agreement.py", title="Agreement", icon=":material/groups:"),
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
# A team's store (it has accounts) shows only the sign-in until someone signs in; solo mode passes straight on.
with ui.stop_on_error():
    account = require_sign_in(
        ui.frame.open_store(str(default_root())), [p for group in PAGES.values() for p in group]
    )
page = st.navigation(PAGES)
# Who is working: every revision the app writes carries this name (the signed-in account in a team).
if account is None:
    st.sidebar.text_input(
        "Your name",
        value=getpass.getuser(),
        key="author",
        help="Saved with every change you make, in each record's history.",
    )
# Pages run inside this frame. A link opened before this file has run once in the server (a bookmark
# after `make app`) makes Streamlit run the page alone, as if from a plain pages/ folder: the page's
# ui.page_frame then runs this file itself, which runs the page inside the frame.
st.session_state["in_frame"] = True
# `make app` asks for the demo workspace in an empty store (WORKBENCH_DEMO_ON_EMPTY=1): built once per store by a
# background process (WORKBENCH_DEMO_BASE_MODEL: a local model folder instead of the embedded one;
# WORKBENCH_DEMO_GENERAL_LIMIT: ask only that many general prompts). Every tab, reload and page shows its
# progress until it is ready; closing the browser does not stop it.
if os.environ.get("WORKBENCH_DEMO_ON_EMPTY") == "1":
    from workbench import demo
    from workbench.errors import WorkbenchError
    from workbench.store import Store

    demo_store = Store.open()
    try:
        demo_now = (
            demo.demo_build(demo_store)
            if st.session_state.get("demo_checked")
            else demo.start_demo_build(
                demo_store,
                author=st.session_state.get("author") or "demo",
                base_model=os.environ.get("WORKBENCH_DEMO_BASE_MODEL") or None,
                general_limit=int(os.environ.get("WORKBENCH_DEMO_GENERAL_LIMIT") or 0) or None,
            )
        )
        st.session_state["demo_checked"] = True
    except WorkbenchError as exc:  # the store is busy: the next rerun looks again
        demo_now = None
        st.warning(f"Could not check for the demo workspace: {escape_markdown(exc)}")
    if demo_now is not None and demo_now.running:

        @st.fragment(run_every=1)
        def demo_progress() -> None:
            build = demo.demo_build(demo_store)
            if build is None or not build.running:
                st.rerun(scope="app")
            eta = f"about {build.eta_s / 60:.1f} min left" if build.eta_s is not None else "time left: –"
            st.progress(build.fraction, text=f"{build.fraction:.0%} · {build.stage or 'starting'} · {eta}")

        st.title("Building the demo workspace")
        st.caption(
            "The store is empty, so the demo workspace (food-delivery support, English and Chinese) is being built "
            "once for it: a few minutes. Every tab shows this build; you can close the browser and come back."
        )
        demo_progress()
        st.stop()
    if demo_now is not None and demo_now.state == "failed" and not st.session_state.get("demo_failure_said"):
        st.session_state["demo_failure_said"] = True
        st.error(f"The demo workspace could not be built: {escape_markdown(demo_now.error)}")
try:
    page.run()
except (
    StoreBusyError,
    ForbiddenError,
) as exc:  # busy, a conflict, or not this role's to do: message and Retry
    ui.fail(exc)
