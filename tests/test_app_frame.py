"""The pages share one frame (ui/): each starts with ui.page_frame, carries no guard of its own, imports only
the library, ui/ and the drawing libraries, names modules in full, and stays short enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import ROOT

PAGES = sorted((ROOT / "pages").glob("*.py"))
ALLOWED = {
    "workbench",
    "ui",
    "streamlit",
    "altair",
    "pandas",
    "json",
    "pathlib",
    "dataclasses",
    "collections",
}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_a_page_starts_with_the_frame_and_imports_only_the_library_and_ui(page: Path):
    tree = ast.parse(page.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
            short = [a.asname for a in node.names if a.asname and a.asname not in ("st", "pd", "alt")]
            assert not short, f"{page.name}: a short module alias {short}"
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
            short = [a.asname for a in node.names if a.asname and len(a.asname) <= 2]
            assert not short, f"{page.name}: a short module alias {short}"
    assert imported <= ALLOWED, f"{page.name} imports {imported - ALLOWED}"
    assert "workbench.store.settings" not in page.read_text(encoding="utf-8")
    # the first statement that draws or reads anything is the frame (constants and imports may come before)
    drawing = next(
        n
        for n in tree.body
        if not isinstance(n, ast.Import | ast.ImportFrom | ast.FunctionDef)
        and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
        and not (isinstance(n, ast.Assign) and "st." not in ast.unparse(n) and "ui." not in ast.unparse(n))
    )
    assert "ui.page_frame(" in ast.unparse(drawing), f"{page.name} starts with {ast.unparse(drawing)[:80]}"
    assert "runpy" not in imported and "in_frame" not in page.read_text(encoding="utf-8")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_a_page_is_short_enough_to_read(page: Path):
    assert len(page.read_text(encoding="utf-8").splitlines()) <= 300
