"""Curating records in the store: edits, autofixes, undo, output contracts and re-checking on demand.

Every change goes through `store.records.update_record`, so it carries the version it started from
(a stale edit fails with a conflict, nothing overwritten) and leaves a revision behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import checks, roles
from .contracts import Contract
from .errors import NotFoundError, WorkbenchError
from .store import Store
from .store import issues as store_issues
from .store import settings as store_settings
from .store.records import (
    STATUSES,
    Record,
    Selection,
    get_record,
    get_revision,
    list_datasets,
    list_records,
    selected_ids,
    update_record,
)
from .store.review import filter_choices


def check_selection(con, selection: Selection) -> None:
    """Refuse a filter that names a dataset, category, status, record or issue code the store does not have,
    which would otherwise select nothing and look like success ("0 records set")."""
    if selection.dataset is not None:
        names = [name for name, _kind, _records in list_datasets(con)]
        if selection.dataset not in names:
            raise NotFoundError(f"there is no dataset {selection.dataset!r}; the store has {_listing(names)}")
    if selection.category is not None and not list_records(
        con, Selection(category=selection.category), limit=1
    ):
        categories = [c for c in filter_choices(con)["categories"] if c]
        raise NotFoundError(
            f"no record has the category {selection.category!r}; the categories are {_listing(categories)}"
        )
    if selection.status is not None and selection.status not in STATUSES:
        raise NotFoundError(f"there is no status {selection.status!r}; statuses are {_listing(STATUSES)}")
    if selection.issue_code is not None and selection.issue_code not in checks.RULES:
        raise NotFoundError(
            f"there is no issue code {selection.issue_code!r}; `workbench rules` lists the codes"
        )
    if selection.ids:
        missing = sorted(set(selection.ids) - set(selected_ids(con, Selection(ids=selection.ids))))
        if missing:
            raise NotFoundError(f"there is no record {', '.join(map(str, missing[:20]))}")


def _listing(names, most: int = 20) -> str:
    shown = ", ".join(repr(n) for n in names[:most])
    return (shown + (f" ... ({len(names)} in all)" if len(names) > most else "")) or "none"


def _recheck(con, store: Store, selection: Selection) -> None:
    checks.run_checks(con, selection, checks.context_for_store(con, store.models_dir if store.root else None))


def edit_record(
    store: Store,
    record_id: int,
    expected_version: int,
    changes: dict[str, Any],
    author: str,
    note: str | None = None,
) -> Record:
    """Change fields of one record (messages, category, status, tags, ...) and re-check it."""
    roles.require(store, roles.action_for_changes(changes), author, record_id=record_id)
    with store.transaction() as con:
        record = update_record(con, record_id, expected_version, changes, author, "edit", note)
        _recheck(con, store, Selection(ids=(record_id,)))
        return record


@dataclass
class FixReport:
    fixed: dict[int, list[str]] = field(default_factory=dict)  # record id -> codes fixed
    looked_at: int = 0


def apply_autofixes(
    store: Store, selection: Selection, author: str, progress: Callable[[int, int], None] | None = None
) -> FixReport:
    """Apply every safe autofix to the selected records that have fixable issues; one revision per record."""
    roles.require(store, "bulk", author)
    report = FixReport()
    with store.transaction() as con:
        check_selection(con, selection)
        ctx = checks.context_for_store(con, store.models_dir if store.root else None)
        ids = store_issues.fixable_records(con, selection)
        for n, record_id in enumerate(ids, 1):
            record = get_record(con, record_id)
            messages, applied = checks.fix_record(record.messages, record.category, ctx)
            report.looked_at += 1
            if applied:
                update_record(
                    con,
                    record_id,
                    record.version,
                    {"messages": messages},
                    author,
                    "autofix",
                    "fixed: " + ", ".join(sorted({i.code for i in applied})),
                )
                report.fixed[record_id] = sorted({i.code for i in applied})
            if progress:
                progress(n, len(ids))
        if report.fixed:
            checks.run_checks(con, Selection(ids=tuple(report.fixed)), ctx)
    return report


def undo_revision(store: Store, revision_id: int, author: str) -> Record:
    """Put back the fields one revision changed, as a new revision (history is never rewritten)."""
    roles.require(store, "fix", author)
    with store.transaction() as con:
        revision = get_revision(con, revision_id)
        if revision.before is None:
            raise WorkbenchError(
                f"revision {revision_id} created record {revision.record_id}; there is nothing "
                f"before it to go back to (set its status to rejected instead)"
            )
        current = get_record(con, revision.record_id)
        record = update_record(
            con,
            revision.record_id,
            current.version,
            revision.before,
            author,
            "undo",
            f"undo of v{revision.version}",
        )
        _recheck(con, store, Selection(ids=(revision.record_id,)))
        return record


def set_status(store: Store, selection: Selection, status: str, author: str) -> int:
    """Set the status of every selected record (e.g. approve a reviewed batch); returns how many changed."""
    roles.require(store, "bulk", author)
    changed = 0
    with store.transaction() as con:
        check_selection(con, selection)
        offset = 0
        while batch := list_records(con, selection, limit=1000, offset=offset):
            for record in batch:
                if record.status != status:
                    update_record(con, record.id, record.version, {"status": status}, author, "status")
                    changed += 1
            offset += len(batch)
    return changed


def set_contract(store: Store, contract: Contract) -> list[tuple[str, str, int]]:
    """Declare what answers in a category must be, and re-check that category; returns its issue counts."""
    roles.require(store, "contracts")
    with store.transaction() as con:
        store_settings.set_contract(con, contract)
        selection = Selection(category=contract.category)
        _recheck(con, store, selection)
        return store_issues.issue_counts(con, selection)


def remove_contract(store: Store, category: str) -> None:
    roles.require(store, "contracts")
    with store.transaction() as con:
        store_settings.delete_contract(con, category)
        _recheck(con, store, Selection(category=category))


def recheck(
    store: Store, selection: Selection = Selection(), progress: Callable[[int], None] | None = None
) -> list[tuple[str, str, int]]:
    """Run the rules again over the selected records (after changing settings or contracts)."""
    with store.transaction() as con:
        check_selection(con, selection)
        checks.run_checks(
            con, selection, checks.context_for_store(con, store.models_dir if store.root else None), progress
        )
        return store_issues.issue_counts(con, selection)


SETTING_HELP: dict[str, str] = {
    "max_tokens": "The training max length: a record longer than this (in the target model's tokens) is flagged "
    "too-long, since the trainer would cut it.",
    "target_model": "Whose tokenizer counts the tokens (the model you will fine-tune).",
}


def default_setting(key: str) -> Any:
    """A setting's value in a store that has none of its own (what an emptied field goes back to)."""
    return store_settings.DEFAULTS[key]


def set_setting(store: Store, key: str, value: Any) -> None:
    roles.require(store, "contracts")
    if key not in store_settings.DEFAULTS:
        raise WorkbenchError(f"unknown setting {key!r}; settings are {', '.join(store_settings.DEFAULTS)}")
    if key == "max_tokens" and (not isinstance(value, int) or value < 16):
        raise WorkbenchError("max_tokens must be a whole number of tokens, at least 16")
    with store.transaction() as con:
        store_settings.set_setting(con, key, value)


@dataclass
class ContractPreview:
    """What a contract would flag before it is saved."""

    category: str
    records: int  # records in the category with an answer (the contract checks the last one)
    flagged: int  # of them whose answer breaks the contract
    examples: list[tuple[str | None, str]] = field(default_factory=list)  # (answer, why), the first few


def preview_contract(store: Store, contract: Contract, examples: int = 5) -> ContractPreview:
    """How many records of the contract's category the contract would flag, without saving it."""
    with store.connect(read_only=True) as con:
        answers = store_issues.category_answers(con, contract.category)
    flagged, shown = 0, []
    for answer in answers:
        why = contract.violation(answer)
        if why:
            flagged += 1
            if len(shown) < examples:
                shown.append((answer, why))
    return ContractPreview(contract.category, len(answers), flagged, shown)


@dataclass
class IssueCount:
    """One issue code in the store: how many records have it, and what the rule says."""

    code: str
    severity: str
    records: int
    title: str  # the rule's explanation
    fixable: bool  # the rule has a safe autofix


def issues_by_code(store: Store) -> list[IssueCount]:
    """Every issue code with the records that have it, most frequent first, with its rule's explanation."""
    with store.connect(read_only=True) as con:
        rows = store_issues.issue_counts(con)
    rules = checks.RULES
    return [
        IssueCount(
            code,
            severity,
            n,
            rules[code].title if code in rules else code,
            bool(code in rules and rules[code].fixable),
        )
        for code, severity, n in rows
    ]


def get_contracts(store: Store) -> dict[str, Contract]:
    with store.connect(read_only=True) as con:
        return store_settings.get_contracts(con)


def get_settings(store: Store) -> dict[str, Any]:
    with store.connect(read_only=True) as con:
        return {k: store_settings.get_setting(con, k) for k in store_settings.DEFAULTS}


def all_settings(store: Store) -> dict[str, Any]:
    """Every setting of the store (defaults, then what is stored), for `workbench config`."""
    with store.connect(read_only=True) as con:
        return store_settings.all_settings(con)
