"""Validation during training: validation loss, task accuracy against the output contracts, overfitting flags.

Task accuracy generates (greedy) the final answer of each record whose category has an output contract
and counts it right when it obeys the contract and says what the reference answer says (the same
label; the same JSON value; the same text for a pattern). It runs on the validation set and on an
equal-sized sample of the training set, so a widening gap between the two shows memorisation.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from ..contracts import Contract
from ..generation import decode_answer, generate_greedy
from .data import ChatEncoder, Example, micro_batches, reference_answer
from .packing import batch_loss, pack


@torch.no_grad()
def validation_loss(
    model, examples: Sequence[Example], *, max_tokens: int, device, packed: bool = True, autocast=None
) -> float | None:
    """Mean weighted cross-entropy over the trained tokens of `examples` (None when there are none)."""
    if not examples:
        return None
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for group in micro_batches(examples, max_tokens):
        batch = pack(group).to(device)
        with autocast() if autocast else nullcontext():
            loss_sum, n = batch_loss(model, batch, packed=packed)
        total += float(loss_sum)
        count += int(n)
    model.train(was_training)
    return total / count if count else None


def is_correct(contract: Contract, answer: str, reference: str) -> bool:
    """Right when the answer obeys the contract and means what the reference means."""
    if contract.violation(answer) is not None:
        return False
    return same_answer(answer, reference, as_json=contract.kind in ("json", "json_schema"))


def same_answer(answer: str, reference: str, *, as_json: bool = False) -> bool:
    """Exact match: the same text (surrounding whitespace aside), or for JSON answers the same JSON value."""
    if as_json:
        try:
            return json.loads(answer) == json.loads(reference)
        except ValueError:
            pass
    return answer.strip() == reference.strip()


@torch.no_grad()
def answer_loss(model, example: Example, *, device) -> float | None:
    """Mean weighted cross-entropy of one conversation's trained tokens (its answers) under `model`
    (None when nothing in it is trained)."""
    targets = [t for t, w in enumerate(example.weights) if w > 0 and t > 0]
    if not targets:
        return None
    ids = torch.tensor([example.input_ids], dtype=torch.long, device=device)
    keep = torch.tensor([t - 1 for t in targets], dtype=torch.long, device=device)
    logits = model(input_ids=ids, logits_to_keep=keep, use_cache=False).logits[0].float()
    weights = torch.tensor([example.weights[t] for t in targets], device=logits.device)
    ce = torch.nn.functional.cross_entropy(logits, ids[0, targets].to(logits.device), reduction="none")
    return float((ce * weights).sum() / weights.sum())


@dataclass
class AccuracyResult:
    """Task accuracy on one side (validation or a training sample)."""

    n: int
    correct: int
    valid: int
    by_category: dict[str, list[int]] = field(default_factory=dict)  # category -> [n, correct]
    misses: list[dict] = field(default_factory=list)  # a few wrong answers, for the report

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def valid_rate(self) -> float:
        return self.valid / self.n if self.n else 0.0

    def as_dict(self) -> dict:
        return {
            "n": self.n,
            "correct": self.correct,
            "valid": self.valid,
            "accuracy": round(self.accuracy, 4),
            "valid_rate": round(self.valid_rate, 4),
            "by_category": self.by_category,
            "misses": self.misses,
        }


def scorable(records: Sequence[dict], contracts: dict[str, Contract]) -> list[dict]:
    """The records task accuracy can score: a category with a contract and a final assistant answer."""
    return [
        r for r in records if r.get("category") in contracts and reference_answer(r["messages"]) is not None
    ]


def sample(records: Sequence[dict], n: int, seed: int) -> list[dict]:
    """A fixed sample of `n` records (all of them when there are no more than `n`)."""
    if len(records) <= n:
        return list(records)
    rng = random.Random(seed)
    return [records[i] for i in sorted(rng.sample(range(len(records)), n))]


def generate_answers(
    model, encoder: ChatEncoder, records: Sequence[dict], *, max_new_tokens: int, device, batch_size: int = 16
) -> list[str]:
    """Greedy answers to each record's final assistant turn, batched, the shared system prompt computed once
    (see workbench.generation)."""
    prompts = [encoder.prompt_ids(r["messages"], r.get("tools")) for r in records]
    pad = encoder.tok.pad_token_id if encoder.tok.pad_token_id is not None else 0
    generated = generate_greedy(
        model,
        prompts,
        max_new_tokens=max_new_tokens,
        stop_ids=sorted(encoder.end_of_turn_ids),
        pad_id=pad,
        device=device,
        batch_size=batch_size,
    )
    return [decode_answer(encoder.tok, g.ids) for g in generated]


def task_accuracy(
    model,
    encoder: ChatEncoder,
    records: Sequence[dict],
    contracts: dict[str, Contract],
    *,
    max_new_tokens: int,
    device,
) -> AccuracyResult:
    """Generate and score the answers of `records` (each must be scorable, see `scorable`)."""
    references = [reference_answer(r["messages"]) or "" for r in records]
    longest = max((len(encoder.tokens(ref)) for ref in references), default=1)
    # Room for the longest reference twice over: enough to see a right answer end, cheap when labels are short.
    budget = max(1, min(max_new_tokens, 2 * longest + 8))
    answers = generate_answers(model, encoder, records, max_new_tokens=budget, device=device)
    result = AccuracyResult(0, 0, 0)
    for record, answer, reference in zip(records, answers, references, strict=True):
        contract = contracts[record["category"]]
        ok = is_correct(contract, answer, reference)
        result.n += 1
        result.correct += ok
        result.valid += contract.violation(answer) is None
        cell = result.by_category.setdefault(record["category"], [0, 0])
        cell[0] += 1
        cell[1] += ok
        if not ok and len(result.misses) < 5:
            result.misses.append(
                {
                    "id": record.get("id"),
                    "category": record["category"],
                    "answer": answer[:200],
                    "reference": reference[:200],
                }
            )
    return result


def evaluation_row(
    model,
    *,
    step: int,
    epoch: float,
    train_loss: float | None,
    val_examples: Sequence[Example],
    scored: Sequence[tuple[str, Sequence[dict]]],
    encoder: ChatEncoder,
    contracts: dict[str, Contract],
    max_tokens: int,
    max_new_tokens: int,
    device,
    packed: bool,
    autocast,
) -> dict:
    """One evaluation during training, as its metrics.jsonl row (kind "eval"): the training loss since the
    last one, the validation loss, and per side of `scored` (("val", records), ("train", records)) the task
    accuracy, the share of valid answers, n and the details (by category, a few misses)."""
    row = {
        "step": step,
        "epoch": epoch,
        "kind": "eval",
        "train_loss": train_loss,
        "val_loss": validation_loss(
            model, val_examples, max_tokens=max_tokens, device=device, packed=packed, autocast=autocast
        ),
    }
    for side, records in scored:
        if records:
            acc = task_accuracy(
                model, encoder, records, contracts, max_new_tokens=max_new_tokens, device=device
            )
            row[f"{side}_accuracy"], row[f"{side}_valid"], row[f"{side}_n"] = (
                acc.accuracy,
                acc.valid_rate,
                acc.n,
            )
            row[f"{side}_detail"] = acc.as_dict()
    return row


def overfitting_warnings(evals: Sequence[dict], gap: float) -> list[str]:
    """Sentences flagging overfitting in the evaluation rows (step, train_loss, val_loss, val_accuracy,
    train_accuracy, val_n, train_n): training-sample accuracy above validation accuracy at the last
    evaluation by at least `gap` and by more than sampling noise (two standard errors of the difference, so
    20 records a side do not cry wolf), or validation loss risen above its best while training loss fell."""
    warnings = []
    if not evals:
        return warnings
    last = evals[-1]
    train_acc, val_acc = last.get("train_accuracy"), last.get("val_accuracy")
    if train_acc is not None and val_acc is not None and train_acc - val_acc >= max(gap, _noise(last)):
        warnings.append(
            f"overfitting: at step {last['step']} the adapter answers {train_acc:.0%} of a training sample right "
            f"but only {val_acc:.0%} of the validation set (gap {train_acc - val_acc:.0%} ≥ {gap:.0%}); it memorises "
            f"rather than generalises. Use the best checkpoint, fewer epochs, a lower rank, or more varied data."
        )
    with_loss = [e for e in evals if e.get("val_loss") is not None]
    if len(with_loss) >= 2:
        best = min(with_loss, key=lambda e: e["val_loss"])
        end = with_loss[-1]
        fell = (
            best.get("train_loss") is not None
            and end.get("train_loss") is not None
            and end["train_loss"] < best["train_loss"]
        )
        if end is not best and end["val_loss"] > best["val_loss"] * 1.05 and fell:
            warnings.append(
                f"overfitting: validation loss rose from {best['val_loss']:.3f} (step {best['step']}) to "
                f"{end['val_loss']:.3f} (step {end['step']}) while training loss fell from {best['train_loss']:.3f} "
                f"to {end['train_loss']:.3f}. The best checkpoint (step {best['step']} by loss) generalises better."
            )
    return warnings


def _noise(row: dict) -> float:
    """Two standard errors of the difference between the two accuracies (0 when the sizes are unknown)."""
    n_train, n_val = row.get("train_n"), row.get("val_n")
    if not n_train or not n_val:
        return 0.0
    p, q = row["train_accuracy"], row["val_accuracy"]
    return 2 * math.sqrt(p * (1 - p) / n_train + q * (1 - q) / n_val)
