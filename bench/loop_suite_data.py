"""Build the loop suite's tasks from public labelled data sets: `python -m bench.loop_suite_data [--out DIR]`.

Five tasks nobody in the project tuned to, each a few hundred training records and a held-out test set taken
from the data set's own test split (never from its training split), in the chat-record form users import:

| task        | language | kind                     | source (licence)                                     |
|-------------|----------|--------------------------|------------------------------------------------------|
| banking77   | English  | intent classification    | PolyAI-LDN/task-specific-datasets (CC BY 4.0)        |
| clinc150    | English  | intent classification    | clinc/oos-eval (CC BY 3.0)                           |
| tnews       | Chinese  | news topic               | CLUEbenchmark/FewCLUE, TNEWS (licence not stated)    |
| iflytek     | Chinese  | app category (topic)     | CLUEbenchmark/FewCLUE, IFLYTEK (licence not stated)  |
| snips_book  | English  | extraction, JSON output  | sonos/nlu-benchmark, BookRestaurant (not stated)     |

The labels of a classification task are a seeded random sample of the data set's labels (nobody picked easy
ones), listed in the system prompt as users write it; the answer is the label. The extraction task asks for the
booking's slots as a JSON object (keys in a fixed order, values as written in the request); `{}` when none.

The two CC BY sets are built into the repository (bench/loop_suite/, with their attribution), so the suite runs
from a fresh clone; the others are built into --out (default store/loop-suite, what `python -m bench loop_suite`
reads) from a clone of their public repository: `git clone` from GitHub unless `--source NAME=DIR` names a local
clone (a work tree or a bare git directory). Deterministic: the same sources give the same files.
"""

from __future__ import annotations

import argparse
import collections
import csv
import io
import json
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IN_REPO = Path(__file__).resolve().parent / "loop_suite"  # the CC BY tasks, committed
BUILT = ROOT / "store" / "loop-suite"  # the others, built here by default
SEED = 20261206

REPOS = {
    "polyai": "https://github.com/PolyAI-LDN/task-specific-datasets",
    "clinc": "https://github.com/clinc/oos-eval",
    "fewclue": "https://github.com/CLUEbenchmark/FewCLUE",
    "snips": "https://github.com/sonos/nlu-benchmark",
}


class Source:
    """A public repository's files, read from a work tree or a bare git directory."""

    def __init__(self, path: Path):
        self.path = path
        self.bare = not (path / ".git").exists() and (path / "HEAD").is_file()

    def read(self, name: str) -> str:
        if not self.bare and (self.path / name).is_file():
            return (self.path / name).read_text(encoding="utf-8")
        shown = subprocess.run(
            ["git", "-C", str(self.path), "show", f"HEAD:{name}"], capture_output=True, check=False
        )
        if shown.returncode:
            raise SystemExit(f"{self.path}: has no {name} ({shown.stderr.decode().strip()})")
        return shown.stdout.decode("utf-8")

    def jsonl(self, name: str) -> list[dict]:
        return [json.loads(line) for line in self.read(name).split("\n") if line.strip()]


@dataclass
class Task:
    name: str
    language: str
    kind: str  # classification or extraction
    source: str
    licence: str
    train: list[dict]
    test: list[dict]
    labels: list[str] | None = None

    @property
    def category(self) -> str:
        return self.name

    def write(self, folder: Path) -> Path:
        out = folder / self.name
        out.mkdir(parents=True, exist_ok=True)
        for split in ("train", "test"):
            rows = getattr(self, split)
            (out / f"{split}.jsonl").write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
            )
        meta = {
            "name": self.name,
            "language": self.language,
            "kind": self.kind,
            "category": self.category,
            "labels": self.labels,
            "contract": "labels" if self.labels else "json",
            "source": self.source,
            "licence": self.licence,
            "train": len(self.train),
            "test": len(self.test),
        }
        (out / "task.json").write_text(
            json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        return out


def chat(system: str, user: str, answer: str) -> dict:
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer},
        ]
    }


def classification(
    name: str,
    language: str,
    source: str,
    licence: str,
    pools: tuple[list[tuple[str, str]], list[tuple[str, str]]],
    *,
    labels: int,
    train_per_label: int,
    test_per_label: int,
    system: Callable[[list[str]], str],
) -> Task:
    """A classification task from (text, label) pools of the data set's training and test splits: a seeded
    sample of `labels` labels, then per label a seeded sample of each split."""
    train_pool, test_pool = pools
    by_label: dict[str, dict[str, list[str]]] = collections.defaultdict(lambda: {"train": [], "test": []})
    for split, pool in (("train", train_pool), ("test", test_pool)):
        for text, label in pool:
            text = " ".join(text.split())
            if text and text not in by_label[label][split]:
                by_label[label][split].append(text)
    usable = sorted(
        label
        for label, splits in by_label.items()
        if len(splits["train"]) >= train_per_label and len(splits["test"]) >= test_per_label
    )
    rng = random.Random(f"{SEED}:{name}")
    chosen = sorted(rng.sample(usable, labels))
    prompt = system(chosen)
    train, test = [], []
    for label in chosen:
        trained = set(rng.sample(by_label[label]["train"], train_per_label))
        train += [chat(prompt, text, label) for text in sorted(trained)]
        tested = [t for t in by_label[label]["test"] if t not in trained]
        test += [chat(prompt, text, label) for text in sorted(rng.sample(tested, test_per_label))]
    rng.shuffle(train)
    rng.shuffle(test)
    return Task(name, language, "classification", source, licence, train, test, chosen)


def english_intents(bank: str) -> Callable[[list[str]], str]:
    def system(labels: list[str]) -> str:
        return (
            f"You are the message router of {bank}. Read the customer's message and answer with exactly one of "
            f"these intents, nothing else: {', '.join(labels)}."
        )

    return system


def banking77(src: Source) -> Task:
    def rows(name: str) -> list[tuple[str, str]]:
        return [(r["text"], r["category"]) for r in csv.DictReader(io.StringIO(src.read(name)))]

    return classification(
        "banking77",
        "en",
        REPOS["polyai"] + " banking_data/{train,test}.csv",
        "CC BY 4.0 (Casanueva et al. 2020, PolyAI)",
        (rows("banking_data/train.csv"), rows("banking_data/test.csv")),
        labels=12,
        train_per_label=25,
        test_per_label=15,
        system=english_intents("an online bank"),
    )


def clinc150(src: Source) -> Task:
    data = json.loads(src.read("data/data_full.json"))
    return classification(
        "clinc150",
        "en",
        REPOS["clinc"] + " data/data_full.json",
        "CC BY 3.0 (Larson et al. 2019, Clinc)",
        ([tuple(r) for r in data["train"]], [tuple(r) for r in data["test"]]),
        labels=12,
        train_per_label=25,
        test_per_label=15,
        system=english_intents("a voice assistant"),
    )


def fewclue(
    src: Source,
    name: str,
    pair: Callable[[dict], tuple[str, str]],
    system: Callable[[list[str]], str],
    **sizes: int,
) -> Task:
    """A FewCLUE classification task: its few-shot train and dev files pooled for training, test_public held out;
    `pair` turns a line into (text, label)."""

    def rows(*files: str) -> list[tuple[str, str]]:
        return [pair(r) for f in files for r in src.jsonl(f"datasets/{name}/{f}.json")]

    return classification(
        name,
        "zh",
        REPOS["fewclue"] + f" datasets/{name} (train_few_all + dev_few_all; test_public)",
        "not stated by FewCLUE: built locally, not committed",
        (rows("train_few_all", "dev_few_all"), rows("test_public")),
        system=system,
        **sizes,
    )


def tnews(src: Source) -> Task:
    names = {r["label_desc"]: r["label_zh"] for r in src.jsonl("datasets/tnews/label_index2en2zh.json")}
    return fewclue(
        src,
        "tnews",
        lambda r: (r["sentence"], names[r["label_desc"]]),
        lambda labels: (
            f"你是新闻编辑。阅读下面的新闻标题，判断它属于哪个栏目，只回答以下栏目之一，不要输出其他内容：{'、'.join(labels)}。"
        ),
        labels=8,
        train_per_label=40,
        test_per_label=25,
    )


def iflytek(src: Source) -> Task:
    # the first 120 characters: an app's description says what it is for up front; the rest lists features and
    # release notes
    return fewclue(
        src,
        "iflytek",
        lambda r: (r["sentence"][:120], r["label_des"]),
        lambda labels: (
            f"你是应用商店的审核员。阅读下面的应用介绍，判断它属于哪个类别，只回答以下类别之一，不要输出其他内容：{'、'.join(labels)}。"
        ),
        labels=8,
        train_per_label=35,
        test_per_label=20,
    )


SNIPS_KEYS = (
    "restaurant_name",
    "restaurant_type",
    "cuisine",
    "served_dish",
    "party_size_number",
    "party_size_description",
    "timeRange",
    "city",
    "state",
    "country",
    "spatial_relation",
    "poi",
    "facility",
    "sort",
)


def snips_book(src: Source) -> Task:
    folder = "2017-06-custom-intent-engines/BookRestaurant"
    prompt = (
        "Extract the details of this restaurant booking request as a JSON object. Use only these keys, in this "
        f"order, for the details the request gives, with the words as written in it: {', '.join(SNIPS_KEYS)}. "
        "Answer with the JSON object only ({} when the request gives none)."
    )

    def rows(name: str) -> list[dict]:
        out = []
        for utterance in json.loads(src.read(f"{folder}/{name}"))["BookRestaurant"]:
            chunks = utterance["data"]
            text = " ".join("".join(c["text"] for c in chunks).split())
            slots: dict[str, str] = {}
            for c in chunks:
                if c.get("entity") in SNIPS_KEYS and c["entity"] not in slots:
                    slots[c["entity"]] = " ".join(c["text"].split())
            ordered = {k: slots[k] for k in SNIPS_KEYS if k in slots}
            if text:
                out.append(chat(prompt, text, json.dumps(ordered, ensure_ascii=False)))
        return out

    rng = random.Random(f"{SEED}:snips_book")
    train_pool = rows("train_BookRestaurant_full.json")
    test_pool = rows("validate_BookRestaurant.json")
    test_texts = {r["messages"][1]["content"] for r in test_pool}
    train_pool = [r for r in train_pool if r["messages"][1]["content"] not in test_texts]
    return Task(
        "snips_book",
        "en",
        "extraction",
        REPOS["snips"] + f" {folder} (train_BookRestaurant_full; validate_BookRestaurant)",
        "not stated in the repository: built locally, not committed",
        rng.sample(train_pool, 300),
        rng.sample(test_pool, 100),
    )


BUILDERS: dict[str, tuple[str, Callable[[Source], Task], bool]] = {
    # task: (repository, builder, committed to bench/loop_suite/)
    "banking77": ("polyai", banking77, True),
    "clinc150": ("clinc", clinc150, True),
    "tnews": ("fewclue", tnews, False),
    "iflytek": ("fewclue", iflytek, False),
    "snips_book": ("snips", snips_book, False),
}


def suite_folders(built: Path = BUILT) -> list[Path]:
    """Every built task's folder, in BUILDERS order: the committed ones and those built into `built`."""
    folders = []
    for name, (_repo, _build, committed) in BUILDERS.items():
        folder = (IN_REPO if committed else built) / name
        if (folder / "task.json").is_file():
            folders.append(folder)
    return folders


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=BUILT, help="where the tasks not committed are written")
    parser.add_argument(
        "--source", action="append", default=[], help="REPO=DIR: a local clone of " + ", ".join(REPOS)
    )
    parser.add_argument("--tasks", default=",".join(BUILDERS), help="comma-separated task names")
    parser.add_argument(
        "--committed", action="store_true", help="also rewrite the committed tasks in bench/loop_suite"
    )
    args = parser.parse_args(argv)
    local = dict(item.split("=", 1) for item in args.source)
    with tempfile.TemporaryDirectory(prefix="loop-suite-src-") as tmp:
        sources: dict[str, Source] = {}
        for name in args.tasks.split(","):
            if name not in BUILDERS:
                raise SystemExit(f"no task {name!r}; there are: {', '.join(BUILDERS)}")
            repo, build, committed = BUILDERS[name]
            if committed and not args.committed:
                print(f"{name}: committed in {IN_REPO / name} (--committed rebuilds it)")
                continue
            if repo not in sources:
                path = Path(local[repo]) if repo in local else Path(tmp) / repo
                if repo not in local:
                    print(f"cloning {REPOS[repo]} ...", flush=True)
                    subprocess.run(["git", "clone", "-q", "--depth", "1", REPOS[repo], str(path)], check=True)
                sources[repo] = Source(path)
            task = build(sources[repo])
            written = task.write(IN_REPO if committed else args.out)
            print(f"{name}: {len(task.train)} train, {len(task.test)} test -> {written}")


if __name__ == "__main__":
    main(sys.argv[1:])
