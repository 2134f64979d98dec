"""A real HTTP reverse proxy for the endpoint tests: stdlib http.server on 127.0.0.1 in front of a real
OpenAI-compatible server (`transformers serve`), forwarding every request, except that it answers the first
`rate_limited` chat completions with HTTP 429 and a Retry-After header, as a rate-limited provider does."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from workbench.serve import free_port

FORWARDED_HEADERS = ("content-type", "authorization", "accept")


class RateLimitingProxy:
    """`with RateLimitingProxy(upstream_url, rate_limited=N, retry_after=1) as proxy:` serves at proxy.url (…/v1)
    until the block ends; `rate_limited` may be changed while it runs (more 429s, or none). It counts what it did:
    `answered_429` and `forwarded` requests."""

    def __init__(self, upstream: str, *, rate_limited: int = 0, retry_after: float = 1.0):
        self.upstream = upstream.removesuffix("/").removesuffix("/v1")
        self.rate_limited = rate_limited
        self.retry_after = retry_after
        self.answered_429 = 0
        self.forwarded = 0
        self.port = free_port()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> RateLimitingProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):  # HTTP/1.0: one request per connection
            def do_GET(self) -> None:
                proxy._handle(self)

            def do_POST(self) -> None:
                proxy._handle(self)

            def log_message(self, *_args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _refuse(self, request: BaseHTTPRequestHandler) -> bool:
        if request.command != "POST" or not request.path.endswith("/chat/completions"):
            return False
        with self._lock:
            if self.answered_429 >= self.rate_limited:
                return False
            self.answered_429 += 1
            return True

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        if self._refuse(request):
            message = {"error": {"message": "rate limit reached, slow down", "type": "rate_limit_exceeded"}}
            self._reply(request, 429, json.dumps(message).encode(), {"Retry-After": f"{self.retry_after:g}"})
            return
        forwarded = urllib.request.Request(
            self.upstream + request.path,
            data=body if request.command == "POST" else None,
            method=request.command,
            headers={k: v for k, v in request.headers.items() if k.lower() in FORWARDED_HEADERS},
        )
        try:
            with urllib.request.urlopen(forwarded, timeout=300) as reply:
                status, content_type, data = reply.status, reply.headers.get("Content-Type"), reply.read()
        except urllib.error.HTTPError as exc:
            status, content_type, data = exc.code, exc.headers.get("Content-Type"), exc.read()
        with self._lock:
            self.forwarded += 1
        self._reply(request, status, data, {"Content-Type": content_type or "application/json"})

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str]) -> None:
        request.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
