"""A machine gets its agent from the server it reports to: `uus agent publish` stores the uus-agent
.deb in uus-local, real apt installs it from `uus serve` with signature checking into a test root,
and the installed agent, on the system Python with the standard library only, registers and reports
an inventory that lists itself."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import uus_agent
from uus.testing.fixtures import uus_command

from .test_repos_apt import AptRoot
from .test_serve import Server, fresh_env, get

pytestmark = pytest.mark.system

PROVIDED = ("python3", "apt", "dpkg", "gpg")  # what uus-agent depends on, as status entries


def test_machines_install_the_agent_with_apt_from_uus(tmp_path):
    data = tmp_path / "var"

    def uus(*args: str) -> subprocess.CompletedProcess:
        r = subprocess.run([*uus_command(), *args], env=fresh_env(data), capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r

    pkg = json.loads(uus("agent", "publish", "--json").stdout)
    assert (pkg["name"], pkg["version"], pkg["architecture"]) == ("uus-agent", uus_agent.__version__, "all")
    assert "already published" in uus("agent", "publish").stdout  # the same build again: nothing new
    server = Server(data)
    try:
        server.wait()
        uus("repos", "publish", "production")
        root = AptRoot(tmp_path / "machine")
        status = root.root / "var/lib/dpkg/status"
        status.write_text(
            status.read_text()
            + "".join(
                f"\nPackage: {n}\nStatus: install ok installed\nPriority: optional\nSection: admin\n"
                f"Installed-Size: 1\nMaintainer: T <t@example.invalid>\nArchitecture: amd64\nVersion: 99\n"
                f"Description: placeholder\n"
                for n in PROVIDED
            )
        )
        code, key = get(server.url + "/repo/key.asc")
        assert code == 200
        keyring = root.trust(key.encode())
        root.sources(f"deb [signed-by={keyring}] {server.url}/repo/production uus-local main")
        r = root.apt("update")
        assert r.returncode == 0 and "W:" not in r.stdout + r.stderr, r.stdout + r.stderr
        r = root.apt("install", "--no-install-recommends", "uus-agent")
        assert r.returncode == 0, r.stdout + r.stderr
        assert root.installed("uus-agent") == f"{uus_agent.__version__} installed"

        # the machine's facts for the agent, then the installed agent itself
        (root.root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')
        (root.root / "etc/hostname").write_text("fresh-01\n")
        (root.root / "proc/sys/kernel").mkdir(parents=True)
        (root.root / "proc/sys/kernel/osrelease").write_text("6.1.0-40-amd64\n")
        token = json.loads(uus("tokens", "create", "--json").stdout)["token"]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(root.root / "usr/lib/python3/dist-packages")}
        agent = [
            sys.executable,
            "-S",  # no site-packages: the installed agent needs nothing but the standard library
            str(root.root / "usr/bin/uus-agent"),
            "--root",
            str(root.root),
            "--state-dir",
            str(tmp_path / "state"),
        ]
        r = subprocess.run(
            [*agent, "register", "--server", server.url, "--token", token], env=env, capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr
        r = subprocess.run([*agent, "check-in"], env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        packages = json.loads(uus("machines", "packages", "fresh-01", "--json").stdout)
        assert {"name": "uus-agent", "version": uus_agent.__version__} in [
            {"name": p["name"], "version": p["version"]} for p in packages
        ]
    finally:
        server.stop()
