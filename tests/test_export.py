"""Exporting training sets: selection and exclusions, quotas and shares, the split, the leakage guard, determinism."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from workbench.contracts import Contract
from workbench.curation import set_contract, set_status
from workbench.errors import InvalidNameError, WorkbenchError
from workbench.export import ExportConfig, export_training_set, read_manifest
from workbench.export.plan import apportion, val_count
from workbench.ingest import import_file
from workbench.store import Store
from workbench.store.exports import list_exports
from workbench.store.records import Selection

CATEGORIES = {"退款": 40, "intent": 25, "extract": 12, "rare": 3}


def badcase_records(sizes: dict[str, int] = CATEGORIES) -> list[dict]:
    """Distinct chats per category, Chinese and English, each with its right answer."""
    out = []
    for category, n in sizes.items():
        for i in range(n):
            user = (
                f"{category} 第{i}个问题：订单 {1000 + i} 怎么处理？"
                if i % 2
                else f"{category} case {i}: what about order {i}?"
            )
            out.append(
                {
                    "messages": [
                        {"role": "user", "content": user},
                        {"role": "assistant", "content": f"{category} 的答案 {i}"},
                    ],
                    "category": category,
                    "task_type": "classification" if category == "intent" else "generation",
                }
            )
    return out


def build(
    store: Store,
    write_jsonl,
    records: list[dict],
    *,
    status: str = "approved",
    name: str = "bad.jsonl",
    dataset: str = "badcases",
) -> int:
    """Import `records` and give them `status`; returns the import id."""
    report = import_file(store, write_jsonl(records, name=name), dataset=dataset)
    if status != "new":
        set_status(store, Selection(import_id=report.import_id), status, "test")
    return report.import_id


def lines(folder: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (folder / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]


def by_category(rows: list[dict]) -> Counter:
    return Counter(r["category"] for r in rows if r["source"] == "badcase")


@pytest.fixture(scope="module")
def badcase_template(tmp_path_factory) -> Path:
    """A store with CATEGORIES' approved badcases, built once; each test gets its own copy of the folder."""
    root = tmp_path_factory.mktemp("badcases")
    path = root / "bad.jsonl"
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in badcase_records()), encoding="utf-8"
    )
    store = Store.open(root / "store")
    report = import_file(store, path)
    set_status(store, Selection(import_id=report.import_id), "approved", "test")
    return root / "store"


@pytest.fixture
def badcases(badcase_template, tmp_path) -> Store:
    shutil.copytree(badcase_template, tmp_path / "store")
    return Store.open(tmp_path / "store")


def exact(**options) -> ExportConfig:
    """A config with the built-in exact leakage guard (these tests are about the export, not dedup's checks)."""
    return ExportConfig(leakage_guard="exact", general_share=0.0, **options)


# --- the folder and its files --------------------------------------------------------------------------


def test_export_writes_train_val_manifest_and_report_into_a_versioned_folder(badcases):
    result = export_training_set(badcases, exact(name="v1"))
    assert re.fullmatch(r"v1-[0-9a-f]{10}", result.folder.name)
    assert result.folder.parent == badcases.exports_dir
    for name in ("train.jsonl", "val.jsonl", "manifest.json", "report.md", "excluded.jsonl"):
        assert (result.folder / name).is_file()
    manifest = read_manifest(result.folder)
    assert manifest["hash"] == result.hash and result.folder.name == f"v1-{result.hash[:10]}"
    for key in (
        "name",
        "hash",
        "config",
        "seed",
        "counts",
        "categories",
        "general_share",
        "contracts",
        "task_types",
        "records",
        "files",
    ):
        assert key in manifest
    train, val = lines(result.folder, "train"), lines(result.folder, "val")
    assert manifest["records"]["train"]["ids"] == [r["id"] for r in train]
    assert manifest["records"]["val"]["ids"] == [r["id"] for r in val]
    assert len(manifest["records"]["train"]["content_hashes"]) == len(train)
    assert manifest["counts"]["train"] == len(train) and manifest["counts"]["val"] == len(val)
    assert manifest["categories"] == sorted(CATEGORIES)
    for name, info in manifest["files"].items():
        data = (result.folder / name).read_bytes()
        assert info == {
            "records": data.count(b"\n"),
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
        }
        assert data.endswith(b"}\n")
    assert len(train) + len(val) == sum(CATEGORIES.values())
    assert not [
        p for p in badcases.exports_dir.iterdir() if p.name.startswith(".")
    ]  # no temp folder left behind


def test_a_killed_exports_temp_folder_is_swept_away_by_the_next_export(badcases):
    import subprocess
    import sys

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    leftover = badcases.exports_dir / f".tmp-old-{int(dead.stdout)}-abcdef12"
    leftover.mkdir(parents=True)
    (leftover / "train.jsonl").write_text("half a file", encoding="utf-8")
    export_training_set(badcases, exact(name="sweep"))
    assert not leftover.exists()


def test_lines_follow_the_trainer_contract(badcases):
    result = export_training_set(badcases, exact(name="contract"))
    for row in lines(result.folder, "train") + lines(result.folder, "val"):
        assert list(row) == ["messages", "id", "category", "source"]
        assert row["source"] == "badcase"
        for m in row["messages"]:
            assert list(m) == ["role", "content", "loss_weight"]
            assert m["loss_weight"] == (1.0 if m["role"] == "assistant" else 0.0)


def test_manifest_content_hashes_are_the_stores(badcases):
    result = export_training_set(badcases, exact(name="hashes"))
    manifest = read_manifest(result.folder)
    with badcases.connect() as con:
        stored = dict(con.execute("SELECT id, content_hash FROM records").fetchall())
    train = manifest["records"]["train"]
    assert train["content_hashes"] == [stored[i] for i in train["ids"]]


def test_export_is_logged_in_the_store(badcases):
    result = export_training_set(badcases, exact(name="logged"))
    with badcases.connect() as con:
        rows = list_exports(con)
    assert [(r.name, r.hash, r.folder) for r in rows] == [
        ("logged", result.hash, f"exports/{result.folder.name}")
    ]
    assert rows[0].train_records == result.train_records and rows[0].config["name"] == "logged"


# --- what goes in ------------------------------------------------------------------------------------------


def test_only_the_chosen_statuses_are_exported_and_the_rest_are_reported(store, write_jsonl):
    build(store, write_jsonl, badcase_records({"a": 10}), status="approved", name="a.jsonl")
    build(store, write_jsonl, badcase_records({"b": 6}), status="fixed", name="b.jsonl")
    build(store, write_jsonl, badcase_records({"c": 5}), status="new", name="c.jsonl")
    build(store, write_jsonl, badcase_records({"d": 4}), status="rejected", name="d.jsonl")
    result = export_training_set(store, exact(name="s"))
    exported = by_category(lines(result.folder, "train") + lines(result.folder, "val"))
    assert exported == {"a": 10, "b": 6}
    report = (result.folder / "report.md").read_text(encoding="utf-8")
    assert "5 new" in report and "4 rejected" in report
    only_fixed = export_training_set(store, exact(name="f", statuses=("fixed",)))
    assert set(by_category(lines(only_fixed.folder, "train") + lines(only_fixed.folder, "val"))) == {"b"}


def test_records_with_error_level_issues_are_never_exported_and_are_listed(store, write_jsonl):
    records = badcase_records({"intent": 20})
    records += [
        {
            "messages": [{"role": "user", "content": "空答案"}, {"role": "assistant", "content": "  "}],
            "category": "intent",
        },
        {
            "messages": [{"role": "user", "content": "Hi {{name}}"}, {"role": "assistant", "content": "ok"}],
            "category": "intent",
        },
    ]
    build(store, write_jsonl, records)
    with store.connect() as con:
        bad = {
            row[0]
            for row in con.execute(
                "SELECT DISTINCT record_id FROM record_issues WHERE severity = 'error'"
            ).fetchall()
        }
        warned = {
            row[0]
            for row in con.execute(
                "SELECT DISTINCT record_id FROM record_issues WHERE severity = 'warning'"
            ).fetchall()
        }
    assert len(bad) == 2
    result = export_training_set(store, exact(name="e"))
    exported = {r["id"] for r in lines(result.folder, "train") + lines(result.folder, "val")}
    assert not exported & bad
    assert warned - bad <= exported  # warnings alone do not keep a record out
    excluded = [
        json.loads(x) for x in (result.folder / "excluded.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert {x["id"] for x in excluded if x["reason"] == "error-issues"} == bad
    report = (result.folder / "report.md").read_text(encoding="utf-8")
    for record_id in bad:
        assert f"record {record_id} (intent)" in report
    assert "empty-answer" in report and "template-placeholder" in report
    assert result.excluded == {"error-issues": 2}


def test_a_long_exclusion_list_is_cut_in_the_report_and_whole_in_excluded_jsonl(store, write_jsonl):
    broken = [
        {
            "messages": [{"role": "user", "content": f"问题 {i}"}, {"role": "assistant", "content": ""}],
            "category": "c",
        }
        for i in range(205)
    ]
    build(store, write_jsonl, badcase_records({"c": 5}) + broken, status="new")
    result = export_training_set(store, exact(name="many", statuses=("new",)))
    report = (result.folder / "report.md").read_text(encoding="utf-8")
    section = report.split("### error-issues")[1]
    assert section.count("- record ") == 200 and "... and 5 more: excluded.jsonl lists every one" in section
    excluded = (result.folder / "excluded.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(excluded) == 205 and result.excluded == {"error-issues": 205}


def test_duplicates_that_dedup_did_not_keep_are_left_out(badcases):
    with badcases.connect() as con:
        kept, dup = con.execute("SELECT min(id), max(id) FROM records WHERE category = 'intent'").fetchone()
        con.execute("UPDATE records SET dup_of = ? WHERE id = ?", [kept, dup])
    result = export_training_set(badcases, exact(name="d"))
    exported = {r["id"] for r in lines(result.folder, "train") + lines(result.folder, "val")}
    assert dup not in exported and kept in exported
    assert result.excluded == {"duplicate": 1}
    assert f"record {dup} (intent): duplicate of record {kept}" in (result.folder / "report.md").read_text(
        "utf-8"
    )


def test_exact_copies_within_the_export_are_kept_once(store, write_jsonl):
    records = badcase_records({"a": 8})
    records.append(dict(records[0]))  # the same chat imported twice
    build(store, write_jsonl, records)
    result = export_training_set(store, exact(name="r"))
    rows = lines(result.folder, "train") + lines(result.folder, "val")
    assert len(rows) == 8 and result.excluded == {"repeated": 1}


def test_categories_filter_and_dataset_choice(store, write_jsonl):
    build(store, write_jsonl, badcase_records({"a": 6, "b": 6}), name="one.jsonl")
    build(store, write_jsonl, badcase_records({"z": 5}), name="two.jsonl", dataset="客服")
    only_b = export_training_set(store, exact(name="b", categories=("b",)))
    assert set(by_category(lines(only_b.folder, "train") + lines(only_b.folder, "val"))) == {"b"}
    other = export_training_set(store, exact(name="kf", datasets=("客服",)))
    assert set(by_category(lines(other.folder, "train") + lines(other.folder, "val"))) == {"z"}
    everything = export_training_set(store, exact(name="all"))
    assert read_manifest(everything.folder)["categories"] == ["a", "b", "z"]


def test_naming_an_eval_or_general_dataset_as_badcases_is_refused(badcases):
    with pytest.raises(WorkbenchError, match="eval records never enter training"):
        export_training_set(badcases, exact(datasets=("eval",)))
    with pytest.raises(WorkbenchError, match="general_share"):
        export_training_set(badcases, exact(datasets=("general",)))
    with pytest.raises(WorkbenchError, match="no dataset 'nope'"):
        export_training_set(badcases, exact(datasets=("nope",)))


def test_nothing_to_export_says_why(store, write_jsonl):
    build(store, write_jsonl, badcase_records({"a": 3}), status="new")
    with pytest.raises(WorkbenchError, match=r"nothing to export.*3 new.*--statuses"):
        export_training_set(store, exact(name="empty"))


def test_bad_config_values_are_refused_with_the_option_named(badcases):
    for config, words in [
        (ExportConfig(general_share=0.6), "general_share"),
        (ExportConfig(val=0.7), "val"),
        (ExportConfig(name="a/b"), "folder name"),
        (ExportConfig(format="csv"), "format"),
        (ExportConfig(statuses=("done",)), "status"),
        (ExportConfig(category_shares={"a": 0.7, "b": 0.5}), "add up"),
        (ExportConfig(per_category=5, category_shares={"a": 0.5}), "not both"),
    ]:
        with pytest.raises(WorkbenchError, match=words):
            export_training_set(badcases, config)


@pytest.mark.parametrize(
    "name, words",
    [
        (
            "a" * 300,
            "too long: 300 characters",
        ),  # was OSError: File name too long, half-way through the export
        ("退款意图" * 17, "too long: 68 characters, 204 bytes"),
        ("intents\n", "control character (U+000A)"),  # was accepted: a folder with a newline in its name
        ("..", "cannot be '..'"),
        ("intents v2", "letters, digits, _ . -"),
    ],
)
def test_an_export_name_that_cannot_be_a_folder_name_is_refused_before_anything_is_written(
    badcases, name, words
):
    with pytest.raises(InvalidNameError, match="export name") as caught:
        export_training_set(badcases, exact(name=name))
    assert words in str(caught.value)
    assert not badcases.exports_dir.exists() or list(badcases.exports_dir.iterdir()) == []
    with badcases.connect() as con:
        assert list_exports(con, 10) == []


def test_a_chinese_export_name_of_the_longest_allowed_size_exports(badcases):
    result = export_training_set(badcases, exact(name="退款意图" * 16 + "v2"))  # 198 bytes
    assert result.folder.name.startswith("退款意图") and (result.folder / "train.jsonl").is_file()


def test_every_config_field_has_a_help_text():
    helps = ExportConfig.help_texts()
    assert set(helps) == set(ExportConfig().to_json())
    assert all(len(text) > 20 for text in helps.values())
    assert ExportConfig.from_json(ExportConfig(per_category=3, datasets=("x",)).to_json()) == ExportConfig(
        per_category=3, datasets=("x",)
    )


# --- balance ------------------------------------------------------------------------------------------------


def test_per_category_target_down_samples_big_categories_and_reports_small_ones(badcases):
    result = export_training_set(badcases, exact(name="t", per_category=15))
    counts = by_category(lines(result.folder, "train") + lines(result.folder, "val"))
    assert counts == {"退款": 15, "intent": 15, "extract": 12, "rare": 3}
    plans = {p.category: p for p in result.categories}
    assert plans["退款"].downsampled == 25 and plans["extract"].short == 3 and plans["rare"].short == 12
    assert any("'extract' is 3 short of its target 15" in w for w in result.warnings)
    report = (result.folder / "report.md").read_text(encoding="utf-8")
    assert "| extract | 12 | 0 | 15 (short 3) |" in report


def test_category_targets_override_per_category(badcases):
    result = export_training_set(
        badcases, exact(name="o", per_category=10, category_targets={"退款": 30, "rare": 1})
    )
    counts = by_category(lines(result.folder, "train") + lines(result.folder, "val"))
    assert counts == {"退款": 30, "intent": 10, "extract": 10, "rare": 1}


def test_upsampling_repeats_train_records_up_to_the_cap_and_never_val_records(badcases):
    result = export_training_set(badcases, exact(name="u", per_category=20, upsample=True, max_repeat=3))
    train, val = lines(result.folder, "train"), lines(result.folder, "val")
    counts = by_category(train + val)
    assert counts["extract"] == 20  # 12 records: 1 val + 11 train repeated to 19 lines
    assert counts["rare"] == 1 + 2 * 3  # 3 records: 1 val, 2 train at most 3 times each: short of 20
    assert max(Counter(r["id"] for r in train).values()) == 3
    assert not {r["id"] for r in val} & {r["id"] for r in train}
    assert len({r["id"] for r in val}) == len(val)
    rare = next(p for p in result.categories if p.category == "rare")
    assert rare.repeats == 4 and rare.short == 13
    assert "repeated up to 3x" in " ".join(result.warnings)
    assert "each at most 3 times" in (result.folder / "report.md").read_text(encoding="utf-8")


def test_category_shares_hold_within_one_record(store, write_jsonl):
    build(store, write_jsonl, badcase_records({"a": 60, "b": 50, "c": 40, "d": 30}), status="new")
    shares = {"a": 0.4, "b": 0.3}
    result = export_training_set(
        store, exact(name="sh", category_shares=shares, task_records=97, statuses=("new",))
    )
    counts = by_category(lines(result.folder, "train") + lines(result.folder, "val"))
    assert sum(counts.values()) == 97
    for category, share in {**shares, "c": 0.15, "d": 0.15}.items():
        assert abs(counts[category] - share * 97) <= 1, (category, counts)
    # without a size: the largest set in which no category needs repeating (d's 30 records at 15% -> 200 lines)
    largest = export_training_set(store, exact(name="sh2", category_shares={"d": 0.5}, statuses=("new",)))
    counts = by_category(lines(largest.folder, "train") + lines(largest.folder, "val"))
    assert counts["d"] == 30 and abs(sum(counts.values()) - 60) <= 1


def test_task_records_alone_means_equal_shares(badcases):
    result = export_training_set(badcases, exact(name="eq", task_records=36, upsample=True))
    counts = by_category(lines(result.folder, "train") + lines(result.folder, "val"))
    assert counts["退款"] == counts["intent"] == counts["extract"] == 9
    assert counts["rare"] < 9  # 3 records, at most 1 val + 2 train x 3


def test_down_sampling_prefers_fixed_records_and_spreads_near_copies(store, write_jsonl):
    near = [
        {
            "messages": [
                {
                    "role": "user",
                    "content": f"请把这段话翻译成英文，并保持原来的语气和格式，不要改动：第{i}段",
                },
                {"role": "assistant", "content": f"translation {i}"},
            ],
            "category": "t",
        }
        for i in range(30)
    ]
    diverse = [
        {
            "messages": [
                {"role": "user", "content": f"{i} 号问题完全不同的开头"},
                {"role": "assistant", "content": f"answer {i}"},
            ],
            "category": "t",
        }
        for i in range(10)
    ]
    fixed = [
        {
            "messages": [
                {"role": "user", "content": f"fixed case {i} about something"},
                {"role": "assistant", "content": f"right {i}"},
            ],
            "category": "t",
        }
        for i in range(5)
    ]
    build(store, write_jsonl, near, name="near.jsonl")
    build(store, write_jsonl, diverse, name="diverse.jsonl")
    build(store, write_jsonl, fixed, name="fixed.jsonl", status="fixed")
    result = export_training_set(store, exact(name="p", per_category=16, val=0.0))
    texts = [r["messages"][0]["content"] for r in lines(result.folder, "train")]
    assert len(texts) == 16
    assert sum(t.startswith("fixed case") for t in texts) == 5
    assert sum(t.startswith("请把这段话") for t in texts) == 1
    assert sum("号问题" in t for t in texts) == 10


def test_down_sampling_spreads_across_stored_clusters(store, write_jsonl):
    build(store, write_jsonl, badcase_records({"t": 30}))
    with store.connect() as con:
        ids = [r[0] for r in con.execute("SELECT id FROM records ORDER BY id").fetchall()]
        # one big cluster of 27 and three singletons: a sample of 4 takes one of each
        rows = [(1, i, 0 if n < 27 else n, 0.0, 0.0) for n, i in enumerate(ids)]
        con.executemany(
            "INSERT INTO cluster_members (run_id, record_id, cluster, x, y) VALUES (?, ?, ?, ?, ?)", rows
        )
    result = export_training_set(store, exact(name="c", per_category=4, val=0.0))
    taken = {r["id"] for r in lines(result.folder, "train")}
    assert set(ids[27:]) <= taken and len(taken & set(ids[:27])) == 1


# --- general data ------------------------------------------------------------------------------------------


def test_general_share_holds_within_one_record(badcases, real_data):
    import_file(badcases, real_data / "alpaca_en_demo.json", dataset="general")
    for share in (0.2, 0.3, 0.05):
        result = export_training_set(
            badcases, ExportConfig(name=f"g{share}", general_share=share, leakage_guard="exact")
        )
        rows = lines(result.folder, "train") + lines(result.folder, "val")
        general = sum(r["source"] == "general" for r in rows)
        assert abs(general - share * len(rows)) <= 1, (share, general, len(rows))
        assert result.general_share == pytest.approx(general / len(rows))
        assert any(r["source"] == "general" for r in lines(result.folder, "val")) == (general >= 2)
    flagged = [w for w in result.warnings if "outside the advised 15%-30%" in w]
    assert flagged  # 5% is flagged
    assert "FLAG: outside 15-30%" in (result.folder / "report.md").read_text(encoding="utf-8")


def test_chinese_alpaca_demo_imports_as_general_data_out_of_the_box(badcases, real_data):
    import_file(badcases, real_data / "alpaca_zh_demo.json", dataset="general")
    result = export_training_set(badcases, ExportConfig(name="zh", leakage_guard="exact"))
    general = [r for r in lines(result.folder, "train") if r["source"] == "general"]
    assert general and all(r["category"] is None for r in general)
    assert any(re.search(r"[\u4e00-\u9fff]", r["messages"][-1]["content"]) for r in general)
    assert not result.warnings or all("general data is" not in w for w in result.warnings)


def test_too_little_general_data_is_flagged(badcases, write_jsonl):
    build(
        badcases,
        write_jsonl,
        [
            {
                "messages": [
                    {"role": "user", "content": f"hello {i}"},
                    {"role": "assistant", "content": f"hi {i}"},
                ]
            }
            for i in range(3)
        ],
        status="new",
        dataset="general",
        name="g.jsonl",
    )
    result = export_training_set(badcases, ExportConfig(name="few", leakage_guard="exact"))
    assert any(w.startswith("not enough general data") for w in result.warnings)
    assert sum(p.take for p in result.general) == 3


# --- the split ----------------------------------------------------------------------------------------------


def test_val_split_is_stratified_by_category_with_one_record_at_least(badcases):
    result = export_training_set(badcases, exact(name="v", val=0.1))
    val = by_category(lines(result.folder, "val"))
    assert val == {
        "退款": 4,
        "intent": 3,
        "extract": 1,
        "rare": 1,
    }  # 40, 25 (2.5 rounds up), 12, 3 -> at least one
    train_ids = {r["id"] for r in lines(result.folder, "train")}
    assert not train_ids & {r["id"] for r in lines(result.folder, "val")}


def test_a_category_with_one_record_stays_in_train_and_is_flagged(store, write_jsonl):
    build(store, write_jsonl, badcase_records({"a": 10, "solo": 1}))
    result = export_training_set(store, exact(name="solo"))
    assert "solo" not in by_category(lines(result.folder, "val"))
    assert any("'solo' has a single record" in w for w in result.warnings)


def test_val_count_and_apportion_rules():
    assert [val_count(n, 0.1) for n in (0, 1, 2, 5, 15, 25, 100)] == [0, 0, 1, 1, 2, 3, 10]
    assert val_count(10, 0.0) == 0 and val_count(2, 0.5) == 1
    parts = apportion(10, {"a": 1, "b": 1, "c": 1})
    assert sum(parts.values()) == 10 and sorted(parts.values()) == [3, 3, 4]
    assert apportion(7, {None: 2.0, "x": 5.0}) == {None: 2, "x": 5}


# --- determinism -------------------------------------------------------------------------------------------


def _store_with_data(root: Path, write_jsonl, real_data) -> Store:
    store = Store.open(root)
    build(store, write_jsonl, badcase_records(), status="new")
    import_file(store, real_data / "identity.json", dataset="general")
    return store


def test_same_inputs_and_config_give_byte_identical_files(tmp_path, write_jsonl, real_data):
    config = ExportConfig(
        name="same", per_category=20, upsample=True, statuses=("new",), leakage_guard="exact"
    )
    first = export_training_set(_store_with_data(tmp_path / "one", write_jsonl, real_data), config)
    second = export_training_set(_store_with_data(tmp_path / "two", write_jsonl, real_data), config)
    assert first.general and sum(p.take for p in first.general) > 0
    assert first.folder.name == second.folder.name
    names = sorted(p.name for p in first.folder.iterdir())
    assert names == sorted(p.name for p in second.folder.iterdir())
    for name in names:
        assert (first.folder / name).read_bytes() == (second.folder / name).read_bytes(), name
    again = export_training_set(Store.open(tmp_path / "one"), config)
    assert again.reused and again.folder == first.folder


def test_exporting_again_repairs_a_damaged_folder(badcases):
    first = export_training_set(badcases, exact(name="again"))
    train = (first.folder / "train.jsonl").read_bytes()
    (first.folder / "train.jsonl").write_bytes(train[:100])
    second = export_training_set(badcases, exact(name="again"))
    assert not second.reused and second.folder == first.folder
    assert (second.folder / "train.jsonl").read_bytes() == train
    assert export_training_set(badcases, exact(name="again")).reused


def test_another_seed_gives_another_sample_and_split(badcases):
    a = export_training_set(badcases, exact(name="s", per_category=15, seed=1))
    b = export_training_set(badcases, exact(name="s", per_category=15, seed=2))
    assert a.hash != b.hash and a.folder != b.folder
    assert {r["id"] for r in lines(a.folder, "val")} != {r["id"] for r in lines(b.folder, "val")}
    assert by_category(lines(a.folder, "train") + lines(a.folder, "val")) == by_category(
        lines(b.folder, "train") + lines(b.folder, "val")
    )


# --- the leakage guard ---------------------------------------------------------------------------------------


def test_eval_records_and_exact_copies_of_them_never_enter_training(store, write_jsonl):
    records = badcase_records({"intent": 20})
    copy_of_eval = {
        "messages": [
            {"role": "user", "content": "我的快递到哪了？"},
            {"role": "assistant", "content": "查询中"},
        ],
        "category": "intent",
    }
    same_question = {
        "messages": [
            {"role": "user", "content": "Where is my parcel?"},
            {"role": "assistant", "content": "a different answer"},
        ],
        "category": "intent",
    }
    build(store, write_jsonl, records + [copy_of_eval, same_question])
    build(
        store,
        write_jsonl,
        [
            {
                "messages": [
                    {"role": "user", "content": "我的快递到哪了？"},
                    {"role": "assistant", "content": "查询中"},
                ]
            },
            {
                "messages": [
                    {"role": "user", "content": "Where is my parcel?"},
                    {"role": "assistant", "content": "in transit"},
                ]
            },
        ],
        dataset="eval",
        status="new",
        name="eval.jsonl",
    )
    with store.connect() as con:
        eval_ids = {r[0] for r in con.execute("SELECT id FROM records WHERE dataset = 'eval'").fetchall()}
        leaked = {
            r[0]
            for r in con.execute(
                "SELECT id FROM records WHERE dataset = 'badcases' AND messages[1].content IN "
                "('我的快递到哪了？', 'Where is my parcel?')"
            ).fetchall()
        }
    result = export_training_set(store, exact(name="leak"))
    exported = {r["id"] for r in lines(result.folder, "train") + lines(result.folder, "val")}
    assert not exported & eval_ids and not exported & leaked
    assert result.excluded == {"eval-leak": 2} and result.leaks == 2
    report = (result.folder / "report.md").read_text(encoding="utf-8")
    assert "exact: the same messages as eval record" in report
    assert "exact: the same last user turn as eval record" in report
    manifest = read_manifest(result.folder)
    assert manifest["leakage"] == {"guard": "exact", "eval_records": 2, "removed": 2}


QUESTIONS = [
    "How do I reset my password after the account was locked?",
    "退货运费由谁承担？",
    "Can I change the delivery address once the parcel has shipped?",
    "会员积分什么时候过期？",
    "Why was my card declined even though the balance is fine?",
    "发票抬头写错了可以重开吗？",
]


def test_the_question_an_eval_record_ends_on_is_a_leak_in_a_shorter_chat_too(store, write_jsonl):
    single = [
        {
            "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "好的"}],
            "category": "c",
        }
        for q in ("你能帮我订一份披萨吗？", "明天会下雨吗？", "帮我写一首诗")
    ]
    build(store, write_jsonl, single)
    build(
        store,
        write_jsonl,
        [
            {
                "messages": [
                    {"role": "user", "content": "矩形面积怎么算？"},
                    {"role": "assistant", "content": "长乘宽"},
                    {"role": "user", "content": "你能帮我订一份披萨吗？"},
                    {"role": "assistant", "content": "我不能订餐"},
                ]
            }
        ],
        dataset="eval",
        status="new",
        name="eval.jsonl",
    )
    result = export_training_set(store, exact(name="q"))
    exported = [
        r["messages"][0]["content"] for r in lines(result.folder, "train") + lines(result.folder, "val")
    ]
    assert sorted(exported) == sorted(["明天会下雨吗？", "帮我写一首诗"]) and result.leaks == 1


def test_auto_guard_uses_dedup_find_leaks(store, write_jsonl):
    build(
        store,
        write_jsonl,
        [
            {
                "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "ok"}],
                "category": "faq",
            }
            for q in QUESTIONS
        ],
    )
    # a variant that the exact guard cannot see: other case, spacing and punctuation
    build(
        store,
        write_jsonl,
        [
            {
                "messages": [
                    {"role": "user", "content": "how do I reset my password after the account was locked ??"},
                    {"role": "assistant", "content": "ok"},
                ]
            }
        ],
        dataset="eval",
        status="new",
        name="eval.jsonl",
    )
    exact_only = export_training_set(store, exact(name="exact"))
    assert exact_only.leaks == 0
    result = export_training_set(store, ExportConfig(name="auto", general_share=0.0))
    assert result.leakage_guard == "exact + dedup.find_leaks"
    excluded = [
        json.loads(x) for x in (result.folder / "excluded.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert [x["reason"] for x in excluded] == ["eval-leak"]
    exported = [
        r["messages"][0]["content"] for r in lines(result.folder, "train") + lines(result.folder, "val")
    ]
    assert QUESTIONS[0] not in exported and len(exported) == len(QUESTIONS) - 1


# --- contracts and task types for the trainer ---------------------------------------------------------------


def test_manifest_carries_contracts_and_task_types_of_exported_categories(store, write_jsonl):
    build(store, write_jsonl, badcase_records({"intent": 6, "extract": 4}))
    set_contract(store, Contract("intent", "regex", r"intent 的答案 \d+"))
    set_contract(store, Contract("unused", "labels", ["a", "b"]))
    result = export_training_set(store, exact(name="c"))
    manifest = read_manifest(result.folder)
    assert manifest["contracts"] == {"intent": {"kind": "regex", "spec": r"intent 的答案 \d+"}}
    assert manifest["task_types"] == {"extract": ["generation"], "intent": ["classification"]}
