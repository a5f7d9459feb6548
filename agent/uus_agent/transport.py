"""HTTP(S) to the server with urllib: JSON in and out, errors sorted by what the agent does next.

Unreachable (network, timeout, 5xx) -> retry with back-off; Unauthorized (401) -> stop and tell the
admin to re-register; other ServerError -> report code and message. http:// is accepted for
loopback tests and labs; TLS verification is never switched off, only given another CA file.
"""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.request
from typing import Any, Dict, Optional, Tuple

from uus_agent import __version__, protocol

MAX_ANSWER_BYTES = 32 * 1024 * 1024


class TransportError(Exception):
    """The server could not be reached or answered garbage: worth retrying later."""


class ServerError(Exception):
    def __init__(
        self, status: int, code: str, message: str, details: Optional[Dict[str, Any]] = None
    ):
        super().__init__("%s (HTTP %d)%s" % (code, status, ": " + message if message else ""))
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


class Unreachable(TransportError):
    pass


class Unauthorized(ServerError):
    """401: the machine's credentials are unknown or were revoked."""


class Transport:
    def __init__(self, server: str, ca: Optional[str] = None, timeout: float = 60.0) -> None:
        server = server.strip().rstrip("/")
        if not server.startswith(("http://", "https://")):
            raise ValueError("server URL must start with https:// or http://: %r" % server)
        self.server = server
        self.timeout = timeout
        self.context: Optional[ssl.SSLContext] = None
        if server.startswith("https://") or ca:
            self.context = ssl.create_default_context(cafile=ca)
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=self.context),
            urllib.request.ProxyHandler(),  # honours https_proxy/no_proxy like apt users expect
        )

    def api_url(self, path: str) -> str:
        return self.server + protocol.API_PREFIX + path

    def _open(self, req: urllib.request.Request) -> Tuple[int, bytes]:
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                return resp.status, resp.read(MAX_ANSWER_BYTES)
        except urllib.error.HTTPError as e:
            try:
                body = e.read(MAX_ANSWER_BYTES)
            except Exception:
                body = b""
            return e.code, body
        except (urllib.error.URLError, socket.timeout, ConnectionError, ssl.SSLError) as e:
            reason = getattr(e, "reason", e)
            raise Unreachable("cannot reach %s: %s" % (self.server, reason)) from e
        except OSError as e:
            raise Unreachable("cannot reach %s: %s" % (self.server, e)) from e

    def post(
        self, path: str, body: Dict[str, Any], auth: Optional[Tuple[str, str]] = None
    ) -> Dict[str, Any]:
        """POST JSON; return the decoded answer of a 2xx, raise otherwise."""
        data = json.dumps(body).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "uus-agent/%s" % __version__,
        }
        if auth is not None:
            headers["Authorization"] = "Machine %s:%s" % auth
        req = urllib.request.Request(self.api_url(path), data=data, headers=headers, method="POST")
        status, raw = self._open(req)
        try:
            answer = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except ValueError:
            answer = None
        if 200 <= status < 300:
            if not isinstance(answer, dict):
                raise TransportError("%s answered HTTP %d without a JSON object" % (path, status))
            return answer
        err = protocol.parse_error(answer)
        if not err["message"] and answer is None:
            err["message"] = raw[:200].decode("utf-8", "replace").strip()
        if status == 401:
            raise Unauthorized(status, err["code"], err["message"], err["details"])
        if status >= 500 or status in (408, 429, 502, 503, 504):
            raise Unreachable(
                "%s answered HTTP %d: %s %s" % (path, status, err["code"], err["message"])
            )
        raise ServerError(status, err["code"], err["message"], err["details"])

    def get_bytes(self, url: str, limit: int = 1024 * 1024) -> bytes:
        """Fetch a small file (the repository key). Relative URLs are taken from the server."""
        if url.startswith("/"):
            url = self.server + url
        req = urllib.request.Request(url, headers={"User-Agent": "uus-agent/%s" % __version__})
        status, raw = self._open(req)
        if status != 200:
            raise TransportError("GET %s answered HTTP %d" % (url, status))
        if len(raw) > limit:
            raise TransportError("GET %s: answer larger than %d bytes" % (url, limit))
        return raw
