"""The real agent (`uus-agent`, installed from agent/) against a live server, on machine roots where real
dpkg installs real .debs: registration, the first full inventory, a delta after `dpkg -i` / `dpkg -r`,
history, deduplication across machines, the CLI's view of all of it, a bogus token and a revocation.

Nothing is mocked: the roots are directories that dpkg works on with --root (design.md, "Test roots").
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from uus.inventory import selectors as inventory_selectors
from uus.inventory import services
from uus.inventory.models import InventoryChange, Machine
from uus.testing.fixtures import uus_command

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

DEBS = Path(__file__).resolve().parents[1] / "data" / "debs"
QUERY_FORMAT = "${Package}\t${Architecture}\t${Version}\t${source:Package}\t${source:Version}\t${db:Status-Status}\n"
# Libraries the .debs depend on, present as status entries only (a minimal machine).
PLACEHOLDERS = [
    ("libc6", "2.36-9+deb12u13", "glibc"),
    ("libonig5", "6.9.8-1", "libonig"),
    ("libncurses6", "6.4-4", "ncurses"),
    ("libtinfo6", "6.4-4", "ncurses"),
]
OS_RELEASE = (
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
    'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
)


def agent_command() -> list[str]:
    exe = Path(sys.executable).with_name("uus-agent")
    if not exe.exists():
        pytest.fail("uus-agent is not installed in this venv: .venv/bin/pip install --no-deps -e agent")
    return [str(exe)]


def deb(name: str) -> str:
    return str(next(DEBS.glob(f"{name}.deb")))


def make_root(path: Path, hostname: str) -> Path:
    for d in (
        "etc/apt/sources.list.d",
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
        "var/log/apt",
        "proc/sys/kernel",
    ):
        (path / d).mkdir(parents=True, exist_ok=True)
    (path / "etc/os-release").write_text(OS_RELEASE)
    (path / "etc/hostname").write_text(hostname + "\n")
    (path / "etc/timezone").write_text("Europe/Berlin\n")
    (path / "proc/sys/kernel/osrelease").write_text("6.1.0-40-amd64\n")
    (path / "var/lib/dpkg/arch").write_text("amd64\n")
    (path / "var/lib/dpkg/available").write_text("")
    (path / "var/lib/dpkg/status").write_text(
        "\n".join(
            f"Package: {n}\nStatus: install ok installed\nPriority: optional\nSection: libs\nInstalled-Size: 1\n"
            f"Maintainer: Test <test@example.invalid>\nArchitecture: amd64\nMulti-Arch: same\nSource: {s}\n"
            f"Version: {v}\nDescription: placeholder\n"
            for n, v, s in PLACEHOLDERS
        )
    )
    return path


def dpkg(root: Path, *args: str) -> None:
    subprocess.run(
        ["dpkg", f"--root={root}", "--force-script-chrootless", "--force-not-root", *args],
        check=True,
        capture_output=True,
        text=True,
    )


def dpkg_query(root: Path) -> list[tuple]:
    """What dpkg itself says is installed: the reference the server's copy must equal."""
    out = subprocess.run(
        ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f", QUERY_FORMAT],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = [tuple(line.split("\t")) for line in out.splitlines()]
    return sorted((r for r in rows if r[5] != "not-installed"), key=lambda r: (r[0], r[1]))


def agent(state: Path, root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*agent_command(), "--state-dir", str(state), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def server_entries(hostname: str) -> list[tuple]:
    m = Machine.objects.get(hostname=hostname, is_revoked=False)
    return services.package_set_entries(m.package_set_id)


def test_real_agent_inventory_end_to_end(live_server, uus_cli, tmp_path):
    r = uus_cli("tokens", "create", "--group", "lab", "--json")
    assert r.returncode == 0, r.stderr
    token = json.loads(r.stdout)["token"]

    # 1. A machine with real packages registers and reports its whole inventory.
    root = make_root(tmp_path / "roots/web-01", "web-01")
    dpkg(
        root,
        "-i",
        deb("hello_2.10-3_amd64"),
        deb("sl_5.02-1+b1_amd64"),
        deb("libjq1_1.6-2.1+deb12u2_amd64"),
        deb("jq_1.6-2.1+deb12u2_amd64"),
    )
    state = tmp_path / "state/web-01"
    r = agent(state, root, "register", "--server", live_server.url, "--token", token)
    assert r.returncode == 0, r.stderr
    r = agent(state, root, "check-in")
    assert r.returncode == 0, r.stderr
    assert "full 8 packages" in r.stdout
    assert server_entries("web-01") == dpkg_query(root)
    m = Machine.objects.get(hostname="web-01")
    assert (m.os_id, m.release, m.kernel, m.architecture, m.enrollment_group, m.time_zone) == (
        "debian",
        "12",
        "6.1.0-40-amd64",
        "amd64",
        "lab",
        "Europe/Berlin",
    )
    assert not InventoryChange.objects.exists()  # the first inventory is the baseline

    # 2. Unchanged: the check-in carries only the hash.
    r = agent(state, root, "check-in")
    assert r.returncode == 0 and "inventory up to date" in r.stdout, r.stdout + r.stderr

    # 3. A real security upgrade and a removal: the agent sends a delta; the server has exactly it.
    dpkg(root, "-i", deb("libjq1_1.6-2.1+deb12u3_amd64"), deb("jq_1.6-2.1+deb12u3_amd64"))
    dpkg(root, "-r", "sl")
    r = agent(state, root, "check-in")
    assert r.returncode == 0, r.stderr
    assert "delta +2 -1" in r.stdout or "delta +3 -0" in r.stdout, r.stdout  # sl gone, or left as config-files
    assert server_entries("web-01") == dpkg_query(root)
    (change,) = InventoryChange.objects.all()
    changes = {
        (c.kind, c.name, c.old_version, c.new_version) for c in inventory_selectors.inventory_change_packages(change)
    }
    assert changes == {
        ("upgraded", "jq", "1.6-2.1+deb12u2", "1.6-2.1+deb12u3"),
        ("upgraded", "libjq1", "1.6-2.1+deb12u2", "1.6-2.1+deb12u3"),
        ("removed", "sl", "5.02-1+b1", None),
    }

    # 4. An identical machine shares the stored inventory and does not even upload it.
    root2 = tmp_path / "roots/web-02"
    shutil.copytree(root, root2)
    (root2 / "etc/hostname").write_text("web-02\n")
    state2 = tmp_path / "state/web-02"
    assert agent(state2, root2, "register", "--server", live_server.url, "--token", token).returncode == 0
    r = agent(state2, root2, "check-in")
    assert r.returncode == 0 and "inventory up to date" in r.stdout, r.stdout + r.stderr
    m1, m2 = Machine.objects.get(hostname="web-01"), Machine.objects.get(hostname="web-02")
    assert m1.package_set_id == m2.package_set_id and m1.uuid != m2.uuid

    # 5. The CLI prints what the API serves.
    r = uus_cli("machines", "list", "--json")
    assert r.returncode == 0, r.stderr
    assert sorted(x["hostname"] for x in json.loads(r.stdout)) == ["web-01", "web-02"]
    r = uus_cli("machines", "list", "--json", "--package", "jq", "--version-lt", "1.6-2.1+deb12u3")
    assert json.loads(r.stdout) == []
    r = uus_cli("machines", "show", "web-01", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["package_count"] == len(dpkg_query(root))
    r = uus_cli("machines", "history", "web-01", "--json")
    assert {c["name"] for change in json.loads(r.stdout) for c in change["packages"]} == {"jq", "libjq1", "sl"}

    # 6. A bogus token registers nothing.
    r = agent(tmp_path / "state/bogus", root, "register", "--server", live_server.url, "--token", "not-a-token")
    assert r.returncode != 0 and "enrollment_refused" in r.stderr
    assert Machine.objects.count() == 2

    # 7. A revoked machine's agent is turned away and told to register again (exit 3).
    assert uus_cli("machines", "revoke", "web-02").returncode == 0
    r = agent(state2, root2, "check-in")
    assert r.returncode == 3 and "machine_revoked" in r.stderr, r.stderr


def test_a_cloned_state_directory_is_detected(live_server, tmp_path):
    """Two agents with the same credentials (a cloned disk): the one that falls behind is refused."""
    _, token = services.enrollment_token_create()
    root = make_root(tmp_path / "root", "vm-01")
    state = tmp_path / "state"
    assert agent(state, root, "register", "--server", live_server.url, "--token", token).returncode == 0
    clone = tmp_path / "clone-state"
    shutil.copytree(state, clone)
    for _ in range(2):
        assert agent(state, root, "check-in").returncode == 0
    r = agent(clone, root, "check-in")
    assert r.returncode == 1 and "clone_suspected" in r.stderr, r.stdout + r.stderr
    assert Machine.objects.get().is_clone_suspected
    assert agent(state, root, "check-in").returncode == 0  # the original goes on


# -- a server that dies mid-upload ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """`uus serve` as a real process on its own embedded data directory, which outlives the process."""

    def __init__(self, data_dir: Path, *, worker: bool = False):
        self.data_dir = data_dir
        self.worker = worker  # the in-process worker, which also runs the periodic jobs
        self.port = _free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("UUS_")}
        self.env.update({"UUS_DATA_DIR": str(data_dir), "UUS_LOG_LEVEL": "WARNING"})
        self.proc = None

    def start(self) -> None:
        log = open(self.data_dir / "serve.log", "a")
        self.proc = subprocess.Popen(
            [*uus_command(), "serve", "--bind", f"127.0.0.1:{self.port}", *([] if self.worker else ["--no-worker"])],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        end = time.monotonic() + 90
        while time.monotonic() < end:
            assert self.proc.poll() is None, (self.data_dir / "serve.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("uus serve did not answer /healthz")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as in a power cut or an OOM kill."""
        self.proc.kill()
        self.proc.wait(10)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*uus_command(), *args], env=self.env, capture_output=True, text=True, timeout=120)


class KillingProxy:
    """Passes HTTP requests to the server; armed, it kills the server as soon as it has passed on the
    body of an inventory upload, so that the agent never gets an answer."""

    def __init__(self, server: ServeProcess):
        self.server = server
        self.armed = False
        self.killed_during = None
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    @staticmethod
    def _read_message(conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body

    def _serve(self) -> None:
        while True:
            conn, _ = self.sock.accept()
            with conn:
                request = self._read_message(conn)
                path = request.split(b" ", 2)[1].decode()
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.server.port), timeout=60)
                except OSError:
                    continue  # the server is down: the agent sees a closed connection
                with upstream:
                    upstream.sendall(request)
                    if self.armed and "/inventory" in path:
                        self.armed = False
                        self.killed_during = path
                        self.server.kill()
                        continue
                    conn.sendall(self._read_message(upstream))


def test_a_server_killed_mid_upload_loses_nothing(tmp_path):
    """kill -9 of `uus serve` while it receives an inventory, then again right after it answered a delta:
    after each restart the server has every inventory it acknowledged, and the agent's retry completes
    what it had not acknowledged."""
    data = tmp_path / "var"
    data.mkdir()
    server = ServeProcess(data)
    server.start()
    proxy = KillingProxy(server)
    r = server.cli("tokens", "create", "--json")
    assert r.returncode == 0, r.stderr
    token = json.loads(r.stdout)["token"]
    root = make_root(tmp_path / "root", "db-01")
    dpkg(root, "-i", deb("hello_2.10-3_amd64"), deb("libjq1_1.6-2.1+deb12u2_amd64"), deb("jq_1.6-2.1+deb12u2_amd64"))
    state = tmp_path / "state"
    assert agent(state, root, "register", "--server", proxy.url, "--token", token).returncode == 0

    def server_packages() -> list[tuple]:
        r = server.cli("machines", "packages", "db-01", "--json")
        assert r.returncode == 0, r.stderr
        rows = [
            (p["name"], p["architecture"], p["version"], p["source"], p["source_version"], p["status"])
            for p in json.loads(r.stdout)
        ]
        return sorted(rows, key=lambda x: (x[0], x[1]))

    # 1. The server dies while the full inventory is on its way: the agent reports the failure.
    proxy.armed = True
    r = agent(state, root, "check-in")
    assert proxy.killed_during == "/api/agent/v1/inventory/"
    assert r.returncode == 1 and "inventory upload failed" in r.stderr, r.stdout + r.stderr

    # 2. After the restart the agent's next check-in completes it (or finds it stored, if the commit won).
    server.start()
    r = agent(state, root, "check-in")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "full 7 packages" in r.stdout or "inventory up to date" in r.stdout, r.stdout
    assert server_packages() == dpkg_query(root)

    # 3. A delta the server acknowledged survives a kill -9 right after it.
    dpkg(root, "-i", deb("libjq1_1.6-2.1+deb12u3_amd64"), deb("jq_1.6-2.1+deb12u3_amd64"))
    r = agent(state, root, "check-in")
    assert r.returncode == 0 and "delta +2 -0" in r.stdout, r.stdout + r.stderr
    server.kill()
    server.start()
    assert server_packages() == dpkg_query(root)
    r = agent(state, root, "check-in")
    assert r.returncode == 0 and "inventory up to date" in r.stdout, r.stdout + r.stderr
    r = server.cli("machines", "history", "db-01", "--json")
    assert {(c["name"], c["kind"]) for change in json.loads(r.stdout) for c in change["packages"]} == {
        ("jq", "upgraded"),
        ("libjq1", "upgraded"),
    }
    server.kill()
