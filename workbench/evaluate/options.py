"""How an evaluation generates (EvalOptions, with the help texts the UI shows), the eval sets it runs on,
the progress callback's shape and the cancel it raises."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

from ..errors import WorkbenchError

EVAL_SETS = ("dataset", "val", "trained", "general")
Progress = Callable[[int, int, dict], None]  # (done, total, info)


class EvaluationCancelled(WorkbenchError):
    """The evaluation was stopped; what it had done is stored and `resume_evaluation` continues it."""


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class EvalOptions:
    """How an evaluation generates. Every field has a default; the help texts are what the UI shows."""

    max_new_tokens: int = field(
        default=128,
        metadata=_help(
            "Most tokens generated for an answer without a contract. Answers under a contract get twice their "
            "reference's length plus 8, enough to see a right answer end."
        ),
    )
    batch_size: int = field(default=16, metadata=_help("Prompts generated together."))
    limit: int | None = field(
        default=None,
        metadata=_help(
            "Evaluate a fixed sample of at most this many records (default: all; the general set: 200)."
        ),
    )
    seed: int = field(default=0, metadata=_help("Seed of the sample."))
    generate: bool | None = field(
        default=None,
        metadata=_help(
            "Generate answers (default: yes, except on the general set, where only the answers' loss is measured)."
        ),
    )
    share_prefix: bool = field(
        default=True,
        metadata=_help(
            "Compute a prompt beginning shared by many records (the system prompt) once per group of prompts."
        ),
    )
    device: str | None = field(
        default=None, metadata=_help("cuda, cpu, ... (default: a GPU when there is one).")
    )
    threads: int | None = field(
        default=None, metadata=_help("CPU threads for torch (default: torch's choice).")
    )
    cache: bool = field(
        default=True,
        metadata=_help(
            "Reuse answers and losses this store computed before for the same model, adapter, prompt and "
            "settings (greedy answers are deterministic); off: compute every one again."
        ),
    )
    max_concurrency: int | None = field(
        default=None,
        metadata=_help("Requests in flight at once to an endpoint (default: the registered model's)."),
    )
    chunk: int = field(default=64, metadata=_help("Records written back to the store per transaction."))

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def help_text(cls, name: str) -> str:
        """The help text of field `name` (what the CLI's option and the page's input say)."""
        return cls.__dataclass_fields__[name].metadata["help"]

    @classmethod
    def from_dict(cls, data: dict) -> EvalOptions:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
