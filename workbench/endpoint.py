"""Talking to an OpenAI-compatible chat endpoint (vLLM, SGLang, Ollama, llama.cpp, `transformers serve`, OpenAI):
one answer with its token counts and seconds, many answers with bounded concurrency, and the health probe.

The `openai` client does the HTTP: its timeouts, and its retries with exponential backoff on connection
errors, 408/409/429 and 5xx answers. A server that keeps answering 429 (too many requests) is waited for longer
than those few retries, as long as it says (Retry-After), up to RATE_LIMIT_PATIENCE_S per request: being
rate-limited for a while is not a failed request. The API key is read from the environment variable the
registry names, at the moment of the request; it is never stored, logged or returned."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from urllib.parse import urlparse

from .errors import WorkbenchError

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_RETRIES = 4
DEFAULT_CONCURRENCY = 4
# How long one request waits, in all, on a server answering 429: a rate limit lasts seconds to a minute or two
RATE_LIMIT_PATIENCE_S = 600.0
_RATE_LIMIT_BACKOFF_MAX_S = 30.0


class EndpointError(WorkbenchError):
    """An endpoint could not be reached, refused a request, or answered something that is not a chat completion."""


@dataclass
class Endpoint:
    """Where a chat model answers: the server's base URL (…/v1), the model id it serves, the name of the
    environment variable holding its API key (None: no key), and how many requests may run at once."""

    name: str
    url: str
    model_id: str
    api_key_env: str | None = None
    max_concurrency: int = DEFAULT_CONCURRENCY
    timeout_s: float = DEFAULT_TIMEOUT_S
    retries: int = DEFAULT_RETRIES

    def as_config(self) -> dict:
        """What an evaluation records about the endpoint: never the key, only its variable's name."""
        return {
            "name": self.name,
            "url": self.url,
            "model_id": self.model_id,
            "api_key_env": self.api_key_env,
            "max_concurrency": self.max_concurrency,
            "timeout_s": self.timeout_s,
            "retries": self.retries,
        }

    @classmethod
    def from_config(cls, data: dict) -> Endpoint:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class Answer:
    """One chat completion: its text, the tokens the server counted, the seconds it took, why it stopped."""

    text: str
    prompt_tokens: int | None
    output_tokens: int | None
    seconds: float
    finish_reason: str | None


def normalise_url(url: str) -> str:
    """A server's base URL as the client wants it: http(s)://host:port/v1 when only host and port are given."""
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise EndpointError(
            f"{url!r} is not an http(s) URL; give the server's address, e.g. http://127.0.0.1:8000/v1"
        )
    path = parsed.path.rstrip("/")
    return f"{parsed.scheme}://{parsed.netloc}{path or '/v1'}"


def api_key(endpoint: Endpoint) -> str:
    """The API key from the environment variable the endpoint names ('none' when it needs no key)."""
    if not endpoint.api_key_env:
        return "none"
    value = os.environ.get(endpoint.api_key_env)
    if not value:
        raise EndpointError(
            f"model {endpoint.name!r} reads its API key from ${endpoint.api_key_env}, which is not set in this "
            f"environment; export {endpoint.api_key_env}=... and try again"
        )
    if not value.isascii():
        raise EndpointError(
            f"${endpoint.api_key_env} holds characters an HTTP header cannot carry (only ASCII); "
            "check that it holds the API key itself"
        )
    return value


def client(endpoint: Endpoint, *, retries: int | None = None, timeout_s: float | None = None):
    from openai import OpenAI

    return OpenAI(
        base_url=endpoint.url,
        api_key=api_key(endpoint),
        timeout=timeout_s if timeout_s is not None else endpoint.timeout_s,
        max_retries=endpoint.retries if retries is None else retries,
    )


def describe_failure(endpoint: Endpoint, exc: Exception) -> str:
    """One sentence for a failed request: what happened, at which endpoint."""
    import openai

    where = _where(endpoint)
    if isinstance(exc, openai.APITimeoutError):
        return f"{where} did not answer within {endpoint.timeout_s:g} s"
    if isinstance(exc, openai.APIConnectionError):
        return f"{where} cannot be reached: {exc.__cause__ or exc}"
    if isinstance(exc, openai.AuthenticationError):
        return f"{where} refused the API key from ${endpoint.api_key_env or '(none)'}: {_detail(exc)}"
    if isinstance(exc, openai.NotFoundError):
        return f"{where} does not know the model or the path: {_detail(exc)}"
    if isinstance(exc, openai.APIStatusError):
        return f"{where} answered HTTP {exc.status_code}: {_detail(exc)}"
    if isinstance(exc, openai.APIResponseValidationError | ValueError | TypeError | AttributeError):
        return f"{where} answered something that is not a chat completion (is it an OpenAI-compatible server?): {exc}"
    return f"{where}: {type(exc).__name__}: {exc}"


def _where(endpoint: Endpoint) -> str:
    return f"endpoint {endpoint.name!r} ({endpoint.url}, model {endpoint.model_id!r})"


def _detail(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        body = body.get("detail") or body.get("error") or body.get("message") or body
    return str(body or exc)[:300]


def chat(
    endpoint: Endpoint,
    messages: list[dict],
    *,
    max_tokens: int,
    tools=None,
    connection=None,
    stop: threading.Event | None = None,
    on_wait: Callable[[float], None] | None = None,
) -> Answer:
    """One greedy answer (temperature 0) to `messages`; raises EndpointError saying what went wrong. A 429 is
    waited out (see RATE_LIMIT_PATIENCE_S), `on_wait(seconds)` told before each wait; `stop`, once set, ends
    that wait."""
    import openai

    conn = connection or client(endpoint)
    started = time.perf_counter()
    kwargs = {"tools": tools} if tools else {}
    rate_limited = 0
    while True:
        asked = time.perf_counter()  # an answer's seconds are its own request's, not the waits before it
        try:
            reply = conn.chat.completions.create(
                model=endpoint.model_id, messages=messages, max_tokens=max_tokens, temperature=0, **kwargs
            )
            return _answer(reply, time.perf_counter() - asked)
        except openai.RateLimitError as exc:
            rate_limited += 1
            delay = _rate_limit_delay(exc, rate_limited)
            waited = time.perf_counter() - started
            if waited + delay > RATE_LIMIT_PATIENCE_S:
                how_long = (
                    f"asks to wait {delay:.0f} s, longer than a request waits ({RATE_LIMIT_PATIENCE_S:.0f} s)"
                    if delay > _RATE_LIMIT_BACKOFF_MAX_S
                    else f"did for {waited:.0f} s"
                )
                raise EndpointError(
                    f"{_where(endpoint)} answered HTTP 429 (too many requests: {_detail(exc)}) and {how_long}; "
                    f"try again later, or with fewer requests at once (now {endpoint.max_concurrency})"
                ) from exc
            if on_wait is not None:
                on_wait(delay)
            if (stop or threading.Event()).wait(delay):
                raise EndpointError(f"stopped while endpoint {endpoint.name!r} was rate-limiting") from exc
        except EndpointError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure of the request becomes one sentence
            raise EndpointError(describe_failure(endpoint, exc)) from exc


def _answer(reply, seconds: float) -> Answer:
    if isinstance(reply, str) or not getattr(reply, "choices", None):
        raise ValueError(f"the reply has no choices: {str(reply)[:200]!r}")
    choice = reply.choices[0]
    usage = reply.usage
    return Answer(
        text=(choice.message.content or "").rstrip(
            "\ufffd"
        ),  # a character cut at the budget, as decode_answer
        prompt_tokens=usage.prompt_tokens if usage else None,
        output_tokens=usage.completion_tokens if usage else None,
        seconds=seconds,
        finish_reason=choice.finish_reason,
    )


def _rate_limit_delay(exc, attempt: int) -> float:
    """Seconds to wait after a 429: what the server asks (Retry-After, in seconds), else a backoff that doubles
    up to half a minute."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            asked = float(headers.get(name)) * scale
        except (TypeError, ValueError):
            continue
        if asked >= 0:
            return asked
    return min(_RATE_LIMIT_BACKOFF_MAX_S, 2.0 ** min(attempt, 10))


def chat_many(
    endpoint: Endpoint,
    requests: Iterable[tuple[int, list[dict], object, int]],
    *,
    max_concurrency: int | None = None,
    give_up_after: int | None = None,
    on_wait: Callable[[float], None] | None = None,
) -> Iterator[tuple[int, Answer | EndpointError]]:
    """Answers to (key, messages, tools, max_tokens) requests, yielded as they arrive (not in order), at most
    `max_concurrency` in flight. A failed request yields its EndpointError. After `give_up_after` failures in a
    row (default: twice the concurrency) the server is taken as down: what was not sent is not sent (the
    caller sees fewer results than requests and can ask again later). on_wait(seconds): a request waits out a
    429 (called from the request's thread)."""
    width = max(1, max_concurrency or endpoint.max_concurrency)
    limit = give_up_after if give_up_after is not None else 2 * width
    conn = client(endpoint)
    pending = iter(requests)
    in_flight: dict[Future, int] = {}
    failures_in_a_row = 0
    stopping = threading.Event()  # set when the caller stops reading: requests waiting out a 429 end
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="endpoint") as pool:

        def submit_next() -> bool:
            request = next(pending, None)
            if request is None:
                return False
            key, messages, tools, max_tokens = request
            future = pool.submit(
                chat,
                endpoint,
                messages,
                max_tokens=max_tokens,
                tools=tools,
                connection=conn,
                stop=stopping,
                on_wait=on_wait,
            )
            in_flight[future] = key
            return True

        try:
            while len(in_flight) < width and submit_next():
                pass
            while in_flight:
                finished, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                for future in finished:
                    key = in_flight.pop(future)
                    exc = future.exception()
                    failures_in_a_row = failures_in_a_row + 1 if exc else 0
                    yield key, (exc if exc is not None else future.result())
                    if failures_in_a_row < limit:
                        submit_next()
        finally:
            stopping.set()
            for future in in_flight:
                future.cancel()


def stream_chat(
    endpoint: Endpoint,
    messages: list[dict],
    *,
    max_tokens: int,
    temperature: float = 0.0,
    top_p: float | None = None,
) -> Iterator[str]:
    """The answer to `messages` piece by piece as the endpoint streams it; raises EndpointError on a failure."""
    conn = client(endpoint)
    try:
        extra = {"top_p": top_p} if temperature > 0 and top_p is not None else {}
        stream = conn.chat.completions.create(
            model=endpoint.model_id,
            messages=messages,
            max_tokens=max_tokens,
            temperature=temperature,
            stream=True,
            **extra,
        )
        for event in stream:
            if event.choices and event.choices[0].delta and event.choices[0].delta.content:
                yield event.choices[0].delta.content
    except EndpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure of the request becomes one sentence
        raise EndpointError(describe_failure(endpoint, exc)) from exc


@dataclass
class Health:
    """Whether an endpoint answers now: ok, and a sentence (the models it lists, or what went wrong)."""

    ok: bool
    message: str
    seconds: float


def probe(endpoint: Endpoint, timeout_s: float = 5.0) -> Health:
    """Ask the endpoint for its models (GET /models, no retries): is it up, and does it serve our model id?"""
    started = time.perf_counter()
    try:
        conn = client(endpoint, retries=0, timeout_s=timeout_s)
        listed = conn.models.list()
        ids = [m.id for m in listed.data] if hasattr(listed, "data") else None
        if ids is None or not all(isinstance(i, str) for i in ids):
            raise ValueError(f"GET {endpoint.url}/models did not return a list of models")
    except EndpointError as exc:
        return Health(False, str(exc), time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001
        return Health(False, describe_failure(endpoint, exc), time.perf_counter() - started)
    seconds = time.perf_counter() - started
    if endpoint.model_id not in ids:
        shown = ", ".join(ids[:5]) + (" …" if len(ids) > 5 else "")
        return Health(
            False,
            f"endpoint {endpoint.name!r} answers but does not serve model {endpoint.model_id!r} "
            f"(it lists: {shown or 'nothing'}); register it with one of those ids",
            seconds,
        )
    return Health(True, f"answers ({seconds * 1000:.0f} ms), serves {endpoint.model_id}", seconds)


ProgressFn = Callable[[int, int, dict], None]
