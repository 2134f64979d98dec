"""The model registry: OpenAI-compatible endpoints and local models by name, what each can do (chat, train,
evaluate) and whether it answers now. The embedded model is the default and is never registered."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import roles
from .endpoint import DEFAULT_CONCURRENCY, Endpoint, EndpointError, normalise_url, probe
from .errors import WorkbenchError
from .models import EMBEDDED_MODEL
from .store import Store
from .store import registry as sql

CAPABILITIES = {"endpoint": ("chat", "evaluate"), "path": ("chat", "train", "evaluate")}
ENDPOINT_PREFIX = "endpoint:"


@dataclass
class RegisteredModel:
    """A model by name: where it is (an endpoint or a folder), what it can do, and (when probed) whether it
    answers now."""

    name: str
    kind: str
    where: str
    model_id: str | None = None
    api_key_env: str | None = None
    max_concurrency: int | None = None
    run_id: int | None = None
    capabilities: tuple[str, ...] = ()
    healthy: bool | None = None
    health: str | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {**self.__dict__, "capabilities": list(self.capabilities)}


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or any(c.isspace() for c in name) or name.lower() in (EMBEDDED_MODEL, "base", "default"):
        raise WorkbenchError(
            f"{name!r} cannot name a model: use a word without spaces other than 'base' or {EMBEDDED_MODEL!r}"
        )
    return name


def add_endpoint(
    store: Store,
    name: str,
    url: str,
    model_id: str,
    *,
    api_key_env: str | None = None,
    max_concurrency: int = DEFAULT_CONCURRENCY,
    author: str | None = None,
    check: bool = True,
    run_id: int | None = None,
    replace: bool = False,
) -> RegisteredModel:
    """Register an OpenAI-compatible endpoint. With `check` it must answer and serve `model_id` first
    (EndpointError says why not: unreachable, wrong model id, missing key variable, not an OpenAI server)."""
    roles.require(store, "models", author)
    name = _check_name(name)
    if api_key_env is not None and (not api_key_env.isidentifier() or api_key_env != api_key_env.strip()):
        raise WorkbenchError(
            f"--api-key-env takes the NAME of an environment variable (e.g. OPENAI_API_KEY), not {api_key_env!r}; "
            "the key itself is never stored"
        )
    if max_concurrency < 1:
        raise WorkbenchError(f"--max-concurrency must be 1 or more, not {max_concurrency}")
    endpoint = Endpoint(name, normalise_url(url), model_id, api_key_env, max_concurrency)
    if check:
        health = probe(endpoint)
        if not health.ok:
            raise EndpointError(f"{health.message}. Nothing was registered.")
    row = sql.ModelRow(
        name, "endpoint", endpoint.url, model_id, api_key_env, max_concurrency, None, run_id, author, None
    )
    with store.transaction() as con:
        sql.insert_model(con, row, replace=replace)
    return _registered(row)


def add_path(store: Store, name: str, path: str | Path, *, author: str | None = None) -> RegisteredModel:
    """Register a local model: a transformers folder (with config.json), or a GGUF file, converted once into a
    safetensors folder under the store's models/ (as the embedded model is)."""
    roles.require(store, "models", author)
    name = _check_name(name)
    source = Path(path).expanduser()
    if source.is_file() and source.suffix.lower() == ".gguf":
        from .models import convert_gguf

        folder = store.models_dir / f"registered-{name}"
        if not (folder / "config.json").is_file():
            convert_gguf(source.resolve(), folder)
    elif source.is_dir() and (source / "config.json").is_file():
        folder = source.resolve()
    else:
        raise WorkbenchError(
            f"{source} is neither a transformers model folder (with config.json) nor a .gguf file; "
            "give the path of one"
        )
    row = sql.ModelRow(name, "path", None, None, None, None, str(folder), None, author, None)
    with store.transaction() as con:
        sql.insert_model(con, row)
    return _registered(row)


def remove_model(store: Store, name: str) -> None:
    roles.require(store, "models")
    with store.transaction() as con:
        sql.delete_model(con, name)


def list_models(store: Store, *, probe_health: bool = True) -> list[RegisteredModel]:
    """The embedded model first, then every registered one; with `probe_health`, whether each answers now."""
    with store.connect() as con:
        rows = sql.list_models(con)
    embedded = RegisteredModel(
        EMBEDDED_MODEL, "embedded", "shipped with the workbench (default)", capabilities=CAPABILITIES["path"]
    )
    found = [embedded] + [_registered(r) for r in rows]
    if probe_health:
        for model in found:
            model.healthy, model.health = _health(model)
    return found


def get_model(store: Store, name: str) -> RegisteredModel:
    with store.connect() as con:
        return _registered(sql.get_model(con, name.removeprefix(ENDPOINT_PREFIX)))


def endpoint_of(store: Store, name: str) -> Endpoint:
    """The endpoint registered as `name` (with or without the 'endpoint:' prefix)."""
    model = get_model(store, name)
    if model.kind != "endpoint":
        raise WorkbenchError(
            f"model {model.name!r} is a local folder, not an endpoint; evaluate it as {model.name}"
        )
    return Endpoint(
        model.name, model.where, model.model_id or "", model.api_key_env, model.max_concurrency or 1
    )


def _registered(row: sql.ModelRow) -> RegisteredModel:
    return RegisteredModel(
        name=row.name,
        kind=row.kind,
        where=row.url if row.kind == "endpoint" else row.path,
        model_id=row.model_id,
        api_key_env=row.api_key_env,
        max_concurrency=row.max_concurrency,
        run_id=row.run_id,
        capabilities=CAPABILITIES[row.kind],
    )


def _health(model: RegisteredModel) -> tuple[bool, str]:
    if model.kind == "embedded":
        return True, "in-process"
    if model.kind == "path":
        ok = (Path(model.where) / "config.json").is_file()
        return ok, "folder present" if ok else f"{model.where} is gone"
    endpoint = Endpoint(
        model.name, model.where, model.model_id or "", model.api_key_env, model.max_concurrency or 1
    )
    if endpoint.api_key_env and not os.environ.get(endpoint.api_key_env):
        return False, f"${endpoint.api_key_env} is not set"
    health = probe(endpoint)
    return health.ok, health.message


def add_model(
    store: Store,
    name: str,
    *,
    url: str | None = None,
    model_id: str | None = None,
    path: str | Path | None = None,
    api_key_env: str | None = None,
    max_concurrency: int = DEFAULT_CONCURRENCY,
    check: bool = True,
    author: str | None = None,
) -> RegisteredModel:
    """Register an endpoint (url and model_id) or a local model (path): what `workbench models add` does."""
    if path is not None:
        return add_path(store, name, path, author=author)
    if not url or not model_id:
        raise WorkbenchError(
            "an endpoint needs both --endpoint URL and --model ID (the id its /v1/models lists)"
        )
    return add_endpoint(
        store,
        name,
        url,
        model_id,
        api_key_env=api_key_env,
        max_concurrency=max_concurrency,
        check=check,
        author=author,
    )
