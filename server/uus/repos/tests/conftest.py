"""Repository test fixtures: a real gpg home, a real HTTP server, a real apt client root."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import threading
from pathlib import Path
from urllib.parse import unquote

import pytest

from uus.repos.publish import resolve_pool_path
from uus.repos.signing import signing_agent_stop, signing_key_ensure


@pytest.fixture
def gnupg_home(tmp_path_factory):
    """A fresh GNUPGHOME with a short path (gpg-agent's socket path must stay short)."""
    home = tmp_path_factory.mktemp("gpg") / "home"
    yield home
    signing_agent_stop(home)


@pytest.fixture(scope="session")
def session_key(tmp_path_factory):
    """One signing key for the tests that only need *a* key (generation costs a little)."""
    home = tmp_path_factory.mktemp("gpgs") / "home"
    fpr = signing_key_ensure(home, "UUS Test Repository", "repo@uus.example")
    yield home, fpr
    signing_agent_stop(home)


class _RepoHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the live tree from ``repo_root`` (a symlink resolved on every request) and
    ``pool/...`` from the content-addressed pool through the generation's pool map -- the way
    the real server is meant to (see publish.py)."""

    repo_root: Path
    pool_root: Path
    requests: list

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_GET(self):
        path = unquote(self.path.split("?", 1)[0])  # apt sends '+' as %2b
        self.requests.append(path)
        if path.startswith("/pool/"):
            stored = resolve_pool_path(self.repo_root, path, self.pool_root)
            if stored is None:
                self.send_error(404)
                return
            data = stored.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.debian.binary-package")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        super().do_GET()


@pytest.fixture
def repo_server(tmp_path):
    """(url, repo_root, pool_root, requests) for a repository served on a loopback port."""
    repos = tmp_path / "repos"
    repos.mkdir()
    repo_root = repos / "production"
    pool_root = tmp_path / "pool"
    requests: list[str] = []
    handler = type(
        "Handler",
        (_RepoHandler,),
        {"repo_root": repo_root, "pool_root": pool_root, "requests": requests},
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(repo_root)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", repo_root, pool_root, requests
    finally:
        server.shutdown()
        server.server_close()


class AptClient:
    """A throwaway apt client root: its own sources, lists, cache and an empty dpkg status."""

    def __init__(self, root: Path):
        self.root = root
        for d in ("lists/partial", "cache/archives/partial", "state", "etc", "download"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "status").write_text("")
        self.sources = root / "etc" / "sources.list"

    def configure(self, url: str, keyfile: Path, suite: str = "uus-local") -> None:
        self.sources.write_text(f"deb [signed-by={keyfile}] {url} {suite} main\n")

    def run(self, *args: str) -> subprocess.CompletedProcess:
        r = self.root
        cmd = ["apt-get", "-q", "-o", "APT::Architecture=amd64", "-o", "APT::Architectures=amd64"]
        for opt in (
            f"Dir::Etc::SourceList={self.sources}",
            "Dir::Etc::SourceParts=/dev/null",
            f"Dir::State={r / 'state'}",
            f"Dir::State::Lists={r / 'lists'}",
            f"Dir::Cache={r / 'cache'}",
            f"Dir::State::Status={r / 'status'}",
            "Debug::NoLocking=1",
            "APT::Sandbox::User=root",
            "Acquire::Languages=none",
            "Acquire::Retries=0",
        ):
            cmd += ["-o", opt]
        env = {**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
        return subprocess.run(
            [*cmd, *args],
            cwd=r / "download",
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )


@pytest.fixture
def apt_client(tmp_path):
    return AptClient(tmp_path / "aptroot")
