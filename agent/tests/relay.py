"""A loopback HTTP relay between the agent (and the apt-get it runs) and the live UUS server.

It forwards every request unchanged (the Host header too, so the server's apt lines name the relay
and apt's downloads pass through it as well) and keeps a log of what went over the wire, so tests
can assert what the agent sent and what the real server answered. It can also make real network
trouble happen at a chosen moment: lose an answer after the server has committed it, stall a
download, run a step on the server between two requests, or go away (a closed port). It never
answers anything itself: every answer the agent sees is the real server's.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

AGENT_API = "/api/agent/v1/"
# Headers of one connection, not of the message (RFC 9110 7.6.1): never forwarded.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


@dataclass
class Exchange:
    method: str
    path: str
    body: Any  # the decoded JSON of a request to the agent API, else None
    status: int | None = None  # None until the server has answered
    answer: Any = None  # the decoded JSON answer of the agent API, else None
    delivered: bool = False  # whether the answer reached the client


def _json(data: bytes) -> Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        return None


class Relay:
    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or "localhost", parts.port or 80)
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._lose: list[tuple[str, Callable[[Exchange], bool]]] = []
        self._before: list[tuple[str, Callable[[], Any]]] = []
        self._stalls: dict[str, threading.Event] = {}
        self.step_results: list[Any] = []  # what each `before` step returned, or raised
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._closed = False

    def __enter__(self) -> Relay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening: from now on the agent finds a closed port, as when the server is gone."""
        if self._closed:
            return
        self._closed = True
        for event in self._stalls.values():
            event.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- what went over the wire -------------------------------------------------------------------
    def api(self, endpoint: str) -> list[Exchange]:
        """Exchanges with one agent endpoint ("register/", "check-in/", "inventory/"), in order."""
        with self._lock:
            path = AGENT_API + endpoint
            return [e for e in self.exchanges if e.method == "POST" and e.path == path]

    def posts(self, endpoint: str) -> list[Any]:
        return [e.body for e in self.api(endpoint)]

    def gets(self, prefix: str) -> int:
        with self._lock:
            return sum(1 for e in self.exchanges if e.method == "GET" and e.path.startswith(prefix))

    # -- trouble, made to happen -------------------------------------------------------------------
    def lose_answer(self, endpoint: str, when: Callable[[Exchange], bool] = lambda e: True) -> None:
        """The next request to `endpoint` that `when` accepts reaches the server, which answers it;
        the connection to the agent is then closed without that answer."""
        with self._lock:
            self._lose.append((AGENT_API + endpoint, when))

    def before(self, endpoint: str, step: Callable[[], Any]) -> None:
        """Run `step` (in the relay's thread) when the next request to `endpoint` arrives, before
        the server sees it."""
        with self._lock:
            self._before.append((AGENT_API + endpoint, step))

    def stall(self, prefix: str) -> threading.Event:
        """Hold GETs under `prefix` until the returned event is set (or the relay closes)."""
        event = threading.Event()
        with self._lock:
            self._stalls[prefix] = event
        return event

    # -- the relay itself --------------------------------------------------------------------------
    def _take(self, hooks: list, path: str, exchange: Exchange | None = None) -> Any:
        with self._lock:
            for i, (where, what) in enumerate(hooks):
                if where == path and (exchange is None or what(exchange)):
                    del hooks[i]
                    return what
        return None

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        data = handler.rfile.read(length) if length else b""
        path = handler.path
        is_api = path.startswith(AGENT_API)
        exchange = Exchange(handler.command, path, _json(data) if is_api else None)
        with self._lock:
            self.exchanges.append(exchange)
            stall = next((ev for p, ev in self._stalls.items() if path.startswith(p)), None)
        step = self._take(self._before, path)
        if step is not None:
            try:
                result = _run_on_server(step)
            except Exception as exc:  # shown to the test, which asserts on step_results
                result = exc
            self.step_results.append(result)
        if stall is not None:
            stall.wait(120)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            upstream.request(handler.command, path, body=data or None, headers=headers)
            resp = upstream.getresponse()
            payload = resp.read()
            answer_headers = resp.getheaders()
        finally:
            upstream.close()
        exchange.status = resp.status
        exchange.answer = _json(payload) if is_api else None
        if self._take(self._lose, path, exchange) is not None:
            handler.close_connection = True  # answered by the server, never heard by the agent
            return
        handler.send_response_only(resp.status, resp.reason)
        no_body = handler.command == "HEAD" or resp.status in (204, 304) or resp.status < 200
        for name, value in answer_headers:
            if name.lower() in HOP_BY_HOP or (name.lower() == "content-length" and not no_body):
                continue
            handler.send_header(name, value)
        if not no_body:
            handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if not no_body:
            handler.wfile.write(payload)
        exchange.delivered = True

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive and pipelining, as apt uses them

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                relay._forward(self)

            do_POST = do_HEAD = do_GET

        return Handler


def _run_on_server(step: Callable[[], Any]) -> Any:
    """A server-side step in the relay's thread, with its own database connection, closed after it
    (an idle connection left in a thread would hold up the test database's flush and drop)."""
    from django.db import connections

    try:
        return step()
    finally:
        connections.close_all()
