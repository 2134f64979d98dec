"""The frame every page starts with: `page = page_frame("Title", "what it is for")` opens the store (once per
server), names the author, shows the last action's message and turns a store error into a message with Retry."""

from __future__ import annotations

import runpy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple, NoReturn

import streamlit as st

from workbench.errors import WorkbenchError
from workbench.markup import escape_markdown
from workbench.store import Store, default_root

APP = Path(__file__).resolve().parent.parent / "app.py"
FLASH = "flash"  # session key of the message an action leaves for the next run: (kind, text)


class Page(NamedTuple):
    """What a page works with: the store, and who is working (every revision it writes carries the name):
    `store, author = page_frame(...)`."""

    store: Store
    author: str


@st.cache_resource(show_spinner=False)
def open_store(root: str) -> Store:
    return Store.open(root)  # folders and schema checked once per process; the file is opened per call


def page_frame(title: str, caption: str, *, show_message: bool = True) -> Page:
    """The top of every page: its title and line, the store and the author; the message an action left
    (unless the page shows it in its own place, `show_flash`)."""
    if not st.session_state.get("in_frame"):
        # A link opened before the app's entry ran once in this server (a bookmark after `make app`):
        # Streamlit runs the page alone. Run the entry instead, which builds the navigation and runs this page.
        runpy.run_path(str(APP))
        st.stop()
    st.title(title)
    st.caption(caption)
    with stop_on_error():
        store = open_store(str(default_root()))
    if show_message:
        show_flash()
    # a team's signed-in account (ui/sign_in.py, run by app.py before any page), else the "Your name" box
    return Page(store, st.session_state.get("account") or st.session_state.get("author") or "app")


def flash(kind: str, text: object) -> None:
    """Leave a message for the next run of the page: kind is success, info, warning or error."""
    st.session_state[FLASH] = (kind, str(text))


def has_flash() -> bool:
    return bool(st.session_state.get(FLASH))


def show_flash() -> None:
    message = st.session_state.pop(FLASH, None)
    if message:
        kind, text = message
        getattr(st, kind)(escape_markdown(text))  # it names categories, files and errors: text, not markdown


def fail(exc: Exception, *, more: Callable[[], None] | None = None) -> NoReturn:
    """A busy store or a bad link: say what is wrong and offer Retry (and `more`, another way out), never a
    traceback; the rest of the page is not drawn."""
    st.error(escape_markdown(exc))
    with st.container(horizontal=True):
        st.button("Retry", key="retry")
        if more is not None:
            more()
    st.stop()


@contextmanager
def stop_on_error(more: Callable[[], None] | None = None) -> Iterator[None]:
    """`with stop_on_error(): ...` reads what the page shows; a WorkbenchError ends the page with Retry."""
    try:
        yield
    except WorkbenchError as exc:
        fail(exc, more=more)
