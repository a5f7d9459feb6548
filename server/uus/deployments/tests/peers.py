"""Real notification peers on loopback for tests: an SMTP server (aiosmtpd) and an HTTP webhook
receiver (http.server). Both keep what they received, in order."""

from __future__ import annotations

import contextlib
import email
import email.policy
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list = field(default_factory=list)  # email.message.EmailMessage, with envelope headers

    def wait(self, count: int, timeout: float = 30) -> list:
        end = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < end:
            time.sleep(0.1)
        return list(self.messages)


@contextlib.contextmanager
def smtp_peer() -> Iterator[Mailbox]:
    """An SMTP server that accepts every message (no TLS, no auth: loopback only)."""
    from aiosmtpd.controller import Controller

    box = Mailbox("127.0.0.1", free_port())

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            msg["X-Envelope-From"] = envelope.mail_from
            msg["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
            box.messages.append(msg)
            return "250 OK"

    controller = Controller(Handler(), hostname=box.host, port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@dataclass
class Hook:
    url: str
    posts: list = field(default_factory=list)  # (path, JSON body)

    def wait(self, count: int, timeout: float = 30) -> list:
        end = time.monotonic() + timeout
        while len(self.posts) < count and time.monotonic() < end:
            time.sleep(0.1)
        return list(self.posts)


@contextlib.contextmanager
def webhook_peer(path: str = "/hooks/uus/s3cr3t-token") -> Iterator[Hook]:
    hook = Hook("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.posts.append((self.path, self.headers.get("Content-Type"), json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
