"""Team accounts and roles on a real store: argon2 sign-in, the wrong-password limit, sessions that end at
sign-out, roles enforced by the library, the CLI's `users` and `--user`, and the app's sign-in gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from workbench import accounts, curation, ingest, review, roles
from workbench.cli import main
from workbench.errors import ForbiddenError, SignInError, WorkbenchError
from workbench.export import ExportConfig, export_training_set
from workbench.store.records import Selection

from .conftest import ROOT, chat

HOSTILE = "<script>alert('x')</script>"


@pytest.fixture(autouse=True)
def fast_argon2(monkeypatch):
    monkeypatch.setenv(accounts.FAST_HASH_ENV, "1")


@pytest.fixture
def team(store, write_jsonl):
    """A store with two records (Chinese and English) and an owner, a reviewer and two labellers."""
    ingest.import_file(
        store,
        write_jsonl(
            [chat("我要退款，订单 123", "好的，已退款", category="退款"), chat("where is it", "on its way")]
        ),
    )
    accounts.add_account(store, "王老板", "owner", "owner-password")
    with roles.acting_as("王老板"):
        accounts.add_account(store, "rev", "reviewer", "reviewer-password", created_by="王老板")
        accounts.add_account(store, "李标注", "labeller", "labeller-password", created_by="王老板")
        accounts.add_account(store, HOSTILE, "labeller", "hostile-password", created_by="王老板")
    return store


def _first(store):
    return review.open_record(store, 1).record


def test_solo_mode_forbids_nothing_and_asks_no_sign_in(store, write_jsonl):
    ingest.import_file(store, write_jsonl([chat("你好", "您好")]))
    assert not accounts.team_mode(store)
    assert curation.set_status(store, Selection(), "approved", "anyone") == 1


def test_the_first_account_must_be_an_owner_and_passwords_are_hashed_with_argon2(store):
    with pytest.raises(WorkbenchError, match="first account must be an owner"):
        accounts.add_account(store, "lab", "labeller", "long-enough")
    with pytest.raises(WorkbenchError, match="too short"):
        accounts.add_account(store, "boss", "owner", "short")
    accounts.add_account(store, "boss", "owner", "long-enough-pw")
    with store.connect() as con:
        stored = con.execute("SELECT password_hash FROM accounts").fetchone()[0]
    assert stored.startswith("$argon2id$") and "long-enough-pw" not in stored
    assert [(a.name, a.role) for a in accounts.list_accounts(store)] == [("boss", "owner")]
    assert not hasattr(accounts.list_accounts(store)[0], "password_hash")


def test_sign_in_gives_a_session_and_sign_out_ends_it_even_replayed(team):
    session = accounts.sign_in(team, "李标注", "labeller-password")
    assert (session.name, session.role) == ("李标注", "labeller")
    assert accounts.session_account(team, session.token) == "李标注"
    accounts.sign_out(team, session.token)
    assert accounts.session_account(team, session.token) is None  # the old token, replayed, signs nobody in
    other = accounts.sign_in(team, "rev", "reviewer-password")
    assert other.token != session.token
    with team.connect() as con:  # the store keeps only the token's digest
        assert (
            con.execute(
                "SELECT count(*) FROM account_sessions WHERE token_sha256 = ?", [other.token]
            ).fetchone()[0]
            == 0
        )


def test_wrong_passwords_lock_the_account_for_a_while_then_it_opens_again(team):
    with pytest.raises(SignInError, match="unknown account or wrong password"):
        accounts.sign_in(team, "nobody", "whatever-pw")
    for _ in range(accounts.FREE_FAILURES):
        with pytest.raises(SignInError, match="unknown account or wrong password"):
            accounts.sign_in(team, "rev", "wrong-password")
    # locked: even the right password is refused, and the wait is said
    with pytest.raises(SignInError, match=r"too many wrong passwords.*try again in \d+ s"):
        accounts.sign_in(team, "rev", "reviewer-password")
    later = datetime.now(UTC) + timedelta(seconds=accounts.FIRST_LOCK_S + 1)
    assert accounts.sign_in(team, "rev", "reviewer-password", now=later).name == "rev"
    # the count starts again after a success
    with pytest.raises(SignInError, match="wrong password"):
        accounts.sign_in(team, "rev", "wrong-password")
    assert accounts.sign_in(team, "rev", "reviewer-password").name == "rev"


def test_a_labeller_fixes_but_cannot_approve_export_or_manage_users(team):
    record = _first(team)
    with roles.acting_as("李标注"):
        fixed = curation.edit_record(team, record.id, record.version, {"category": "退款·已核对"}, "李标注")
        assert fixed.category == "退款·已核对"
        with pytest.raises(
            ForbiddenError, match="'李标注' is a labeller; approve needs a reviewer or an owner"
        ):
            curation.edit_record(team, record.id, fixed.version, {"status": "approved"}, "李标注")
        with pytest.raises(ForbiddenError, match="export needs an owner"):
            export_training_set(team, ExportConfig(name="x"))
        with pytest.raises(ForbiddenError, match="users needs an owner"):
            accounts.add_account(team, "new", "owner", "new-password", created_by="李标注")
        with pytest.raises(ForbiddenError, match="bulk needs a reviewer"):
            curation.set_status(team, Selection(), "approved", "李标注")
    assert [r.author for r in review.open_record(team, record.id).history][:1] == ["李标注"]


def test_a_reviewer_approves_and_nobody_acts_without_an_account(team):
    record = _first(team)
    with roles.acting_as("rev"):
        approved = curation.edit_record(team, record.id, record.version, {"status": "approved"}, "rev")
        assert approved.status == "approved"
        with pytest.raises(ForbiddenError, match="writing 'someone else' as the author"):
            curation.edit_record(team, record.id, approved.version, {"category": "x"}, "someone else")
    with pytest.raises(ForbiddenError, match="'intruder' is not an account"):
        curation.edit_record(team, record.id, approved.version, {"category": "x"}, "intruder")


def test_cli_users_add_reads_the_password_twice_and_never_prints_it_or_its_hash(tmp_path, monkeypatch):
    monkeypatch.setenv(accounts.FAST_HASH_ENV, "1")
    runner = CliRunner()
    store_dir = str(tmp_path / "s")
    added = runner.invoke(
        main,
        ["--store", store_dir, "users", "add", "王老板", "--role", "owner"],
        input="pw-王老板-1\npw-王老板-1\n",
    )
    assert added.exit_code == 0, added.output
    differ = runner.invoke(
        main,
        ["--store", store_dir, "--user", "王老板", "users", "add", "lab", "--role", "labeller"],
        input="aaaaaaaa\nbbbbbbbb\n",
    )
    assert differ.exit_code == 1 and "differ" in differ.output
    nobody = runner.invoke(
        main,
        ["--store", store_dir, "users", "add", "lab", "--role", "labeller"],
        input="aaaaaaaa\naaaaaaaa\n",
    )
    assert nobody.exit_code == 1 and "nobody is signed in" in nobody.output
    hostile = runner.invoke(
        main,
        ["--store", store_dir, "users", "add", HOSTILE, "--role", "labeller"],
        input="aaaaaaaa\naaaaaaaa\n",
        env={"WORKBENCH_USER": "王老板"},
    )
    assert hostile.exit_code == 0, hostile.output
    listed = runner.invoke(main, ["--store", store_dir, "users"])
    assert listed.exit_code == 0 and "王老板" in listed.output and HOSTILE in listed.output  # as text
    for result in (added, differ, nobody, hostile, listed):
        assert (
            "pw-王老板-1" not in result.output
            and "aaaaaaaa" not in result.output
            and "$argon2" not in result.output
        )
    # a labeller's import through the CLI is refused with a non-zero exit
    data = tmp_path / "d.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "你好"}]}\n', encoding="utf-8")
    refused = runner.invoke(main, ["--store", store_dir, "--user", HOSTILE, "import", str(data)])
    assert refused.exit_code == 1 and "import needs an owner" in refused.output


def test_app_refuses_to_listen_beyond_localhost_without_accounts(store):
    with pytest.raises(WorkbenchError, match="refusing to listen on 0.0.0.0: this store has no accounts"):
        accounts.check_listen_address(store, "0.0.0.0")
    assert accounts.check_listen_address(store, "127.0.0.1") == "127.0.0.1"
    accounts.add_account(store, "boss", "owner", "long-enough-pw")
    assert accounts.check_listen_address(store, "0.0.0.0") == "0.0.0.0"


def test_app_shows_only_the_sign_in_until_signed_in_then_the_account_is_the_author(team, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STORE", str(team.root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Sign in"]
    assert not at.sidebar.text_input  # no "Your name" box, no navigation drawn
    at.text_input(key="sign_in_name").input("李标注")
    at.text_input(key="sign_in_password").input("wrong-password")
    at.button[0].click().run()
    assert any("wrong password" in e.value for e in at.error)
    at.text_input(key="sign_in_password").input("labeller-password")
    at.button[0].click().run()
    assert not at.exception
    assert "Sign in" not in [t.value for t in at.title]
    assert any("李标注" in m.value for m in at.sidebar.markdown)
    assert at.session_state["account"] == "李标注"
    at.sidebar.button(key="sign_out").click().run()
    assert [t.value for t in at.title] == ["Sign in"]


def test_a_hostile_account_name_is_text_in_the_app(team, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STORE", str(team.root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.text_input(key="sign_in_name").input(HOSTILE)
    at.text_input(key="sign_in_password").input("hostile-password")
    at.button[0].click().run()
    assert not at.exception
    shown = [m.value for m in at.sidebar.markdown if "Signed in" in m.value]
    assert shown and "<script>" not in shown[0]  # escaped for markdown: shown as text, never run
