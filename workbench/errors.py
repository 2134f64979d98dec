"""The exceptions the workbench raises for expected failures.

Each message says what is wrong, where (file, line, record, turn) and what to do about it.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """An expected failure with a message meant for the person using the workbench."""


class StoreBusyError(WorkbenchError):
    """Another process holds the store's DuckDB file."""


class StoreVersionError(WorkbenchError):
    """The store was written by a newer workbench than this one."""


class EditConflictError(WorkbenchError):
    """A record edit started from a version that is no longer current."""

    def __init__(self, record_id: int, expected: int, current: int):
        self.record_id, self.expected, self.current = record_id, expected, current
        super().__init__(
            f"record {record_id} changed while you were editing it: you started from version {expected}, "
            f"it is now at version {current}. Nothing was overwritten; reload the record and apply your change again."
        )


class InputFileError(WorkbenchError):
    """An input file cannot be read at all (as opposed to single bad records, which are rejected)."""


class NotFoundError(WorkbenchError):
    """A record, dataset, import or run that was asked for does not exist."""


class InvalidNameError(WorkbenchError):
    """A name someone gave (an export name, an output folder) cannot become a file or folder name."""


class EmptySelectionError(WorkbenchError):
    """What was asked for holds no record: nothing to export, or an eval set with no record to score."""


class ForbiddenError(WorkbenchError):
    """The signed-in account's role does not allow the action (team mode only; solo mode forbids nothing)."""


class SignInError(WorkbenchError):
    """A sign-in was refused: unknown account or wrong password (one message for both), or too many failures."""
