"""Shared helpers: machine roots where real dpkg installs real .debs, local apt repositories built
with apt-ftparchive (signed with a throwaway gpg key when asked), and a loopback HTTP server.

No apt, dpkg or gpg is mocked anywhere: a root is a directory that dpkg and apt work on with
--root / Dir (shared design, "Test roots").
"""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

AGENT_DIR = Path(__file__).resolve().parents[1]
DATA = AGENT_DIR / "tests" / "data"
DEBS = DATA / "debs"
sys.path.insert(0, str(AGENT_DIR))

QUERY_FORMAT = (
    "${Package}\t${Architecture}\t${Version}\t"
    "${source:Package}\t${source:Version}\t${db:Status-Status}\n"
)

# Libraries the test .debs depend on, present as status entries only (a minimal machine).
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


def deb(name: str) -> str:
    matches = sorted(DEBS.glob(name + "*.deb"))
    assert matches, name
    return str(matches[0])


def make_root(path: Path, hostname: str = "test-01", placeholders: bool = True) -> Path:
    """A machine's file system as `uus-agent --root` sees it, with an empty-but-valid dpkg db."""
    for d in (
        "etc/apt/sources.list.d",
        "etc/apt/preferences.d",
        "etc/apt/apt.conf.d",
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
    (path / "var/lib/dpkg/available").write_text("")
    stanzas = []
    if placeholders:
        for name, version, source in PLACEHOLDERS:
            stanzas.append(
                "Package: %s\nStatus: install ok installed\nPriority: optional\nSection: libs\n"
                "Installed-Size: 1\nMaintainer: Test <test@example.invalid>\nArchitecture: amd64\n"
                "Multi-Arch: same\nSource: %s\nVersion: %s\nDescription: placeholder\n"
                % (name, source, version)
            )
            (path / ("var/lib/dpkg/info/%s:amd64.list" % name)).write_text("")
    (path / "var/lib/dpkg/status").write_text("\n".join(stanzas))
    return path


def dpkg(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["dpkg", "--root=%s" % root, "--force-script-chrootless", "--force-not-root", *list(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=True,
    )


def dpkg_query(admindir: Path) -> List[Dict[str, str]]:
    """What dpkg itself says: the reference the agent's parser must equal."""
    out = subprocess.run(
        ["dpkg-query", "--admindir=%s" % admindir, "-W", "-f", QUERY_FORMAT],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        check=True,
    ).stdout
    keys = ("name", "architecture", "version", "source", "source_version", "status")
    rows = [dict(zip(keys, line.split("\t"))) for line in out.splitlines()]
    return sorted(rows, key=lambda p: (p["name"], p["architecture"]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on port %d" % port)


def build_repo(
    www: Path, prefix: str, suite: str, debs: List[str], gnupg: Optional[Path] = None
) -> Path:
    """An APT repository at www/prefix with one suite, component main, amd64 (apt-ftparchive)."""
    base = www / prefix
    pool = base / "pool" / "main"
    pool.mkdir(parents=True, exist_ok=True)
    for d in debs:
        shutil.copy(d, pool)
    packages = subprocess.run(
        ["apt-ftparchive", "packages", "pool/main"],
        cwd=base,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        check=True,
    ).stdout
    dist = base / "dists" / suite
    (dist / "main" / "binary-amd64").mkdir(parents=True, exist_ok=True)
    (dist / "main" / "binary-amd64" / "Packages").write_bytes(packages)
    (dist / "main" / "binary-amd64" / "Packages.gz").write_bytes(gzip.compress(packages))
    release = subprocess.run(
        [
            "apt-ftparchive",
            "-o",
            "APT::FTPArchive::Release::Suite=%s" % suite,
            "-o",
            "APT::FTPArchive::Release::Codename=%s" % suite,
            "-o",
            "APT::FTPArchive::Release::Components=main",
            "-o",
            "APT::FTPArchive::Release::Architectures=amd64",
            "release",
            ".",
        ],
        cwd=dist,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        check=True,
    ).stdout
    (dist / "Release").write_bytes(release)
    if gnupg is not None:
        subprocess.run(
            [
                "gpg",
                "--batch",
                "--yes",
                "--homedir",
                str(gnupg),
                "--clearsign",
                "-o",
                str(dist / "InRelease"),
                str(dist / "Release"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    return base


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_root(tmp_path / "root")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory):
    """A throwaway ed25519 key (gpg homedir, armored public key), like the server's repo key."""
    home = tmp_path_factory.mktemp("gnupg")
    os.chmod(home, 0o700)
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--homedir",
            str(home),
            "--passphrase",
            "",
            "--quick-gen-key",
            "UUS Test Repo <repo@example.invalid>",
            "ed25519",
            "sign",
            "never",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    armored = subprocess.run(
        ["gpg", "--batch", "--homedir", str(home), "--armor", "--export"],
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ).stdout
    yield home, armored
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], stderr=subprocess.DEVNULL)


@pytest.fixture
def http_dir(tmp_path: Path):
    """`python -m http.server` on a free loopback port serving a directory: (www, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(www),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield www, "http://127.0.0.1:%d" % port
    finally:
        proc.terminate()
        proc.wait(10)
