"""A real HTTP server on 127.0.0.1 (port 0) serving a directory, for fetch tests without mocks.

Beyond plain files it can misbehave on purpose, the ways upstream servers do: `lie_length[path] = n`
announces n bytes in Content-Length, sends fewer and closes (a cut transfer); `fail[path] = code`
answers that HTTP status. With `tls=(certificate, key)` it speaks HTTPS (certificates made with the
openssl CLI by uus.testing.slapd.make_ca and make_server_certificate).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Loopback:
    root: Path
    url: str
    requests: list[str] = field(default_factory=list)
    lie_length: dict[str, int] = field(default_factory=dict)
    fail: dict[str, int] = field(default_factory=dict)


class _Handler(http.server.SimpleHTTPRequestHandler):
    loopback: Loopback

    def log_message(self, format, *args):  # keep test output clean
        pass

    def do_GET(self):
        lb = self.loopback
        path = self.path.split("?", 1)[0]
        lb.requests.append(path)
        if path in lb.fail:
            self.send_error(lb.fail[path])
            return
        if path in lb.lie_length:
            body = self.translate_path(path)
            data = Path(body).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(lb.lie_length[path]))
            self.end_headers()
            self.wfile.write(data[: max(0, min(len(data), lb.lie_length[path]) - 100)])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


class _Server(http.server.ThreadingHTTPServer):
    """Does the TLS handshake in the request's thread, so that a client refusing the certificate
    cannot stall the accept loop."""

    tls_context: ssl.SSLContext | None = None

    def finish_request(self, request, client_address):
        if self.tls_context is None:
            super().finish_request(request, client_address)
            return
        try:
            tls_request = self.tls_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client refused our certificate: nothing to answer
        try:
            super().finish_request(tls_request, client_address)
        finally:
            tls_request.close()


@contextlib.contextmanager
def serve_directory(root: Path, *, tls: tuple[Path, Path] | None = None) -> Iterator[Loopback]:
    """Serve `root` until the block ends; yields a Loopback whose .url has no trailing slash."""
    lb = Loopback(root=Path(root), url="")
    handler = type("Handler", (_Handler,), {"loopback": lb})
    server = _Server(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    server.daemon_threads = True
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        server.tls_context = context
        scheme = "https"
    lb.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="loopback-http", daemon=True)
    thread.start()
    try:
        yield lb
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port_url() -> str:
    """A loopback URL nothing listens on (a port the OS just handed out and took back)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
