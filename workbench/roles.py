"""Who may do what in team mode: the one place every library entry point asks (`require`).

Solo mode (no account in the store) forbids nothing. In team mode the actor is the signed-in account
(the app) or `WORKBENCH_USER` / `--user` (the CLI). In the CLI this guards against mistakes, not attackers:
whoever can write the store's folder can change anything in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .errors import ForbiddenError
from .store import Store
from .store import accounts as sql
from .store import queues as queue_sql

# The lowest role each action needs; roles are ordered labeller < reviewer < owner.
RANK = {"labeller": 0, "reviewer": 1, "owner": 2}
ACTIONS = {
    "fix": "labeller",  # edit a record, one-click fixes, undo one's own revision
    "approve": "reviewer",  # set a record approved or rejected, settle a disagreement
    "bulk": "reviewer",  # bulk actions and their undo, status of a whole selection
    "import": "owner",
    "export": "owner",
    "train": "owner",
    "evaluate": "owner",
    "contracts": "owner",  # contracts, patterns and settings
    "users": "owner",  # add and remove accounts
    "assign": "owner",  # distribute queues
    "models": "owner",  # register, remove and serve models
    "capture": "labeller",  # save a model's bad answer as a badcase (the Playground)
}
JUDGING = ("approved", "rejected")
USER_ENV = "WORKBENCH_USER"  # the CLI's account

_acting: ContextVar[str | None] = ContextVar("workbench_actor", default=None)
# A background worker runs what its start already checked (the start is a library entry point too).
_started_checked: ContextVar[bool] = ContextVar("workbench_started_checked", default=False)


@contextmanager
def acting_as(name: str | None) -> Iterator[None]:
    """Everything inside acts as `name` (the CLI's --user, the app's signed-in account)."""
    token = _acting.set(name)
    try:
        yield
    finally:
        _acting.reset(token)


@contextmanager
def checked_at_start() -> Iterator[None]:
    """A background worker's body: the action was checked when the job started, in the starter's process."""
    token = _started_checked.set(True)
    try:
        yield
    finally:
        _started_checked.reset(token)


def set_actor(name: str | None) -> None:
    """Act as `name` from here on in this thread's context (a Streamlit page run sets it in its frame)."""
    _acting.set(name)


def current_actor() -> str | None:
    return _acting.get()


def require(store: Store, action: str, author: str | None = None, *, record_id: int | None = None) -> None:
    """Raise ForbiddenError unless the actor may do `action`. The actor is the one set by `acting_as`
    (the signed-in account), else `author`."""
    if store.root is None:  # an in-memory store (workbench check) has no team
        return
    with store.connect(read_only=True) as con:
        require_in(con, action, author, record_id=record_id)


def require_in(con, action: str, author: str | None = None, *, record_id: int | None = None) -> None:
    """`require` inside a transaction the caller already holds."""
    needed = ACTIONS[action]
    if _started_checked.get() or sql.count_accounts(con) == 0:
        return
    actor = current_actor() or author
    if current_actor() and author and author != current_actor():
        raise ForbiddenError(
            f"acting as {current_actor()!r} but writing {author!r} as the author: in a store with accounts "
            f"every change carries the account that made it; leave --author out."
        )
    role = sql.account_role(con, actor) if actor else None
    if role is None:
        who = f"{actor!r} is not an account" if actor else "nobody is signed in"
        raise ForbiddenError(
            f"this store has accounts, so every change needs one: {who}. Sign in in the app, or set "
            f"WORKBENCH_USER (or --user) to your account for the CLI (`workbench users` lists them)."
        )
    if RANK[role] < RANK[needed]:
        raise ForbiddenError(
            f"{actor!r} is a {role}; {action} needs {_who_may(needed)}. Ask an owner "
            f"(`workbench users` lists them) to do it or to change your role."
        )
    # once queues are handed out, a labeller works on the records in their own queue
    if role == "labeller" and record_id is not None and queue_sql.any_active(con):
        if not queue_sql.is_assigned(con, record_id, actor):
            raise ForbiddenError(
                f"record {record_id} is not in {actor!r}'s queue: labellers change the records assigned to them. "
                f"Open Review on your queue, or ask an owner to assign this record to you."
            )


def action_for_changes(changes: dict) -> str:
    """An edit that approves or rejects needs a reviewer; any other edit is a fix."""
    return "approve" if changes.get("status") in JUDGING else "fix"


def _who_may(needed: str) -> str:
    return "an owner" if needed == "owner" else f"a {needed} or an owner"
