"""A small stdlib stand-in for the server side of protocol v1, for the agent's client logic only.

It implements just what the agent's tests need (tokens, credentials, exchange tokens, hash
bookkeeping, delta application, job delivery and acks, a static /repo/ tree), and records every
request so tests can assert on what the agent sent. The real server is tested elsewhere against
the same protocol/v1/examples.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional
from urllib.parse import unquote

from uus_agent import dpkg

PREFIX = "/api/agent/v1/"


class FakeServer:
    def __init__(self, www: Optional[str] = None) -> None:
        self.www = www
        self.tokens = {"good-token"}
        self.machines: Dict[str, Dict[str, Any]] = {}
        self.jobs: List[Dict[str, Any]] = []
        self.results: Dict[str, Dict[str, Any]] = {}
        self.requests: List[Dict[str, Any]] = []  # {"method", "path", "body", "auth"}
        self.apt: Optional[Dict[str, Any]] = None
        self.interval = 3600
        self.force_inventory: Optional[str] = None
        self.redeliver_all = False  # deliver jobs even after their result arrived
        self.release_hang = threading.Event()
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release_hang.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- helpers for tests -------------------------------------------------------------------
    def posts(self, endpoint: str) -> List[Dict[str, Any]]:
        return [
            r["body"]
            for r in self.requests
            if r["method"] == "POST" and r["path"] == PREFIX + endpoint
        ]

    def gets(self, prefix: str) -> int:
        return sum(
            1 for r in self.requests if r["method"] == "GET" and r["path"].startswith(prefix)
        )

    def only_machine(self) -> Dict[str, Any]:
        assert len(self.machines) == 1
        return next(iter(self.machines.values()))

    # -- protocol ----------------------------------------------------------------------------
    def register(self, body: Dict[str, Any]):
        if body.get("token") not in self.tokens:
            return 403, _err("invalid_token", "enrollment token is unknown")
        client_id = "m-" + secrets.token_hex(4)
        m = {
            "machine": str(uuid.uuid4()),
            "client_id": client_id,
            "secret": secrets.token_urlsafe(24),
            "exchange_token": secrets.token_hex(8),
            "facts": body["facts"],
            "inventory_hash": None,
            "packages": None,
            "revoked": False,
        }
        self.machines[client_id] = m
        answer = {k: m[k] for k in ("machine", "client_id", "secret", "exchange_token")}
        answer["check_in_interval"] = self.interval
        return 201, answer

    def auth(self, header: Optional[str]) -> Optional[Dict[str, Any]]:
        if not header or not header.startswith("Machine "):
            return None
        client_id, _, secret = header[len("Machine ") :].partition(":")
        m = self.machines.get(client_id)
        if m is None or m["revoked"] or m["secret"] != secret:
            return None
        return m

    def check_in(self, m: Dict[str, Any], body: Dict[str, Any]):
        acked = []
        for r in body["job_results"]:
            self.results.setdefault(r["job_id"], r)  # first result wins
            acked.append(r["job_id"])
        m["facts"] = body["facts"]
        m["exchange_token"] = secrets.token_hex(8)
        if self.force_inventory:
            inventory = self.force_inventory
        elif body["inventory_hash"] == m["inventory_hash"]:
            inventory = "ok"
        elif m["inventory_hash"] and body["previous_inventory_hash"] == m["inventory_hash"]:
            inventory = "delta"
        else:
            inventory = "full"
        jobs = [j for j in self.jobs if self.redeliver_all or j["id"] not in self.results]
        return 200, {
            "next_exchange_token": m["exchange_token"],
            "check_in_interval": self.interval,
            "inventory": inventory,
            "jobs": jobs,
            "acked_job_results": acked,
            "apt": self.apt,
            "some_future_field": {"ignored": True},
        }

    def inventory(self, m: Dict[str, Any], body: Dict[str, Any]):
        if body["kind"] == "full":
            packages = body["packages"]
        else:
            if body["base_hash"] != m["inventory_hash"] or m["packages"] is None:
                return 409, _err("base_mismatch", "send the full inventory")
            packages = dpkg.apply_delta(m["packages"], body["added"], body["removed"])
        if dpkg.inventory_hash(packages) != body["inventory_hash"]:
            return 409 if body["kind"] == "delta" else 400, _err("hash_mismatch", "hash differs")
        m["packages"], m["inventory_hash"] = packages, body["inventory_hash"]
        self.force_inventory = None
        return 200, {"inventory_hash": body["inventory_hash"], "accepted": True}

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, obj: Any = None, raw: Optional[bytes] = None) -> None:
                data = raw if raw is not None else json.dumps(obj).encode()
                self.send_response(status)
                self.send_header(
                    "Content-Type",
                    "application/json" if raw is None else "application/octet-stream",
                )
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                with server.lock:
                    server.requests.append(
                        {"method": "GET", "path": self.path, "body": None, "auth": None}
                    )
                if self.path.startswith("/hang/"):
                    server.release_hang.wait(60)
                    return self._send(404, _err("not_found", "released"))
                path = os.path.normpath(unquote(self.path.split("?")[0])).lstrip("/")
                full = os.path.join(server.www or "/nonexistent", path)
                if server.www and os.path.isfile(full) and not path.startswith(".."):
                    with open(full, "rb") as f:
                        return self._send(200, raw=f.read())
                return self._send(404, _err("not_found", self.path))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                auth = self.headers.get("Authorization")
                with server.lock:
                    server.requests.append(
                        {"method": "POST", "path": self.path, "body": body, "auth": auth}
                    )
                    endpoint = self.path[len(PREFIX) :] if self.path.startswith(PREFIX) else None
                    if endpoint == "register/":
                        return self._send(*server.register(body))
                    m = server.auth(auth)
                    if endpoint in ("check-in/", "inventory/") and m is None:
                        return self._send(
                            401, _err("unauthorized", "unknown or revoked credentials")
                        )
                    if endpoint == "check-in/":
                        return self._send(*server.check_in(m, body))
                    if endpoint == "inventory/":
                        return self._send(*server.inventory(m, body))
                    return self._send(404, _err("not_found", self.path))

        return Handler


def _err(code: str, message: str) -> Dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": {}}}
