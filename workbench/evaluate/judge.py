"""The automatic verdict on one answer: the category's output contract decides, and the answer must match
the reference; without a contract a person decides."""

from __future__ import annotations

import difflib

from ..contracts import Contract


def judge(contract: Contract | None, answer: str, reference: str) -> dict:
    """The automatic verdict: where the category has an output contract it decides (label set: the exact label;
    JSON: parses; JSON Schema: valid; regex: matches) and the answer must also match the reference (the same
    text, or the same JSON value); without a contract the verdict waits for a person, and the similarity of
    the answer to the reference is only a hint."""
    from ..train.validation import same_answer  # imported here: that module loads torch, a verdict needs none

    similarity = round(
        difflib.SequenceMatcher(None, answer.strip(), reference.strip(), autojunk=False).ratio(), 4
    )
    if contract is None:
        return {
            "verdict": "pending",
            "contract_ok": None,
            "exact_match": same_answer(answer, reference),
            "reason": "no output contract: a person's verdict decides",
            "similarity": similarity,
        }
    violation = contract.violation(answer)
    exact = same_answer(answer, reference, as_json=contract.kind in ("json", "json_schema"))
    if violation is not None:
        reason = violation
    elif not exact:
        reason = f"obeys the {contract.kind} contract but differs from the reference {_clip(reference)!r}"
    else:
        reason = None
    return {
        "verdict": "right" if violation is None and exact else "wrong",
        "contract_ok": violation is None,
        "exact_match": exact,
        "reason": reason,
        "similarity": similarity,
    }


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."
