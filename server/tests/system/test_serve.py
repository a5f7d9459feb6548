"""`uus serve` as an administrator starts it: a fresh data directory, the first admin, /healthz, login."""

from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from uus.testing.fixtures import uus_command

pytestmark = pytest.mark.system


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_env(data_dir: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UUS_")}
    env.update({"UUS_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1", **extra})
    return env


def get(url: str, opener=None) -> tuple[int, str]:
    try:
        with (opener or urllib.request.build_opener()).open(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Server:
    def __init__(self, data_dir: Path, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(data_dir / "serve.log", "w")
        data_dir.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            [*uus_command(), "serve", "--bind", f"127.0.0.1:{self.port}"],
            env=fresh_env(data_dir, **env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait(self, timeout=60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"uus serve exited {self.proc.returncode}")
            try:
                if get(self.url + "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError("uus serve did not answer /healthz")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def test_fresh_data_dir_serves_health_and_the_printed_admin_logs_in(tmp_path):
    data = tmp_path / "var"
    boot = subprocess.run(
        [*uus_command(), "admin", "bootstrap"], env=fresh_env(data), capture_output=True, text=True, timeout=120
    )
    assert boot.returncode == 0, boot.stderr
    password = re.search(r"password:\s+(\S+)", boot.stdout).group(1)
    assert password not in "".join(
        p.read_text(errors="ignore")
        for p in data.rglob("*")
        if p.is_file() and p.suffix != ".sqlite3" and "wal" not in p.name
    )
    again = subprocess.run([*uus_command(), "admin", "bootstrap"], env=fresh_env(data), capture_output=True, text=True)
    assert "already exists" in again.stdout

    server = Server(data)
    try:
        server.wait()
        status, body = get(server.url + "/healthz")
        assert status == 200 and '"ok"' in body
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        status, page = get(server.url + "/login/", opener)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode({"username": "admin", "password": password, "csrfmiddlewaretoken": csrf})
        req = urllib.request.Request(
            server.url + "/login/", data=form.encode(), headers={"Referer": server.url + "/login/"}
        )
        with opener.open(req, timeout=10) as r:
            assert r.status == 200 and r.url.rstrip("/") == server.url and "Dashboard" in r.read().decode()
        assert get(server.url + "/static/uus/uus.css")[0] == 200  # static files without another server
        # the database going bad turns health to 503
        db = data / "uus.sqlite3"
        for p in data.glob("uus.sqlite3*"):
            p.unlink()
        db.write_bytes(b"this is not a database" * 100)
        db.chmod(0o000)
        status, _ = get(server.url + "/healthz")
        assert status == 503
    finally:
        server.stop()


def test_unknown_config_key_stops_serve_naming_it(tmp_path):
    cfg = tmp_path / "uus.toml"
    cfg.write_text('data_dir = "%s"\nworkers = 4\n' % (tmp_path / "var"))
    r = subprocess.run(
        [*uus_command(), "serve"],
        env=fresh_env(tmp_path / "var", UUS_CONFIG=str(cfg)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "workers" in r.stderr


def test_wrong_database_url_gets_a_clear_error(tmp_path):
    port = free_port()  # nothing listens there
    r = subprocess.run(
        [*uus_command(), "serve", "--bind", "127.0.0.1:1"],
        env=fresh_env(tmp_path, UUS_DATABASE_URL=f"postgres://uus@127.0.0.1:{port}/uus"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0 and "database" in r.stderr.lower() and "Traceback" not in r.stderr


def test_every_verb_has_help():
    from uus.cli.main import build_parser

    parser = build_parser()
    nouns = parser._subparsers._group_actions[0].choices
    for noun, sub in nouns.items():
        assert sub.format_help()
        for action in sub._actions:
            if hasattr(action, "choices") and isinstance(action.choices, dict):
                for verb, vp in action.choices.items():
                    assert vp.format_help(), f"{noun} {verb}"
    r = subprocess.run([*uus_command(), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "serve" in r.stdout
