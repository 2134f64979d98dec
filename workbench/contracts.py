"""Output contracts: what the assistant's answer in a category must be (a label, JSON, schema-valid JSON, a pattern).

A contract turns "the model keeps getting the format wrong" into a check on the data (every answer
must obey it) and, later, into an automatic verdict on the tuned model's outputs.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from . import patterns
from .errors import InputFileError, WorkbenchError
from .formats import JSONTooDeep, parse_json

ContractKind = Literal["labels", "json", "json_schema", "regex"]
KINDS: tuple[ContractKind, ...] = ("labels", "json", "json_schema", "regex")
KIND_HELP: dict[ContractKind, str] = {
    "labels": "the answer is one of a list",
    "json": "valid JSON",
    "json_schema": "JSON valid against a schema",
    "regex": "the whole answer matches a pattern",
}


@dataclass(frozen=True)
class Contract:
    """The rule an assistant answer in `category` must follow.

    spec: the label list for `labels`, nothing for `json`, the JSON Schema (a dict) for
    `json_schema`, the pattern (matched against the whole answer) for `regex`. Patterns, here and in a
    schema's "pattern" and "patternProperties", run with RE2 (see `patterns`): Python `re` syntax without
    backreferences or lookaround, checked in time linear in the answer whatever the pattern.
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
            _check_schema(self.category, self.spec)
        elif self.kind == "regex":
            if not isinstance(self.spec, str):
                raise WorkbenchError(f"the regex contract for {self.category!r} needs a pattern string")
            try:
                patterns.compile_pattern(self.spec, dot_all=True)
            except WorkbenchError as exc:
                raise WorkbenchError(
                    f"the pattern {self.spec!r} for {self.category!r} cannot be used: {exc}"
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
                if patterns.fullmatch(self.spec, text)
                else (f"the answer {_clip(text)!r} does not match the pattern {self.spec!r}")
            )
        try:
            value = parse_json(text)
        except ValueError as exc:
            return f"the answer is not valid JSON ({exc.msg} at column {exc.colno})"
        if self.kind == "json":
            return None
        import jsonschema  # here, not at the top: the CLI's start-up does not need it

        try:
            error = jsonschema.exceptions.best_match(_validator(self.spec).iter_errors(value))
        except RecursionError:
            return "the JSON answer is nested too deeply to check against the schema"
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
    value = None if spec is None else json.loads(spec)
    try:
        return Contract(category, kind, value)  # type: ignore[arg-type]
    except WorkbenchError as exc:
        # Saved by an older workbench, whose Python patterns allowed what RE2 refuses: the category stays
        # checked, every answer flagged with the reason, until the contract is set again.
        return _UnusableContract(category, kind, value, str(exc))  # type: ignore[arg-type]


@dataclass(frozen=True)
class _UnusableContract(Contract):
    reason: str = ""

    def __post_init__(self) -> None:
        pass

    def violation(self, answer: str | None) -> str | None:
        return f"{self.reason}; set the category's contract again"


def load_schema(path: str | Path) -> dict:
    """The JSON Schema in the file at `path`, or an InputFileError saying why it cannot be one."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"{path} is not UTF-8 text (byte {exc.start}); save the schema as UTF-8"
        ) from None
    except OSError as exc:
        raise InputFileError(f"cannot read the schema file {path}: {exc.strerror}") from None
    try:
        return schema_from_text(text)
    except WorkbenchError as exc:
        raise InputFileError(f"{path}: {exc}") from None


def schema_from_text(text: str) -> dict:
    """The JSON Schema written in `text`, or a WorkbenchError saying where it is not JSON."""
    try:
        return parse_json(text)
    except JSONTooDeep as exc:
        raise WorkbenchError(f"the schema is {exc.msg}; flatten it (use $defs and $ref)") from None
    except json.JSONDecodeError as exc:
        raise WorkbenchError(
            f"the schema is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def _check_schema(category: str, schema: dict) -> None:
    """Refuse a schema that is not valid, or whose patterns RE2 cannot run, with the reason."""
    import jsonschema

    checker = jsonschema.FormatChecker()
    checker.checks("regex", raises=WorkbenchError)(patterns.compile_pattern)
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema, format_checker=checker)
    except jsonschema.SchemaError as exc:
        why = f"the pattern {exc.instance!r} cannot be used: {exc.cause}" if exc.cause else exc.message
        raise WorkbenchError(f"the JSON Schema for {category!r} is not valid: {why}") from None
    except RecursionError:
        raise WorkbenchError(
            f"the JSON Schema for {category!r} is nested too deeply to check; flatten it (use $defs and $ref)"
        ) from None
    if _has_key(schema, "unevaluatedProperties") and _has_key(schema, "patternProperties"):
        raise WorkbenchError(
            f"the JSON Schema for {category!r} combines unevaluatedProperties with patternProperties, whose "
            f"patterns could then not be bounded; use additionalProperties instead"
        )


def _has_key(schema: Any, key: str) -> bool:
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if key in node:
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _validator(schema: dict):
    import jsonschema

    return _bounded_validator_class(jsonschema.validators.validator_for(schema))(schema)


@functools.cache
def _bounded_validator_class(base):
    """`base` (a jsonschema validator class) with its regex keywords run by RE2 instead of Python's re."""
    import jsonschema

    keep_additional = base.VALIDATORS.get("additionalProperties")

    def pattern(validator, pattern, instance, schema):
        if validator.is_type(instance, "string") and not patterns.search(pattern, instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")

    def pattern_properties(validator, pattern_properties, instance, schema):
        if not validator.is_type(instance, "object"):
            return
        for pattern, subschema in pattern_properties.items():
            for key, value in instance.items():
                if patterns.search(pattern, key):
                    yield from validator.descend(value, subschema, path=key, schema_path=pattern)

    def additional_properties(validator, allowed, instance, schema):
        # jsonschema finds the additional properties with re; name the ones a pattern matches as properties
        if validator.is_type(instance, "object") and "patternProperties" in schema:
            matched = {
                key for key in instance if any(patterns.search(p, key) for p in schema["patternProperties"])
            }
            schema = {k: v for k, v in schema.items() if k != "patternProperties"}
            schema["properties"] = {**dict.fromkeys(matched, True), **schema.get("properties", {})}
        yield from keep_additional(validator, allowed, instance, schema)

    return jsonschema.validators.extend(
        base,
        {
            "pattern": pattern,
            "patternProperties": pattern_properties,
            "additionalProperties": additional_properties,
        },
    )


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
