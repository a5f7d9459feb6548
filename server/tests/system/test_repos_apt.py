"""The real apt client against `uus serve`: signed per-ring repositories, a private upload and an
upstream package fetched through the pull-through cache, installed with apt and dpkg into a temp root.

One server and one signed loopback upstream (real bookworm .debs, a throwaway gpg key) are shared by
the module; the tests run in order and the last one kills a publish mid-way.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from uus.testing.fixtures import uus_command

from .test_serve import Server, fresh_env

pytestmark = pytest.mark.system

DEBS = Path(__file__).resolve().parents[1] / "data" / "debs"
JQ_OLD, JQ_NEW = "1.6-2.1+deb12u2", "1.6-2.1+deb12u3"
PLACEHOLDERS = [  # what the .debs depend on, present as dpkg status entries only
    ("libc6", "2.36-9+deb12u13", "glibc"),
    ("libonig5", "6.9.8-1", "libonig"),
    ("libncurses6", "6.4-4", "ncurses"),
    ("libtinfo6", "6.4-4", "ncurses"),
]


# --------------------------------------------------------------------------- a signed upstream


class _SlowHandler(http.server.SimpleHTTPRequestHandler):
    requests: list
    delay: dict  # part of a path -> seconds

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.requests.append(self.path)
        for part, seconds in list(self.delay.items()):
            if part in self.path:
                time.sleep(seconds)
        super().do_GET()


def _gpg(home: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--yes", *args], check=True, capture_output=True, **kw
    )


def _archive(root: Path, gpg_home: Path) -> None:
    """bookworm: jq/libjq1 deb12u2 and hello; bookworm-security: jq/libjq1 deb12u3 (as in Debian)."""
    pool = root / "pool/main"
    pool.mkdir(parents=True)
    suites = {
        "bookworm": [f"jq_{JQ_OLD}_amd64", f"libjq1_{JQ_OLD}_amd64", "hello_2.10-3_amd64"],
        "bookworm-security": [f"jq_{JQ_NEW}_amd64", f"libjq1_{JQ_NEW}_amd64"],
    }
    for suite, names in suites.items():
        sub = pool / suite
        sub.mkdir()
        for name in names:
            shutil.copy(DEBS / f"{name}.deb", sub)
        binary = root / f"dists/{suite}/main/binary-amd64"
        binary.mkdir(parents=True)
        packages = subprocess.run(
            ["apt-ftparchive", "packages", f"pool/main/{suite}"], cwd=root, check=True, capture_output=True
        ).stdout
        (binary / "Packages").write_bytes(packages)
        subprocess.run(["gzip", "-kf", str(binary / "Packages")], check=True)
        release = subprocess.run(
            ["apt-ftparchive", "-o", f"APT::FTPArchive::Release::Suite={suite}", "-o",
             f"APT::FTPArchive::Release::Codename={suite}", "-o", "APT::FTPArchive::Release::Components=main",
             "-o", "APT::FTPArchive::Release::Architectures=amd64", "release", f"dists/{suite}"],
            cwd=root, check=True, capture_output=True,
        ).stdout  # fmt: skip
        (root / f"dists/{suite}/Release").write_bytes(release)
        _gpg(
            gpg_home, "--clearsign", "-o", str(root / f"dists/{suite}/InRelease"), str(root / f"dists/{suite}/Release")
        )


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    base = tmp_path_factory.mktemp("upstream")
    home = base / "g"
    home.mkdir(mode=0o700)
    _gpg(home, "--passphrase", "", "--quick-gen-key", "Test Upstream <up@example.invalid>", "ed25519", "sign", "never")
    keyring = base / "upstream.gpg"
    keyring.write_bytes(_gpg(home, "--export").stdout)
    www = base / "www"
    _archive(www / "debian", home)
    requests: list[str] = []
    delay: dict[str, float] = {}
    handler = type("H", (_SlowHandler,), {"requests": requests, "delay": delay})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(www)))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield {"url": f"http://127.0.0.1:{server.server_port}/debian", "keyring": keyring, "requests": requests,
           "delay": delay}  # fmt: skip
    server.shutdown()
    server.server_close()
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True)


# --------------------------------------------------------------------------- the server


class Uus:
    def __init__(self, data: Path):
        self.data = data
        # no in-process worker: the publishes that uploads and approvals queue would otherwise race
        # the ones these tests run and inspect (uus repos publish runs its job inline)
        self.server = Server(data, UUS_TASK_BACKEND="db")

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [*uus_command(), *args], env=fresh_env(self.data), capture_output=True, text=True, timeout=300
        )
        if check:
            assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc

    def get(self, path: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
        req = urllib.request.Request(self.server.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)


@pytest.fixture(scope="module")
def uus(tmp_path_factory, upstream):
    data = tmp_path_factory.mktemp("srv") / "var"
    data.mkdir()
    u = Uus(data)
    try:
        u.server.wait()
        u.cli("upstream", "add", "deb", upstream["url"], "--suites", "bookworm,bookworm-security", "--components",
              "main", "--architectures", "amd64", "--keyring", str(upstream["keyring"]))  # fmt: skip
        u.cli("upstream", "sync", "deb")
        yield u
    finally:
        u.server.stop()
        subprocess.run(["gpgconf", "--homedir", str(data / "gnupg"), "--kill", "gpg-agent"], capture_output=True)


# --------------------------------------------------------------------------- an apt client root


class AptRoot:
    """A machine's file system for apt and dpkg (-o Dir=, --root), with placeholder libraries."""

    def __init__(self, root: Path):
        self.root = root
        for d in ("etc/apt/sources.list.d", "etc/apt/keyrings", "var/lib/dpkg/info", "var/lib/dpkg/updates",
                  "var/lib/apt/lists/partial", "var/cache/apt/archives/partial", "var/log/apt"):  # fmt: skip
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "var/lib/dpkg/arch").write_text("amd64\n")
        (root / "var/lib/dpkg/available").write_text("")
        (root / "var/lib/dpkg/status").write_text(
            "\n".join(
                f"Package: {n}\nStatus: install ok installed\nPriority: optional\nSection: libs\n"
                f"Installed-Size: 1\nMaintainer: T <t@example.invalid>\nArchitecture: amd64\nMulti-Arch: same\n"
                f"Source: {s}\nVersion: {v}\nDescription: placeholder\n"
                for n, v, s in PLACEHOLDERS
            )
        )

    def trust(self, armored: bytes) -> Path:
        key = self.root / "etc/apt/keyrings/uus.gpg"
        key.write_bytes(subprocess.run(["gpg", "--dearmor"], input=armored, capture_output=True, check=True).stdout)
        return key

    def sources(self, *lines: str) -> None:
        (self.root / "etc/apt/sources.list").write_text("".join(line + "\n" for line in lines))

    def apt(self, *args: str) -> subprocess.CompletedProcess:
        r = self.root
        opts = [
            f"Dir={r}", f"Dir::State::Status={r}/var/lib/dpkg/status", "Dir::Etc::SourceParts=/dev/null",
            f"DPkg::Options::=--root={r}", "DPkg::Options::=--force-script-chrootless",
            "DPkg::Options::=--force-not-root", "Debug::NoLocking=1", "APT::Sandbox::User=root",
            "APT::Architecture=amd64", "Acquire::Languages=none", "Acquire::Retries=0",
            f"Dir::Log={r}/var/log/apt",
        ]  # fmt: skip
        cmd = ["apt-get", "-q", "-y"] + [x for o in opts for x in ("-o", o)] + list(args)
        env = {**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=r)

    def installed(self, package: str) -> str:
        out = subprocess.run(
            ["dpkg-query", f"--admindir={self.root}/var/lib/dpkg", "-W", "-f", "${Version} ${db:Status-Status}",
             package], capture_output=True, text=True,
        )  # fmt: skip
        return out.stdout.strip()


def _clean(proc: subprocess.CompletedProcess) -> bool:
    out = proc.stdout + proc.stderr
    return proc.returncode == 0 and not any(line.startswith(("W:", "E:")) for line in out.splitlines())


@pytest.fixture
def apt_root(tmp_path):
    return AptRoot(tmp_path / "root")


# --------------------------------------------------------------------------- the tests


def test_uploaded_private_package_installs_with_signature_checking(uus, apt_root):
    up = json.loads(uus.cli("packages", "upload", str(DEBS / "sl_5.02-1+b1_amd64.deb"), "--json").stdout)
    assert (
        up["name"] == "sl"
        and up["sha256"] == hashlib.sha256((DEBS / "sl_5.02-1+b1_amd64.deb").read_bytes()).hexdigest()
    )
    uus.cli("repos", "publish", "production")
    status, key, _ = uus.get("/repo/key.asc")
    assert status == 200
    keyring = apt_root.trust(key)
    apt_root.sources(f"deb [signed-by={keyring}] {uus.server.url}/repo/production uus-local main")
    update = apt_root.apt("update")
    assert _clean(update), update.stdout + update.stderr
    install = apt_root.apt("install", "--no-install-recommends", "sl")
    assert install.returncode == 0, install.stdout + install.stderr
    assert apt_root.installed("sl") == "5.02-1+b1 installed"
    assert (apt_root.root / "usr/games/sl").is_file()


def test_upstream_package_is_fetched_once_then_served_from_the_cache(uus, upstream, apt_root):
    uus.cli("approvals", "set", "production", "jq", JQ_NEW, "approved")
    uus.cli("approvals", "set", "production", "libjq1", JQ_NEW, "approved")
    published = json.loads(uus.cli("repos", "publish", "production", "--json").stdout)[0]
    suites = {s["suite"]: s["packages"] for s in published["suites"]}
    assert suites == {"uus-local": 1, "bookworm": 0, "bookworm-security": 2}
    pool = f"/repo/production/pool/up/deb/pool/main/bookworm-security/jq_{JQ_NEW.replace('+', '%2b')}_amd64.deb"
    original = (DEBS / f"jq_{JQ_NEW}_amd64.deb").read_bytes()
    with concurrent.futures.ThreadPoolExecutor(5) as ex:  # five machines miss the same file at once
        answers = list(ex.map(lambda _: uus.get(pool), range(5)))
    assert [(s, body == original) for s, body, _ in answers] == [(200, True)] * 5
    fetched = [r for r in upstream["requests"] if r.endswith(f"jq_{JQ_NEW.replace('+', '%2B')}_amd64.deb")]
    assert len(fetched) == 1, upstream["requests"]
    status, part, headers = uus.get(pool, {"Range": "bytes=10-109"})
    assert status == 206 and part == original[10:110] and headers["Content-Range"].endswith(f"/{len(original)}")
    status, _, _ = uus.get(pool, {"If-Modified-Since": answers[0][2]["Last-Modified"]})
    assert status == 304

    keyring = apt_root.trust(uus.get("/repo/key.asc")[1])
    apt_root.sources(
        *(f"deb [signed-by={keyring}] {uus.server.url}/repo/production {s} main" for s in suites)
    )  # fmt: skip
    update = apt_root.apt("update")
    assert _clean(update), update.stdout + update.stderr
    install = apt_root.apt("install", "--no-install-recommends", "jq")
    assert install.returncode == 0, install.stdout + install.stderr
    assert apt_root.installed("jq") == f"{JQ_NEW} installed"
    assert apt_root.installed("libjq1") == f"{JQ_NEW} installed"
    # only what production may see: the unapproved bookworm version is not in its indexes
    policy = apt_root.apt("install", "--no-install-recommends", f"jq={JQ_OLD}")
    assert policy.returncode != 0
    stats = json.loads(uus.cli("repos", "cache", "--json").stdout)
    assert stats["misses"] == 2 and stats["hits"] >= 6, stats  # jq (5 + range + apt), libjq1 once
    assert sum(1 for r in upstream["requests"] if "/pool/" in r) == 2


def test_tampered_index_or_wrong_key_is_refused_by_apt(uus, upstream, apt_root):
    uus.cli("repos", "publish", "test")
    keyring = apt_root.trust(uus.get("/repo/key.asc")[1])
    apt_root.sources(f"deb [signed-by={keyring}] {uus.server.url}/repo/test uus-local main")
    assert _clean(apt_root.apt("update"))

    wrong = apt_root.root / "etc/apt/keyrings/upstream.gpg"
    shutil.copy(upstream["keyring"], wrong)
    apt_root.sources(f"deb [signed-by={wrong}] {uus.server.url}/repo/test uus-local main")
    shutil.rmtree(apt_root.root / "var/lib/apt/lists")
    (apt_root.root / "var/lib/apt/lists/partial").mkdir(parents=True)
    refused = apt_root.apt("update")
    assert "NO_PUBKEY" in refused.stdout + refused.stderr or "not signed" in refused.stdout + refused.stderr
    assert not list((apt_root.root / "var/lib/apt/lists").glob("*Packages*"))

    apt_root.sources(f"deb [signed-by={keyring}] {uus.server.url}/repo/test uus-local main")
    binary = uus.data / "repos/test/dists/uus-local/main/binary-amd64"
    plain = (binary / "Packages").read_bytes()
    evil = plain.replace(b"Version: 5.02-1+b1", b"Version: 9.99-1")
    assert evil != plain
    import gzip
    import lzma

    for name, data in (("Packages", evil), ("Packages.gz", gzip.compress(evil)), ("Packages.xz", lzma.compress(evil))):
        with open(binary / name, "r+b") as f:  # in place: the by-hash links are the same inodes
            f.truncate(0)
            f.write(data)
    shutil.rmtree(apt_root.root / "var/lib/apt/lists")
    (apt_root.root / "var/lib/apt/lists/partial").mkdir(parents=True)
    tampered = apt_root.apt("update")
    assert "Hash Sum mismatch" in tampered.stdout + tampered.stderr or tampered.returncode != 0
    assert not _clean(tampered)
    listed = apt_root.apt("install", "--no-install-recommends", "sl=9.99-1")
    assert listed.returncode != 0


def test_a_publish_killed_mid_way_leaves_the_old_tree_served_whole(uus, upstream, apt_root):
    uus.cli("repos", "publish", "production")
    root = uus.data / "repos"
    live = os.readlink(root / "production")
    before = {p.relative_to(root / live): p.read_bytes() for p in (root / live).rglob("*") if p.is_file()}
    # the next publish must fetch the upstream indexes of the approved jq again, from a slow upstream
    shutil.rmtree(uus.data / "upstream-indexes")
    upstream["delay"]["/binary-amd64/"] = 60
    proc = subprocess.Popen(
        [*uus_command(), "repos", "publish", "production"],
        env=fresh_env(uus.data),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(root.glob(".build-production-*")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list(root.glob(".build-production-*")), "the publish never started building"
        time.sleep(0.5)
        proc.kill()  # SIGKILL: no cleanup code runs
        proc.wait(10)
    finally:
        upstream["delay"].clear()
    assert os.readlink(root / "production") == live
    after = {p.relative_to(root / live): p.read_bytes() for p in (root / live).rglob("*") if p.is_file()}
    assert after == before
    keyring = apt_root.trust(uus.get("/repo/key.asc")[1])
    apt_root.sources(f"deb [signed-by={keyring}] {uus.server.url}/repo/production uus-local main")
    update = apt_root.apt("update")
    assert _clean(update), update.stdout + update.stderr
    assert apt_root.apt("download", "sl").returncode == 0
