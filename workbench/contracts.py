"""Output contracts: what the assistant's answer in a category must be (a label, JSON, schema-valid JSON, a pattern).

A contract turns "the model keeps getting the format wrong" into a check on the data (every answer
must obey it) and, later, into an automatic verdict on the tuned model's outputs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from .errors import WorkbenchError
from .formats import parse_json

ContractKind = Literal["labels", "json", "json_schema", "regex"]
KINDS: tuple[ContractKind, ...] = ("labels", "json", "json_schema", "regex")


@dataclass(frozen=True)
class Contract:
    """The rule an assistant answer in `category` must follow.

    spec: the label list for `labels`, nothing for `json`, the JSON Schema (a dict) for
    `json_schema`, the pattern (Python `re`, matched against the whole answer) for `regex`.
    """

    category: str
    kind: ContractKind
    spec: Any = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise WorkbenchError(f"unknown contract kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.kind == "labels":
            if (
                not isinstance(self.spec, list | tuple)
                or not self.spec
                or not all(isinstance(x, str) for x in self.spec)
            ):
                raise WorkbenchError(
                    f"the labels contract for {self.category!r} needs a non-empty list of label strings"
                )
        elif self.kind == "json_schema":
            if not isinstance(self.spec, dict):
                raise WorkbenchError(
                    f"the json_schema contract for {self.category!r} needs a JSON Schema object"
                )
            import jsonschema  # here, not at the top: the CLI's start-up does not need it

            try:
                jsonschema.validators.validator_for(self.spec).check_schema(self.spec)
            except jsonschema.SchemaError as exc:
                raise WorkbenchError(
                    f"the JSON Schema for {self.category!r} is not valid: {exc.message}"
                ) from None
        elif self.kind == "regex":
            if not isinstance(self.spec, str):
                raise WorkbenchError(f"the regex contract for {self.category!r} needs a pattern string")
            try:
                re.compile(self.spec)
            except re.error as exc:
                raise WorkbenchError(
                    f"the pattern for {self.category!r} is not a valid regex: {exc}"
                ) from None

    def violation(self, answer: str | None) -> str | None:
        """None when `answer` obeys the contract, else a sentence saying how it does not."""
        text = answer or ""
        if self.kind == "labels":
            if text in self.spec:
                return None
            if text.strip() in self.spec:
                return f"the answer {text!r} has whitespace around the label {text.strip()!r}"
            shown = ", ".join(self.spec[:12]) + (" ..." if len(self.spec) > 12 else "")
            return f"the answer {_clip(text)!r} is not one of the labels: {shown}"
        if self.kind == "regex":
            return (
                None
                if re.fullmatch(self.spec, text, flags=re.DOTALL)
                else (f"the answer {_clip(text)!r} does not match the pattern {self.spec!r}")
            )
        try:
            value = parse_json(text)
        except ValueError as exc:
            return f"the answer is not valid JSON ({exc.msg} at column {exc.colno})"
        if self.kind == "json":
            return None
        import jsonschema

        validator = jsonschema.validators.validator_for(self.spec)(self.spec)
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if error is None:
            return None
        where = "/".join(str(p) for p in error.absolute_path) or "the top level"
        return f"the JSON answer breaks the schema at {where}: {error.message}"

    def to_row(self) -> tuple[str, str, str | None]:
        return (
            self.category,
            self.kind,
            None if self.spec is None else json.dumps(self.spec, ensure_ascii=False),
        )


def contract_from_row(category: str, kind: str, spec: str | None) -> Contract:
    return Contract(category, kind, None if spec is None else json.loads(spec))  # type: ignore[arg-type]


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
