"""Names that become file or folder names: refused with a reason before anything is written, and every name
that passes can really be made into a folder (with what the workbench adds to it)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.errors import InvalidNameError, WorkbenchError
from workbench.names import NAME_MAX_BYTES, check_name, check_new_path
from workbench.store import Store


@pytest.mark.parametrize(
    "name, words",
    [
        ("a" * 300, "too long: 300 characters, 300 bytes"),
        ("退款意图" * 20, "too long: 80 characters, 240 bytes"),
        ("intents\n", "control character (U+000A) at character 8"),
        ("in\ttents", "control character (U+0009)"),
        ("x\x00y", "control character (U+0000)"),
        ("x\x7fy", "control character (U+007F)"),
        ("x\x85y", "control character (U+0085)"),
        ("退款\u2028意图", "line separator (U+2028)"),
        ("abc\u202etxt.exe", "invisible formatting character (U+202E)"),
        ("zero\u200bwidth", "invisible formatting character (U+200B)"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        (".", "cannot be '.'"),
        ("..", "cannot be '..'"),
        (".hidden", "starts with '.'"),
        ("", "is empty"),
        ("   ", "is empty"),
        (" intents", "starts or ends with a space"),
        ("intents.", "ends with '.'"),
        ("what?", "contains ?"),
        ('a<b>:c"d|e*', 'contains " * : < > |'),
        ("CON", "device name on Windows"),
        ("lpt1.v2", "device name on Windows (LPT1)"),
    ],
)
def test_a_name_that_cannot_be_a_folder_name_is_refused_saying_why(name, words):
    with pytest.raises(InvalidNameError, match="^the export name") as caught:
        check_name(name, "export name")
    assert words in str(caught.value)
    assert isinstance(caught.value, WorkbenchError)


@pytest.mark.parametrize(
    "name",
    [
        "intents",
        "退款意图",
        "intents_v2.1-zh",
        "ok 名字",
        "a" * 200,
        "退" * 66,
        "CONFIG",
        "con-v2",
        "émoji-🙂",
    ],
)
def test_ordinary_names_english_and_chinese_pass(name):
    assert check_name(name, "export name") == name


def test_the_length_limit_counts_utf8_bytes_as_file_systems_do():
    with pytest.raises(
        InvalidNameError, match="at most 200 bytes .200 Latin letters or 66 Chinese characters"
    ):
        check_name("退" * 67, "export name")
    assert check_name("a" * 230, "x", max_bytes=230)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=1, max_size=120))
def test_every_name_that_passes_can_be_made_into_a_folder_with_what_the_export_adds(tmp_path, name):
    try:
        check_name(name, "export name")
    except InvalidNameError:
        return
    for folder in (f"{name}-0123456789", f".tmp-{name}-4194304-0123abcd", f".old-{name}-0123456789-0123abcd"):
        (tmp_path / folder).mkdir()
        assert folder in os.listdir(tmp_path)
        (tmp_path / folder).rmdir()


def test_a_new_path_is_checked_only_where_folders_are_still_to_be_made(tmp_path):
    odd = tmp_path / "already here: a?b"  # an existing folder is the file system's business, not ours
    odd.mkdir()
    assert check_new_path(odd / "merged" / "模型", "merge output folder") == odd / "merged" / "模型"
    with pytest.raises(
        InvalidNameError, match=r"merge output folder .* control character \(U\+000A\) in 'merged\\n'"
    ):
        check_new_path(odd / "merged\n" / "x", "merge output folder")
    with pytest.raises(InvalidNameError, match=f"file systems allow {NAME_MAX_BYTES}"):
        check_new_path(tmp_path / ("模型" * 50), "merge output folder")
    assert not (odd / "merged\n").exists()


def test_a_store_folder_with_a_line_end_in_its_name_is_refused_before_it_is_made(tmp_path):
    with pytest.raises(InvalidNameError, match="store folder .* control character"):
        Store.open(tmp_path / "store\n")
    assert os.listdir(tmp_path) == []
    assert Store.open(tmp_path / "仓库").root == (tmp_path / "仓库").resolve()
