"""The real agent (`uus-agent`, installed from agent/) against a live server, on machine roots where real
dpkg installs real .debs: registration, the first full inventory, a delta after `dpkg -i` / `dpkg -r`,
history, deduplication across machines, the CLI's view of all of it, a bogus token and a revocation.

Nothing is mocked: the roots are directories that dpkg works on with --root (design.md, "Test roots").
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from uus.inventory import services
from uus.inventory.models import Machine, PackageChange

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
    assert (m.os_id, m.release, m.kernel, m.architecture, m.enrollment_group) == (
        "debian",
        "12",
        "6.1.0-40-amd64",
        "amd64",
        "lab",
    )
    assert not PackageChange.objects.exists()  # the first inventory is the baseline

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
    changes = {(c.kind, c.name, c.old_version, c.new_version) for c in PackageChange.objects.all()}
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
    assert {c["name"] for c in json.loads(r.stdout)} == {"jq", "libjq1", "sl"}

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
