"""Sign-in for a team: once the store has an account, every page shows only this until someone signs in.

The app's entry (app.py) calls `require_sign_in` once per run, before the navigation, so no page (and no deep
link, which runs through app.py too) draws anything for a signed-out session. The session keeps only a random
token; the store says whose it is, and signing out deletes it there, so a replayed session signs nobody in.
"""

from __future__ import annotations

import streamlit as st

from workbench import accounts, roles
from workbench.errors import WorkbenchError
from workbench.markup import escape_markdown
from workbench.store import Store

TOKEN = "account_token"  # session key: the token of the signed-in session
ACCOUNT = "account"  # session key: the signed-in account's name (the author of every change)


def require_sign_in(store: Store, pages: list[st.Page]) -> str | None:
    """The signed-in account's name, or None in solo mode; a signed-out session sees the sign-in and stops."""
    if not accounts.team_mode(store):
        st.session_state.pop(ACCOUNT, None)
        roles.set_actor(None)
        return None
    name = accounts.session_account(store, st.session_state.get(TOKEN)) or _oidc_account(store)
    if name is None:
        st.session_state.pop(ACCOUNT, None)
        roles.set_actor(None)

        def sign_in() -> None:
            _sign_in_form(store)

        # Every address of the app shows the sign-in, with no navigation (not even the pages/ folder's own list,
        # which Streamlit draws for a deep link that ran before the app's navigation existed); signed in, the
        # same address opens the page that was asked for.
        st.navigation(
            [  # the default page's address is the root ("")
                st.Page(
                    sign_in,
                    title="Sign in",
                    **({"url_path": p.url_path} if p.url_path else {"default": True}),
                )
                for p in pages
            ],
            position="hidden",
        ).run()
        st.stop()
    st.session_state[ACCOUNT] = name
    roles.set_actor(name)
    role = accounts.account_role(store, name)
    with st.sidebar:
        st.markdown(f"Signed in as **{escape_markdown(name)}** · {role}")
        st.button("Sign out", key="sign_out", on_click=_sign_out, args=(store,), icon=":material/logout:")
    return name


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no .streamlit/secrets.toml at all
        return False


def _oidc_account(store: Store) -> str | None:
    """With an [auth] section in .streamlit/secrets.toml, the organisation's sign-in (st.login): the account
    named by the e-mail address it vouches for."""
    if not _oidc_configured() or not st.user.is_logged_in:
        return None
    email = st.user.get("email")
    if email and accounts.account_role(store, email) is not None:
        return email
    st.error(
        f"{escape_markdown(email or 'this sign-in')} has no account in this workbench: ask an owner to add it "
        f"(workbench users add {escape_markdown(email or 'EMAIL')} --role labeller)."
    )
    return None


def _sign_in_form(store: Store) -> None:
    st.title("Sign in")
    st.caption("This workbench is shared by a team: sign in with the account an owner gave you.")
    with st.form("sign_in", enter_to_submit=True):
        name = st.text_input("Account", key="sign_in_name")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            session = accounts.sign_in(store, name, password)
        except WorkbenchError as exc:
            st.error(escape_markdown(exc))
        else:
            st.session_state[TOKEN] = session.token
            st.rerun()
    if _oidc_configured():
        st.button("Sign in with your organisation", on_click=st.login)


def _sign_out(store: Store) -> None:
    token = st.session_state.get(TOKEN)
    if token:
        accounts.sign_out(store, token)
    for key in list(st.session_state.keys()):
        del st.session_state[key]  # nothing of the signed-in person stays in this browser session
    if _oidc_configured() and st.user.is_logged_in:
        st.logout()
