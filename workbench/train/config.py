"""TrainConfig: every knob of a LoRA run, with its default and a help text the CLI and the app show.

Presets follow common practice per task type (epochs, rank); `TrainConfig.for_task()` applies one.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from ..errors import WorkbenchError

RANK_TRADE_OFF = (
    "LoRA rank (alpha is set equal to it). Higher ranks can learn more, but train slower, use more memory and "
    "overfit small data sets sooner. The usual 64-128 for simple tasks (classification, extraction) and 256-512 "
    "for complex ones (open QA, copywriting) are for models of billions of parameters; without a --preset the "
    "default is capped by the model's size: at most 64 on a model with a hidden size under 1024 (SmolLM2-135M's "
    "is 576), 128 under 2048, the practice's values above (64 for classification and extraction everywhere)."
)


@dataclass
class TrainConfig:
    """A LoRA fine-tuning run. The defaults suit a simple task (3 epochs, learning rate 2e-4, rank 64)."""

    base_model: str | None = field(
        default=None,
        metadata={
            "help": (
                "The model to adapt: the embedded SmolLM2-135M-Instruct (empty), a local transformers model folder, a GGUF "
                "file (converted once to plain weights), or a Hugging Face hub id when online. Its own chat template "
                "formats the conversations; a template that cannot render the export is refused before training."
            )
        },
    )
    preset: str | None = field(
        default=None,
        metadata={
            "help": (
                "The task type whose defaults were applied: classification, extraction, qa, copywriting or creative."
            )
        },
    )
    epochs: float = field(
        default=3,
        metadata={
            "help": (
                "Passes over the training set (2-10; 3 for classification, extraction and QA, 5 for copywriting and "
                "creative writing). Fractions stop part-way through the last pass."
            )
        },
    )
    max_steps: int = field(
        default=0, metadata={"help": "Stop after this many optimizer steps (0: the epochs decide)."}
    )
    learning_rate: float = field(
        default=2e-4,
        metadata={
            "help": ("Peak learning rate of the AdamW optimizer (1e-4 to 2e-4 is the usual range for LoRA).")
        },
    )
    lr_scheduler: Literal["cosine", "linear", "constant"] = field(
        default="cosine",
        metadata={
            "help": (
                "How the learning rate falls after warmup: cosine (to zero), linear (to zero) or constant."
            )
        },
    )
    warmup_ratio: float = field(
        default=0.03,
        metadata={
            "help": (
                "Share of the steps during which the learning rate rises linearly from zero to its peak."
            )
        },
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay on the LoRA weights."})
    max_grad_norm: float = field(
        default=1.0, metadata={"help": "Clip the gradient norm to this (0: no clipping)."}
    )
    lora_rank: int = field(default=64, metadata={"help": RANK_TRADE_OFF})
    lora_alpha: int | None = field(
        default=None,
        metadata={
            "help": ("LoRA alpha (the update is scaled by alpha/rank); empty means equal to the rank.")
        },
    )
    lora_dropout: float = field(
        default=0.0,
        metadata={
            "help": (
                "Dropout on the LoRA input (0 trains fastest; 0.05-0.1 can help on very small data sets)."
            )
        },
    )
    target_modules: str | list[str] = field(
        default="all-linear",
        metadata={
            "help": (
                "Which layers get LoRA: all-linear (every linear layer except the output head) or a list of module names."
            )
        },
    )
    max_length: int = field(
        default=2048,
        metadata={
            "help": (
                "Longest conversation in tokens. Longer records are left out (truncating would cut off the answers) and "
                "counted in the run's log."
            )
        },
    )
    batch_size: int = field(default=8, metadata={"help": "Conversations per optimizer step."})
    micro_batch_tokens: int = field(
        default=4096,
        metadata={
            "help": (
                "Most tokens computed at once: a step's conversations are packed into rows of at most this many tokens "
                "and their gradients added up (lower it when memory is short; results do not change)."
            )
        },
    )
    share_prompts: bool = field(
        default=True,
        metadata={
            "help": (
                "Compute a prompt shared by several conversations of a step (the same system prompt, the same first "
                "turns) once. Exact: the loss and gradients are those of computing each conversation whole; off "
                "computes every conversation whole. Steps stay random mixes of the data."
            )
        },
    )
    seed: int = field(
        default=42, metadata={"help": "Seed for the LoRA initialisation, the data order and sampling."}
    )
    eval_every_steps: int = field(
        default=0,
        metadata={
            "help": (
                "Evaluate (validation loss, task accuracy) every this many steps; 0 evaluates at the end of each epoch."
            )
        },
    )
    eval_accuracy: bool = field(
        default=True,
        metadata={
            "help": (
                "Generate answers for the validation set and a same-sized sample of the training set at each evaluation "
                "and score them against the output contracts (categories with a contract only)."
            )
        },
    )
    eval_max_records: int = field(
        default=100,
        metadata={
            "help": (
                "At most this many records per side are generated at each evaluation (a fixed sample beyond that)."
            )
        },
    )
    eval_max_new_tokens: int = field(
        default=256,
        metadata={
            "help": (
                "Longest generated answer at evaluation (capped further by the longest reference answer)."
            )
        },
    )
    early_stopping_patience: int = field(
        default=0,
        metadata={
            "help": (
                "Stop after this many evaluations without a better validation score (0: never stop early). Without it, a "
                "run on an export with output contracts stops after one evaluation without a better validation accuracy "
                "and keeps the best checkpoint."
            )
        },
    )
    final_adapter: Literal["best", "last"] = field(
        default="best",
        metadata={
            "help": (
                "Which weights become the run's adapter: the best checkpoint by validation task accuracy (an "
                "accuracy difference within the noise of a small validation set is a tie, which the lower "
                "validation loss breaks; the loss alone where no category has a contract), or the last state."
            )
        },
    )
    overfit_gap: float = field(
        default=0.15,
        metadata={
            "help": (
                "Flag overfitting when training-sample accuracy exceeds validation accuracy by this much."
            )
        },
    )
    save_every_steps: int = field(
        default=50,
        metadata={
            "help": ("Also write a resumable checkpoint every this many steps (0: only at evaluations).")
        },
    )
    chat_template: str | None = field(
        default=None,
        metadata={
            "help": (
                "For models without a chat template: 'plain' (### User / ### Assistant, ending answers with the model's "
                "end-of-text token), 'chatml', or the path of a Jinja template file. Empty uses the model's own."
            )
        },
    )
    device: str | None = field(
        default=None,
        metadata={
            "help": (
                "cpu, cuda, cuda:1, mps; empty picks CUDA (bfloat16) when a GPU is present, else the CPU (float32)."
            )
        },
    )
    threads: int | None = field(
        default=None,
        metadata={
            "help": (
                "CPU threads for torch (empty: torch's default, one per core). On a machine other jobs share, fewer "
                "threads than cores train far more steadily: every parallel step waits for its slowest thread."
            )
        },
    )

    def __post_init__(self) -> None:
        if self.epochs <= 0 and self.max_steps <= 0:
            raise WorkbenchError("give a positive number of epochs (or max_steps)")
        if self.lora_rank < 1:
            raise WorkbenchError(f"lora_rank must be at least 1, not {self.lora_rank}")
        if not 0 < self.learning_rate < 1:
            raise WorkbenchError(
                f"learning_rate {self.learning_rate} is out of range; LoRA usually takes 1e-4 to 2e-4"
            )
        if self.batch_size < 1 or self.micro_batch_tokens < 16 or self.max_length < 8:
            raise WorkbenchError("batch_size must be ≥ 1, micro_batch_tokens ≥ 16 and max_length ≥ 8")
        if self.lr_scheduler not in ("cosine", "linear", "constant"):
            raise WorkbenchError(
                f"unknown lr_scheduler {self.lr_scheduler!r}: use cosine, linear or constant"
            )
        if self.final_adapter not in ("best", "last"):
            raise WorkbenchError(f"final_adapter must be 'best' or 'last', not {self.final_adapter!r}")

    @property
    def alpha(self) -> int:
        return self.lora_alpha or self.lora_rank

    @classmethod
    def for_task(
        cls, task_type: str | None, *, hidden_size: int | None = None, **overrides: Any
    ) -> TrainConfig:
        """The preset for `task_type` (see PRESETS), with `overrides` (None values ignored) on top; with the
        model's `hidden_size`, its rank and epochs sized for the model (see `sized_values`)."""
        preset = preset_values(task_type) if hidden_size is None else sized_values(task_type, hidden_size)
        values = {**preset, **{k: v for k, v in overrides.items() if v is not None}}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Read a saved config, ignoring keys this version does not know (a config from a newer workbench)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)


# Practice for LoRA SFT: simple mappings (a label, fields) converge in ~3 epochs at rank 64; open-ended
# writing needs more passes and capacity. Learning rate 2e-4 throughout (the top of LoRA's usual range).
PRESETS: dict[str, dict[str, Any]] = {
    "classification": {"epochs": 3, "lora_rank": 64, "learning_rate": 2e-4},
    "extraction": {"epochs": 3, "lora_rank": 64, "learning_rate": 2e-4},
    "qa": {"epochs": 3, "lora_rank": 256, "learning_rate": 2e-4},
    "copywriting": {"epochs": 5, "lora_rank": 256, "learning_rate": 2e-4},
    "creative": {"epochs": 5, "lora_rank": 256, "learning_rate": 2e-4},
}
_ALIASES = {
    "classify": "classification",
    "intent": "classification",
    "labeling": "classification",
    "extract": "extraction",
    "ie": "extraction",
    "question_answering": "qa",
    "question-answering": "qa",
    "copy": "copywriting",
    "marketing": "copywriting",
    "writing": "creative",
    "creative_writing": "creative",
}


def preset_name(task_type: str | None) -> str | None:
    """The preset a task type maps to, or None for an unknown one."""
    if not task_type:
        return None
    key = task_type.strip().lower().replace(" ", "_")
    key = _ALIASES.get(key, key)
    return key if key in PRESETS else None


def preset_values(task_type: str | None) -> dict[str, Any]:
    name = preset_name(task_type)
    if task_type and name is None:
        raise WorkbenchError(f"no preset for task type {task_type!r}; use one of {', '.join(PRESETS)}")
    return {"preset": name, **PRESETS[name]} if name else {}


# The presets' ranks are the practice for models of billions of parameters (hidden size 2048 and up). A smaller
# model has fewer and narrower layers to adapt, so its rank is capped: at most 64 under hidden size 1024 (~0.5B
# parameters and less), at most 128 under 2048. Classification and extraction keep their preset's 64 on every
# model: on SmolLM2-135M (hidden size 576) rank 64 against rank 16 scored 87.2% vs 60.6% held out on BANKING77
# and 95.6% vs 88.9% on CLINC150 (the loop suite, issue 26), for about a quarter more time per token.
SIZE_CAPS = ((1024, 64), (2048, 128))
# Without --early-stopping, a run on an export with output contracts stops after this many evaluations
# without a better validation accuracy (its best checkpoint is the adapter).
EARLY_STOPPING_WITH_CONTRACTS = 1


def sized_values(task_type: str | None, hidden_size: int) -> dict[str, Any]:
    """The defaults when no preset is named: the task type's preset (classification's without one) with its
    rank capped for a small model (see SIZE_CAPS)."""
    values = preset_values(task_type) or {"preset": None, **PRESETS["classification"]}
    cap = next((c for limit, c in SIZE_CAPS if hidden_size < limit), values["lora_rank"])
    return {**values, "lora_rank": min(values["lora_rank"], cap)}


def task_type_of_export(task_types: dict[str, Any] | None) -> str | None:
    """The preset an export's task types point to: the one most of its categories share (None if none is known)."""
    votes: dict[str, int] = {}
    for value in (task_types or {}).values():
        for item in value if isinstance(value, list) else [value]:
            name = preset_name(item) if isinstance(item, str) else None
            if name:
                votes[name] = votes.get(name, 0) + 1
    return max(sorted(votes), key=lambda n: votes[n]) if votes else None


def help_texts() -> dict[str, str]:
    """Field name → help text, for the CLI and the app."""
    return {f.name: f.metadata.get("help", "") for f in fields(TrainConfig)}
