"""What a run prepares before its first step: the devices, the encoded data and the scored samples, the
base model with its LoRA adapter. The trainer (trainer.py) calls these in order and logs through `say`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import WorkbenchError
from ..models import (
    EMBEDDED_MODEL,
    end_of_turn_ids,
    load_causal_lm,
    load_chat_tokenizer,
    pick_device,
    resolve_model,
)
from .config import TrainConfig
from .data import ChatEncoder, Encoded, ExportData, encode_records, read_export
from .folder import adapter_problem
from .packing import register_packed_attention, supports_packing
from .template_check import check_records, require_renderable
from .validation import sample, scorable

Say = Callable[[str], None]


def accelerator_for(config: TrainConfig):
    """The accelerate `Accelerator` for the configured device (bfloat16 mixed precision where it is the
    device's dtype), after applying `config.threads`; returns it with the device and dtype picked."""
    from accelerate import Accelerator

    if config.threads:
        torch.set_num_threads(config.threads)
    device, dtype = pick_device(config.device)
    accelerator = Accelerator(
        cpu=device == "cpu", mixed_precision="bf16" if dtype == torch.bfloat16 else "no"
    )
    return accelerator, device, dtype


@dataclass
class TrainingData:
    """An export encoded for a run: the examples trained and validated on, and the records scored for task
    accuracy (a fixed sample of the validation set and as many training records, all within max_length)."""

    export: ExportData
    tokenizer: object
    encoder: ChatEncoder
    train_set: Encoded
    val_set: Encoded
    scored_val: list[dict]
    scored_train: list[dict]


def load_data(export_dir: Path, config: TrainConfig, models_dir: Path | None, say: Say) -> TrainingData:
    """Read and encode the export folder, saying what each split holds and what was left out and why.
    Raises WorkbenchError when nothing is left to train on."""
    export = read_export(export_dir)
    tokenizer = load_chat_tokenizer(config.base_model, models_dir, config.chat_template)
    encoder = ChatEncoder(tokenizer, end_of_turn_ids(config.base_model, models_dir))
    check = require_renderable(
        check_records(
            encoder, {"train": export.train, "val": export.val}, config.base_model or EMBEDDED_MODEL
        )
    )
    say(f"chat template of {check.model}: renders all {check.shapes} record shapes, answers masked")
    train_set = encode_records(encoder, export.train, config.max_length)
    val_set = encode_records(encoder, export.val, config.max_length)
    say(f"export {export.name} ({export.folder}), hash {export.hash}")
    for split, records, encoded in (("train", export.train, train_set), ("val", export.val, val_set)):
        say(
            f"{split}: {len(records)} records -> {len(encoded.examples)} examples, {encoded.tokens:,} tokens"
            + "".join(
                f"; left out {n}: {why} (lines {encoded.skipped_lines[why]})"
                for why, n in encoded.skipped.items()
            )
        )
    if not train_set.examples:
        raise WorkbenchError(
            f"nothing to train on in {export.folder}/train.jsonl: "
            + ("; ".join(f"{n} {why}" for why, n in train_set.skipped.items()) or "it is empty")
        )
    scored_val = sample(scorable(export.val, export.contracts), config.eval_max_records, config.seed)
    scored_train = sample(scorable(export.train, export.contracts), len(scored_val), config.seed + 1)
    return TrainingData(
        export=export,
        tokenizer=tokenizer,
        encoder=encoder,
        train_set=train_set,
        val_set=val_set,
        scored_val=[r for r in scored_val if _fits(encoder, r, config.max_length)],
        scored_train=[r for r in scored_train if _fits(encoder, r, config.max_length)],
    )


def load_model(
    config: TrainConfig,
    models_dir: Path | None,
    device: str,
    dtype,
    init_adapter: str | Path | None,
    say: Say,
) -> tuple[torch.nn.Module, bool]:
    """The base model with a LoRA adapter to train (a fresh one, or `init_adapter` continued), and whether
    its conversations train packed into one row (see packing.py) rather than in padded batches."""
    started = time.perf_counter()
    model = load_causal_lm(config.base_model, models_dir, dtype=dtype)
    say(
        f"base model {resolve_model(config.base_model, models_dir)} loaded in {time.perf_counter() - started:.1f} s "
        f"({device}, {str(dtype).replace('torch.', '')}, {torch.get_num_threads()} CPU threads)"
    )
    packed, why_not = supports_packing(model.config)
    if packed:
        register_packed_attention()
    else:
        say(f"padded batches instead of packed rows: {why_not}")
    return _attach_lora(model, config, init_adapter, say), packed


def _attach_lora(model, config: TrainConfig, init_adapter, say: Say):
    from peft import LoraConfig, PeftModel, get_peft_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # peft asks transformers a deprecated question
        if init_adapter:
            problem = adapter_problem(Path(init_adapter), tokenizer=False)
            if problem:
                raise WorkbenchError(
                    f"the adapter {init_adapter} to continue is incomplete: {problem}. It was "
                    f"probably cut short while being written; continue from a finished run's adapter"
                )
            model = PeftModel.from_pretrained(model, str(init_adapter), is_trainable=True)
            rank = model.peft_config["default"].r
            say(
                f"continuing the adapter {init_adapter} (rank {rank} as it was trained; lora_rank is not applied)"
            )
            return model
        torch.manual_seed(config.seed)
        lora = LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.alpha,
            lora_dropout=config.lora_dropout,
            target_modules=config.target_modules,
            task_type="CAUSAL_LM",
        )
        say(
            f"fresh LoRA adapter: rank {config.lora_rank}, alpha {config.alpha}, targets {config.target_modules}"
        )
        return get_peft_model(model, lora)


def _fits(encoder: ChatEncoder, record: dict, max_length: int) -> bool:
    return bool(encode_records(encoder, [record], max_length).examples)
