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


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
DEPLOY_DOC = Path(__file__).resolve().parents[3] / "docs" / "deploy-nginx.md"


@pytest.fixture
def nginx(uus, tmp_path):
    """nginx in front of the module's `uus serve`, configured with docs/deploy-nginx.md's block
    (only the address, the port and the data directory replaced): the documentation is what runs."""
    if not Path(NGINX).exists():
        pytest.fail("nginx is missing: scripts/install-system-deps installs it")
    doc = DEPLOY_DOC.read_text()
    block = doc.split("```nginx\n", 1)[1].split("```", 1)[0]
    from .test_serve import free_port

    port = free_port()
    server_port = uus.server.url.rsplit(":", 1)[1]
    block = (
        block.replace("listen 443 ssl;", f"listen 127.0.0.1:{port};")
        .replace("127.0.0.1:8000", f"127.0.0.1:{server_port}")
        .replace("/var/lib/uus/", f"{uus.data}/")
    )
    assert "/var/lib/uus" not in block and f"listen 127.0.0.1:{port};" in block
    work = tmp_path / "nginx"
    work.mkdir()
    (work / "nginx.conf").write_text(
        # as root, nginx's workers would drop to nobody, who cannot enter the tests' 0700 directories
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off; worker_processes 1; pid {work}/nginx.pid; error_log {work}/error.log;\n"
        "events { worker_connections 64; }\n"
        f"http {{ access_log {work}/access.log; client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;\n"
        f"  fastcgi_temp_path {work}/f; uwsgi_temp_path {work}/u; scgi_temp_path {work}/s;\n{block}\n}}\n"
    )
    proc = subprocess.Popen([NGINX, "-p", str(work), "-c", str(work / "nginx.conf")], stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/repo/key.asc", timeout=2)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError(f"nginx exited: {proc.stderr.read().decode()[-500:]}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_apt_installs_through_nginx_serving_indexes_and_pool_from_disk(uus, nginx, apt_root):
    uus.cli("repos", "publish", "production")
    with urllib.request.urlopen(nginx + "/repo/key.asc", timeout=10) as r:
        keyring = apt_root.trust(r.read())
    apt_root.sources(f"deb [signed-by={keyring}] {nginx}/repo/production uus-local main")
    update = apt_root.apt("update")
    assert _clean(update), update.stdout + update.stderr
    download = apt_root.apt("download", "sl")
    assert download.returncode == 0, download.stdout + download.stderr
    sl = (DEBS / "sl_5.02-1+b1_amd64.deb").read_bytes()
    assert (apt_root.root / "sl_5.02-1+b1_amd64.deb").read_bytes() == sl

    pool = f"{nginx}/repo/production/pool/local/main/s/sl/sl_5.02-1%2bb1_amd64.deb"
    req = urllib.request.Request(pool, headers={"Range": "bytes=100-199"})
    with urllib.request.urlopen(req, timeout=10) as r:
        # nginx's own ETag ("mtime-size"): the file came from disk, not through UUS ("inode-size-mtime")
        assert r.status == 206 and r.read() == sl[100:200] and r.headers["ETag"].count("-") == 1
        etag = r.headers["ETag"]
    try:
        urllib.request.urlopen(urllib.request.Request(pool, headers={"If-None-Match": etag}), timeout=10)
        raise AssertionError("expected 304")
    except urllib.error.HTTPError as e:
        assert e.code == 304
    sha = hashlib.sha256(sl).hexdigest()
    for refused in (f"/_uus_pool/by-sha256/{sha[:2]}/{sha[2:]}", "/repo/production/.uus/pool-map-uus-local.tsv",
                    "/repo/production/pool/local/main/h/hello/hello_2.10-3_amd64.deb"):  # fmt: skip
        try:
            urllib.request.urlopen(nginx + refused, timeout=10)
            raise AssertionError(f"{refused} was served")
        except urllib.error.HTTPError as e:
            assert e.code == 404, refused


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


def _wait_for(what: str, predicate, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"gave up waiting for {what}")


def test_killing_the_server_mid_publish_leaves_the_old_repository_served(upstream, tmp_path, apt_root):
    """`uus serve` publishes by itself (its in-process worker); SIGKILL it while it builds, and the
    repository it served before is still there whole: a restarted server serves it to apt, then
    resumes the lost publish, which switches the new tree in."""
    import sqlite3

    data = tmp_path / "var"
    data.mkdir()
    server = Server(data)  # the default backend: the server's own worker runs the publishes

    def cli(*args: str) -> None:
        proc = subprocess.run([*uus_command(), *args], env=fresh_env(data), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, (args, proc.stderr)

    def fetch(path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(server.url + path, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, b""

    root = data / "repos"
    try:
        server.wait()
        # the first start alone makes the key and publishes every ring (the renewal job runs at once)
        _wait_for("the first publish", lambda: fetch("/repo/production/dists/uus-local/InRelease")[0] == 200)
        assert fetch("/repo/key.asc")[1].startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
        cli("packages", "upload", str(DEBS / "sl_5.02-1+b1_amd64.deb"))
        packages = "/repo/production/dists/uus-local/main/binary-amd64/Packages"
        _wait_for("the upload to be published", lambda: b"Package: sl\n" in fetch(packages)[1])
        cli("upstream", "add", "deb", upstream["url"], "--suites", "bookworm,bookworm-security", "--components",
            "main", "--architectures", "amd64", "--keyring", str(upstream["keyring"]))  # fmt: skip
        cli("upstream", "sync", "deb")
        _wait_for("the upstream suites", lambda: fetch("/repo/production/dists/bookworm-security/InRelease")[0] == 200)
        _wait_for("the publishes to settle", lambda: not list(root.glob(".build-production-*")))
        time.sleep(1)  # a publish queued by the sync may still start
        _wait_for("the publishes to settle", lambda: not list(root.glob(".build-production-*")))
        live = os.readlink(root / "production")
        before = {p.relative_to(root / live): p.read_bytes() for p in (root / live).rglob("*") if p.is_file()}

        shutil.rmtree(data / "upstream-indexes")  # the next publish fetches them again, slowly
        upstream["delay"]["/binary-amd64/"] = 60
        cli("approvals", "set", "production", "jq", JQ_NEW, "approved")  # queues a publish
        _wait_for("the server to start building", lambda: list(root.glob(".build-production-*")), timeout=60)
        time.sleep(0.5)
        server.proc.kill()  # SIGKILL: no cleanup code runs
        server.proc.wait(10)
        server.log.close()
    finally:
        upstream["delay"].clear()
    assert os.readlink(root / "production") == live
    after = {p.relative_to(root / live): p.read_bytes() for p in (root / live).rglob("*") if p.is_file()}
    assert after == before

    # the worker died with its job still "running": make it look lost now rather than in 90 s
    with sqlite3.connect(data / "uus.sqlite3") as db:
        aged = db.execute("UPDATE jobs_job SET heartbeat = '2000-01-01 00:00:00' WHERE state = 'running'").rowcount
    assert aged >= 1
    server = Server(data)
    try:
        server.wait()
        keyring = apt_root.trust(fetch("/repo/key.asc")[1])
        apt_root.sources(f"deb [signed-by={keyring}] {server.url}/repo/production uus-local main")
        update = apt_root.apt("update")
        assert _clean(update), update.stdout + update.stderr
        assert apt_root.apt("download", "sl").returncode == 0
        # the lost publish is resumed and switches the new tree in; the half-built one is gone
        security = "/repo/production/dists/bookworm-security/main/binary-amd64/Packages"
        _wait_for("the resumed publish", lambda: f"Version: {JQ_NEW}".encode() in fetch(security)[1], timeout=180)
        assert os.readlink(root / "production") != live
        assert not list(root.glob(".build-production-*"))
    finally:
        server.stop()
        subprocess.run(["gpgconf", "--homedir", str(data / "gnupg"), "--kill", "gpg-agent"], capture_output=True)
