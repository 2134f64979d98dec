"""The SQL of accounts and their sessions (workbench/accounts.py decides what they mean)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .connection import first_row, scalar


@dataclass(frozen=True)
class AccountRow:
    name: str
    role: str
    created_at: datetime
    created_by: str | None


@dataclass(frozen=True)
class SignInState:
    password_hash: str
    failed_sign_ins: int
    locked_until: datetime | None


def count_accounts(con) -> int:
    return scalar(con, "SELECT count(*) FROM accounts")


def list_accounts(con) -> list[AccountRow]:
    rows = con.execute("SELECT name, role, created_at, created_by FROM accounts ORDER BY name").fetchall()
    return [AccountRow(*row) for row in rows]


def account_role(con, name: str) -> str | None:
    return scalar(con, "SELECT role FROM accounts WHERE name = ?", [name])


def insert_account(con, name: str, role: str, password_hash: str, created_by: str | None) -> None:
    con.execute(
        "INSERT INTO accounts (name, role, password_hash, created_by) VALUES (?, ?, ?, ?)",
        [name, role, password_hash, created_by],
    )


def set_role(con, name: str, role: str) -> None:
    con.execute("UPDATE accounts SET role = ? WHERE name = ?", [role, name])


def delete_account(con, name: str) -> None:
    con.execute("DELETE FROM account_sessions WHERE name = ?", [name])
    con.execute("DELETE FROM accounts WHERE name = ?", [name])


def sign_in_state(con, name: str) -> SignInState | None:
    row = first_row(
        con, "SELECT password_hash, failed_sign_ins, locked_until FROM accounts WHERE name = ?", [name]
    )
    return SignInState(*row) if row else None


def record_failure(con, name: str, locked_until: datetime | None) -> None:
    con.execute(
        "UPDATE accounts SET failed_sign_ins = failed_sign_ins + 1, locked_until = ? WHERE name = ?",
        [locked_until, name],
    )


def record_success(con, name: str, new_hash: str | None) -> None:
    con.execute(
        "UPDATE accounts SET failed_sign_ins = 0, locked_until = NULL,"
        " password_hash = coalesce(?, password_hash) WHERE name = ?",
        [new_hash, name],
    )


def insert_session(con, token_sha256: str, name: str) -> None:
    con.execute("INSERT INTO account_sessions (token_sha256, name) VALUES (?, ?)", [token_sha256, name])


def session_account(con, token_sha256: str) -> str | None:
    return scalar(con, "SELECT name FROM account_sessions WHERE token_sha256 = ?", [token_sha256])


def delete_session(con, token_sha256: str) -> None:
    con.execute("DELETE FROM account_sessions WHERE token_sha256 = ?", [token_sha256])
