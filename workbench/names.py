"""Names people give that become file or folder names (export names, output folders): checked before anything
is written, so a bad one is refused with a message instead of failing later as an OSError or a strange folder.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from .errors import InvalidNameError

NAME_MAX_BYTES = 255  # what ext4, XFS, btrfs and APFS allow for one file name (UTF-8 bytes)
_WINDOWS_FORBIDDEN = '<>:"|?*'  # also refused by NTFS, exFAT and SMB shares, where a store may live
_WINDOWS_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}
# Cc: control characters (newline, tab, NUL, DEL, C1); Cf: invisible formatting (right-to-left override,
# zero-width space); Zl/Zp: line and paragraph separators; Cs: lone surrogates, which UTF-8 cannot encode.
_INVISIBLE = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
    "Cs": "a lone surrogate",
}
_LINE_ENDS = "\n\r\x85\u2028\u2029"


def check_name(name: str, what: str, *, max_bytes: int = 200) -> str:
    """Return `name` if it can be one file or folder name on any common file system; else raise
    InvalidNameError saying what is wrong with it and what to do. `what` names it in the message
    ("export name"); `max_bytes` leaves room for what the workbench adds to it (a hash, a temp prefix)."""
    if not isinstance(name, str):
        raise InvalidNameError(f"the {what} must be text, not {type(name).__name__}")
    if not name.strip():
        raise InvalidNameError(f"the {what} is empty; give it a name, e.g. intents-v2 or 退款意图")
    _refuse_invisible(name, what)
    if "/" in name or "\\" in name:
        raise InvalidNameError(
            f"the {what} {name!r} contains a path separator (/ or \\): it becomes one folder "
            f"name, not a path; use - or _ instead"
        )
    if name in (".", ".."):
        raise InvalidNameError(f"the {what} cannot be {name!r} (that is a folder's own or its parent's name)")
    if name.startswith("."):
        raise InvalidNameError(
            f"the {what} {name!r} starts with '.', which hides it (and the workbench's own temp "
            f"folders start so); start it with a letter or digit"
        )
    if name != name.strip():
        raise InvalidNameError(f"the {what} {name!r} starts or ends with a space; remove it")
    if name.endswith("."):
        raise InvalidNameError(
            f"the {what} {name!r} ends with '.', which Windows file systems drop; remove it"
        )
    bad = sorted({c for c in name if c in _WINDOWS_FORBIDDEN})
    if bad:
        raise InvalidNameError(
            f"the {what} {name!r} contains {' '.join(bad)}, which Windows file systems refuse; "
            f"use letters, digits, _ . - instead"
        )
    if name.split(".")[0].upper() in _WINDOWS_RESERVED:
        raise InvalidNameError(
            f"the {what} {name!r} is a device name on Windows ({name.split('.')[0].upper()}); "
            f"choose another name"
        )
    size = len(name.encode("utf-8"))
    if size > max_bytes:
        raise InvalidNameError(
            f"the {what} is too long: {len(name)} characters, {size} bytes in UTF-8; it may take at most "
            f"{max_bytes} bytes ({max_bytes} Latin letters or {max_bytes // 3} Chinese characters). "
            f"Shorten it (it starts {name[:40]!r})"
        )
    return name


def check_new_path(path: str | Path, what: str) -> Path:
    """Return `path` if the folders of it that do not exist yet can be created; else raise InvalidNameError.

    Only the parts still to be made are checked (an existing parent is the file system's business): each
    must be free of control and invisible characters and at most NAME_MAX_BYTES long."""
    path = Path(path).expanduser()
    part = path
    while part != part.parent and not os.path.exists(part):  # False for a name too long to look up, too
        name = part.name
        _refuse_invisible(name, what, whole=str(path))
        if len(name.encode("utf-8")) > NAME_MAX_BYTES:
            raise InvalidNameError(
                f"the {what} {str(path)!r} has a folder name of {len(name.encode('utf-8'))} "
                f"bytes ({name[:40]!r}...); file systems allow {NAME_MAX_BYTES}: shorten it"
            )
        part = part.parent
    return path


def _refuse_invisible(name: str, what: str, whole: str | None = None) -> None:
    for i, c in enumerate(name):
        kind = _INVISIBLE.get(unicodedata.category(c))
        if kind:
            where = f"in {name!r}" if whole is not None else f"at character {i + 1}"
            hint = (
                "remove it (a name pasted with its line end often has one)"
                if c in _LINE_ENDS
                else "remove it (it does not show, but becomes part of the file name)"
            )
            raise InvalidNameError(
                f"the {what} {whole if whole is not None else name!r} contains {kind} "
                f"(U+{ord(c):04X}) {where}; {hint}"
            )
