"""Team accounts: names, roles and argon2 password hashes kept in the store, sign-in and sessions.

No account at all is solo mode (no sign-in, nothing forbidden). A password is never stored, shown or
logged; the hash stays in the store and leaves this module only as a True/False verdict.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import NotFoundError, SignInError, WorkbenchError
from .store import Store
from .store import accounts as sql
from .store.accounts import AccountRow

ROLES = ("labeller", "reviewer", "owner")
MIN_PASSWORD = 8
MAX_NAME = 64
FREE_FAILURES = 5  # failed sign-ins in a row before each further try waits
FIRST_LOCK_S = 30  # the wait after FREE_FAILURES, doubling with each further failure
MAX_LOCK_S = 15 * 60
# Tests set this to "1" for a cheap hash (argon2 at its lowest cost); the product never does.
FAST_HASH_ENV = "WORKBENCH_TEST_FAST_ARGON2"

__all__ = [
    "ROLES",
    "AccountRow",
    "Session",
    "add_account",
    "list_accounts",
    "sign_in",
    "sign_out",
    "team_mode",
]


def _hasher() -> PasswordHasher:
    if os.environ.get(FAST_HASH_ENV) == "1":
        return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    return PasswordHasher()  # argon2id with argon2-cffi's recommended (RFC 9106 low-memory) parameters


_UNKNOWN_HASH: dict[bool, str] = {}


def _hash_for_unknown() -> str:
    """A hash to verify against when the name is unknown, so both failures take the same time."""
    fast = os.environ.get(FAST_HASH_ENV) == "1"
    if fast not in _UNKNOWN_HASH:
        _UNKNOWN_HASH[fast] = _hasher().hash(secrets.token_hex(16))
    return _UNKNOWN_HASH[fast]


@dataclass(frozen=True)
class Session:
    """A signed-in person: the account and the token the browser session keeps (never stored in clear)."""

    name: str
    role: str
    token: str


def check_name(name: str) -> str:
    """An account name: trimmed, 1 to 64 characters, no control characters. Any other text (Chinese,
    angle brackets) is allowed; it is shown as text everywhere."""
    name = unicodedata.normalize("NFC", name.strip())
    if not name or len(name) > MAX_NAME or any(unicodedata.category(c).startswith("C") for c in name):
        raise WorkbenchError(
            f"{name[:MAX_NAME]!r} cannot be an account name: use 1 to {MAX_NAME} characters without "
            f"control characters or line breaks."
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise WorkbenchError(f"there is no role {role!r}; roles are {', '.join(ROLES)}")
    return role


def team_mode(store: Store) -> bool:
    """True once any account exists: then everyone signs in and roles apply."""
    with store.connect(read_only=True) as con:
        return sql.count_accounts(con) > 0


def list_accounts(store: Store) -> list[AccountRow]:
    """Every account with its role (never its hash)."""
    with store.connect(read_only=True) as con:
        return sql.list_accounts(con)


def account_role(store: Store, name: str) -> str | None:
    with store.connect(read_only=True) as con:
        return sql.account_role(con, name)


def add_account(
    store: Store, name: str, role: str, password: str, *, created_by: str | None = None
) -> AccountRow:
    """Create an account. The first account must be an owner (someone has to manage the others); after it,
    only an owner may add accounts (roles.require checks the actor)."""
    from . import roles

    name, role = check_name(name), check_role(role)
    if len(password) < MIN_PASSWORD:
        raise WorkbenchError(
            f"the password for {name!r} is too short: use at least {MIN_PASSWORD} characters"
        )
    password_hash = _hasher().hash(password)
    with store.transaction() as con:
        if sql.count_accounts(con) == 0:
            if role != "owner":
                raise WorkbenchError(
                    f"the first account must be an owner (it manages the others): "
                    f"add {name!r} with --role owner, then the labellers and reviewers"
                )
        else:
            roles.require_in(con, "users", created_by)
        if sql.account_role(con, name) is not None:
            raise WorkbenchError(f"there is already an account {name!r}; pick another name")
        sql.insert_account(con, name, role, password_hash, created_by)
        return next(a for a in sql.list_accounts(con) if a.name == name)


def remove_account(store: Store, name: str, *, actor: str | None = None) -> None:
    """Delete an account and its sessions (its past revisions keep the name)."""
    from . import roles

    with store.transaction() as con:
        roles.require_in(con, "users", actor)
        if sql.account_role(con, name) is None:
            raise NotFoundError(f"there is no account {name!r}; `workbench users` lists them")
        sql.delete_account(con, name)


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(store: Store, name: str, password: str, *, now: datetime | None = None) -> Session:
    """Check a password with argon2 and open a session. After FREE_FAILURES wrong passwords in a row, the
    account refuses every try (right or wrong) for a wait that doubles with each further failure."""
    now = now or datetime.now(UTC)
    name = unicodedata.normalize("NFC", name.strip())
    hasher = _hasher()
    with store.transaction() as con:  # a failure is counted in the store before it is said (no rollback)
        state = sql.sign_in_state(con, name)
        refusal = _check_password(con, hasher, name, state, password, now)
        if refusal is None:
            rehash = hasher.hash(password) if hasher.check_needs_rehash(state.password_hash) else None
            sql.record_success(con, name, rehash)
            token = secrets.token_urlsafe(32)
            sql.insert_session(con, _token_digest(token), name)
            role = sql.account_role(con, name)
    if refusal is not None:
        raise SignInError(refusal)
    return Session(name, role, token)


def _check_password(
    con, hasher: PasswordHasher, name: str, state, password: str, now: datetime
) -> str | None:
    """Why the sign-in is refused (the failure counted), or None when the password is right."""
    if state is not None and state.locked_until is not None and state.locked_until > now:
        wait = int((state.locked_until - now).total_seconds()) + 1
        return (
            f"too many wrong passwords for this account: try again in {wait} s, or ask an owner to reset it"
        )
    try:
        hasher.verify(state.password_hash if state else _hash_for_unknown(), password)
        if state is not None:
            return None
    except (VerificationError, InvalidHashError):
        pass
    if state is not None:
        failures = state.failed_sign_ins + 1
        lock = None
        if failures >= FREE_FAILURES:
            lock = now + timedelta(seconds=min(FIRST_LOCK_S * 2 ** (failures - FREE_FAILURES), MAX_LOCK_S))
        sql.record_failure(con, name, lock)
    return "unknown account or wrong password: check both and try again"


def session_account(store: Store, token: str | None) -> str | None:
    """The account a session token belongs to, or None when it was signed out (or never existed)."""
    if not token:
        return None
    with store.connect(read_only=True) as con:
        return sql.session_account(con, _token_digest(token))


def sign_out(store: Store, token: str) -> None:
    """End a session: its token no longer signs anyone in, even replayed."""
    with store.transaction() as con:
        sql.delete_session(con, _token_digest(token))


LOCAL_ADDRESSES = ("127.0.0.1", "localhost", "::1")


def check_listen_address(store: Store, address: str) -> str:
    """The address the app may listen on: anything beyond this machine only once sign-in is on (an account
    exists), since in solo mode anyone who reaches the port could change the store."""
    if address not in LOCAL_ADDRESSES and not team_mode(store):
        raise WorkbenchError(
            f"refusing to listen on {address}: this store has no accounts, so anyone who reaches the port could "
            f"change it. Add an owner first (workbench users add NAME --role owner) to turn sign-in on, "
            f"or listen on 127.0.0.1."
        )
    return address
