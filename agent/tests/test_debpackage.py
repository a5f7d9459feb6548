"""The uus-agent .deb: built by dpkg-deb, installed, upgraded and purged by real dpkg on a test
root, and the installed agent runs on the system Python with nothing but the standard library."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from uus_agent import __version__, debpackage

from conftest import make_root

pytestmark = pytest.mark.system

# What the package depends on, present in the test root's dpkg database as plain status entries.
PROVIDED = ("python3", "apt", "dpkg", "gpg")


def dpkg(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "dpkg",
            "--root",
            str(root),
            "--force-script-chrootless",
            "--force-not-root",
            "--log=/dev/null",
            *args,
        ],
        capture_output=True,
        text=True,
    )


@pytest.fixture
def machine(tmp_path: Path) -> Path:
    root = make_root(tmp_path / "root")
    status = root / "var/lib/dpkg/status"
    stanzas = [
        "Package: %s\nStatus: install ok installed\nPriority: optional\nSection: admin\n"
        "Installed-Size: 1\nMaintainer: Test <test@example.invalid>\nArchitecture: amd64\n"
        "Version: 99\nDescription: placeholder\n" % name
        for name in PROVIDED
    ]
    status.write_text(status.read_text() + "\n" + "\n".join(stanzas))
    return root


def field(deb: str, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "--field", deb, name], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_package_fields_and_contents(tmp_path: Path) -> None:
    deb = debpackage.build(str(tmp_path))
    assert os.path.basename(deb) == "uus-agent_%s_all.deb" % __version__
    assert field(deb, "Package") == "uus-agent"
    assert field(deb, "Version") == __version__
    assert field(deb, "Architecture") == "all"
    assert field(deb, "Depends") == "python3 (>= 3.8), apt, dpkg, gpg"
    listing = subprocess.run(
        ["dpkg-deb", "--contents", deb], capture_output=True, text=True, check=True
    ).stdout
    paths = {line.split()[-1].lstrip(".") for line in listing.splitlines()}
    modules = {
        "/usr/lib/python3/dist-packages/uus_agent/%s" % p.name
        for p in Path(debpackage.HERE).glob("*.py")
    }
    assert modules <= paths
    assert {
        "/usr/bin/uus-agent",
        "/lib/systemd/system/uus-agent.service",
        "/etc/uus-agent/agent.conf",
        "/usr/share/doc/uus-agent/copyright",
    } <= paths
    owners = {line.split()[1] for line in listing.splitlines()}
    assert owners == {"root/root"}


def test_the_same_sources_build_the_same_bytes(tmp_path: Path) -> None:
    a = Path(debpackage.build(str(tmp_path / "a")))
    b = Path(debpackage.build(str(tmp_path / "b")))
    assert a.read_bytes() == b.read_bytes()


def test_install_run_upgrade_keep_the_admins_config_and_purge(
    tmp_path: Path, machine: Path
) -> None:
    deb = debpackage.build(str(tmp_path / "v1"))
    r = dpkg(machine, "-i", deb)
    assert r.returncode == 0, r.stderr
    assert dpkg(machine, "--verify", "uus-agent").stdout == ""  # every file as the md5sums say
    conf = machine / "etc/uus-agent/agent.conf"
    assert conf.read_text() == (Path(debpackage.PACKAGING) / "agent.conf").read_text()

    # The installed agent on the system Python, standard library only (-S: no site-packages at all).
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(machine / "usr/lib/python3/dist-packages")}
    entry = str(machine / "usr/bin/uus-agent")
    r = subprocess.run(
        [sys.executable, "-S", entry, "--version"], capture_output=True, text=True, env=env
    )
    assert r.returncode == 0 and r.stdout.strip() == "uus-agent " + __version__, r.stderr
    r = subprocess.run(
        [
            sys.executable,
            "-S",
            entry,
            "--root",
            str(machine),
            "--state-dir",
            str(tmp_path / "state"),
            "check-in",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 4 and "register" in r.stderr  # not registered yet: told what to do

    # An upgrade keeps the configuration the administrator changed (a conffile, dpkg's old version).
    conf.write_text(conf.read_text().replace("http_timeout = 60", "http_timeout = 90"))
    newer = debpackage.build(str(tmp_path / "v2"), version=__version__ + "+1")
    r = dpkg(machine, "--force-confold", "-i", newer)
    assert r.returncode == 0, r.stderr
    query = subprocess.run(
        [
            "dpkg-query",
            "--admindir",
            str(machine / "var/lib/dpkg"),
            "-W",
            "-f",
            "${Version}",
            "uus-agent",
        ],
        capture_output=True,
        text=True,
    )
    assert query.stdout == __version__ + "+1"
    assert "http_timeout = 90" in conf.read_text()

    # Purging forgets the machine's credentials and state.
    state = machine / "var/lib/uus-agent"
    state.mkdir(parents=True)
    (state / "credentials.json").write_text("{}")
    r = dpkg(machine, "--purge", "uus-agent")
    assert r.returncode == 0, r.stderr
    assert not state.exists() and not conf.exists()
    assert not (machine / "usr/lib/python3/dist-packages/uus_agent").exists()


def test_missing_dpkg_deb_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(debpackage.BuildError, match="dpkg-deb is needed"):
        debpackage.build(str(tmp_path), dpkg_deb="")
    with pytest.raises(debpackage.BuildError, match="cannot run"):
        debpackage.build(str(tmp_path), dpkg_deb=str(tmp_path / "no-such-dpkg-deb"))
