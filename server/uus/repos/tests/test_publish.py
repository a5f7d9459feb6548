"""Atomic publishing, checked end to end by the real apt-get over HTTP on a loopback port."""

from __future__ import annotations

import itertools
import lzma
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from uus.repos.debfile import inspect_deb
from uus.repos.indexes import InvalidIndexData
from uus.repos.pool import pool_path_for, store_file
from uus.repos.publish import (
    PublishBusy,
    build_suite,
    generations,
    publish_tree,
    resolve_pool_path,
    write_atomic,
)
from uus.repos.signing import (
    Signer,
    export_public_key,
    signing_key_ensure,
    signing_key_retire,
    signing_key_rotate,
)

from .debs import COWSAY, HELLO, SL

LIMIT = 10 * 1024 * 1024


def _ingest(pool_root: Path, *debs: Path):
    infos = []
    for deb in debs:
        info = inspect_deb(deb, LIMIT)
        store_file(pool_root, deb, info.sha256)
        infos.append(info)
    return infos


def _publish(repo_root: Path, home: Path, infos, archs=("amd64",), valid_days=7):
    def build(tmp: Path) -> None:
        build_suite(
            tmp,
            "uus-local",
            "main",
            list(archs),
            infos,
            Signer(home),
            valid_days,
            "pool",
            previous_root=repo_root,
        )

    generation = publish_tree(repo_root, build)
    write_atomic(repo_root.parent / "key.asc", export_public_key(home))
    return generation


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def published(repo_server, gnupg_home):
    url, repo_root, pool_root, requests = repo_server
    signing_key_ensure(gnupg_home, "UUS Test Repository", "repo@uus.example")
    infos = _ingest(pool_root, COWSAY, HELLO)
    _publish(repo_root, gnupg_home, infos)
    return url, repo_root, pool_root, requests, gnupg_home


# --------------------------------------------------------------------------- real apt


def test_apt_update_and_download_over_http(published, apt_client):
    url, repo_root, _pool_root, requests, _home = published
    assert repo_root.is_symlink() and not os.path.isabs(os.readlink(repo_root))
    apt_client.configure(url, repo_root.parent / "key.asc")
    update = apt_client.run("update")
    assert update.returncode == 0, update.stdout + update.stderr
    assert "W:" not in update.stdout + update.stderr, update.stdout + update.stderr
    assert any("/by-hash/SHA256/" in r for r in requests), requests  # Acquire-By-Hash used

    download = apt_client.run("download", "cowsay", "hello")
    assert download.returncode == 0, download.stdout + download.stderr
    got = apt_client.root / "download" / "cowsay_3.03+dfsg2-8_all.deb"
    assert got.read_bytes() == COWSAY.read_bytes()
    assert (apt_client.root / "download" / "hello_2.10-3_amd64.deb").read_bytes() == (HELLO.read_bytes())
    # the pool is not copied into generations: only index files live there
    assert not (repo_root / "pool").exists()
    assert "/pool/main/c/cowsay/cowsay_3.03+dfsg2-8_all.deb" in requests


def test_tampered_packages_is_refused_by_apt(published, apt_client):
    url, repo_root, *_ = published
    binary = repo_root / "dists" / "uus-local" / "main" / "binary-amd64"
    plain = (binary / "Packages").read_bytes()
    evil = plain.replace(b"Version: 2.10-3", b"Version: 9.99-1")
    assert evil != plain
    # rewrite in place: by-hash entries are hard links of the same inodes, so they change too
    for name, data in (
        ("Packages", evil),
        ("Packages.xz", lzma.compress(evil)),
        ("Packages.gz", __import__("gzip").compress(evil)),
    ):
        with open(binary / name, "r+b") as f:
            f.truncate(0)
            f.write(data)
    apt_client.configure(url, repo_root.parent / "key.asc")
    update = apt_client.run("update")
    out = update.stdout + update.stderr
    assert update.returncode != 0, out
    assert "Hash Sum mismatch" in out or "File has unexpected size" in out, out


def test_wrong_key_in_signed_by_is_refused_by_apt(published, apt_client, session_key, tmp_path):
    url, *_ = published
    other_home, _ = session_key
    wrong = tmp_path / "wrong.asc"
    wrong.write_bytes(export_public_key(other_home))
    apt_client.configure(url, wrong)
    update = apt_client.run("update")
    out = update.stdout + update.stderr
    assert update.returncode != 0, out
    assert "NO_PUBKEY" in out and "is not signed" in out, out


def test_failed_build_leaves_the_live_tree_byte_identical(published, apt_client):
    url, repo_root, pool_root, _requests, home = published
    live_before = os.readlink(repo_root)
    files_before = _tree_bytes(repo_root)
    http_before = {rel: _fetch(f"{url}/{rel}") for rel in files_before if rel.startswith("dists/")}

    def broken(tmp: Path) -> None:
        infos = _ingest(pool_root, SL)
        build_suite(tmp, "uus-local", "main", ["amd64"], infos, Signer(home), 7)
        raise RuntimeError("disk full, say")

    with pytest.raises(RuntimeError, match="disk full"):
        publish_tree(repo_root, broken)
    assert os.readlink(repo_root) == live_before
    assert _tree_bytes(repo_root) == files_before
    assert {rel: _fetch(f"{url}/{rel}") for rel in http_before} == http_before
    leftovers = [n for n in os.listdir(repo_root.parent) if n.startswith(".build-")]
    assert leftovers == []
    apt_client.configure(url, repo_root.parent / "key.asc")
    assert apt_client.run("update").returncode == 0


def test_key_rotation_keeps_old_and_new_clients_working(published, apt_client, tmp_path):
    url, repo_root, pool_root, _requests, home = published
    old_key = tmp_path / "old.asc"
    old_key.write_bytes((repo_root.parent / "key.asc").read_bytes())
    old_fpr = signing_key_ensure(home, "x", "x@example.org")
    new_fpr = signing_key_rotate(home, "UUS Test Repository", "repo@uus.example")
    infos = _ingest(pool_root, COWSAY, HELLO, SL)
    _publish(repo_root, home, infos)
    both_key = repo_root.parent / "key.asc"
    assert b"PUBLIC KEY" in both_key.read_bytes()

    apt_client.configure(url, old_key)
    r = apt_client.run("update")
    assert r.returncode == 0, r.stdout + r.stderr  # a machine that only knows the old key
    new_client = type(apt_client)(tmp_path / "apt2")
    new_client.configure(url, both_key)
    r = new_client.run("update")
    assert r.returncode == 0, r.stdout + r.stderr

    signing_key_retire(home, old_fpr)
    _publish(repo_root, home, infos)
    # overlap is over: the old-key machine now refuses the repository (it keeps its old lists
    # and warns; --error-on=any turns that into a failure)
    r = apt_client.run("update", "--error-on=any")
    assert r.returncode != 0 and "NO_PUBKEY" in r.stdout + r.stderr, r.stdout + r.stderr
    r = new_client.run("update")
    assert r.returncode == 0, r.stdout + r.stderr
    assert new_fpr


# --------------------------------------------------------------------------- publish mechanics


def test_generations_are_pruned_and_by_hash_carried_over(published):
    url, repo_root, pool_root, _requests, home = published
    first = os.readlink(repo_root)
    first_release = (repo_root / "dists" / "uus-local" / "Release").read_text()
    old_xz_hash = next(
        ln.split()[0]
        for ln in first_release.split("SHA256:")[1].splitlines()
        if ln.endswith("binary-amd64/Packages.xz")
    )
    infos = _ingest(pool_root, COWSAY, HELLO, SL)
    _publish(repo_root, home, infos)
    _publish(repo_root, home, infos[:1])
    gens = generations(repo_root)
    assert len(gens) == 2  # the live one and the previous one
    assert gens[-1].name == os.readlink(repo_root)
    assert first not in [g.name for g in gens]
    # a client holding the first InRelease can still fetch the index it names, by hash
    body = _fetch(f"{url}/dists/uus-local/main/binary-amd64/by-hash/SHA256/{old_xz_hash}")
    assert b"Package: cowsay" in lzma.decompress(body)


def test_arch_all_is_listed_under_every_architecture(tmp_path):
    infos = [inspect_deb(d, LIMIT) for d in (COWSAY, HELLO)]
    result = build_suite(tmp_path, "uus-local", "main", ["amd64", "arm64"], infos, None, None)
    assert result["counts"] == {"amd64": 2, "arm64": 1}
    arm = (tmp_path / "dists/uus-local/main/binary-arm64/Packages").read_text()
    assert "Package: cowsay" in arm and "Package: hello" not in arm
    release = (tmp_path / "dists/uus-local/Release").read_text()
    assert "Architectures: amd64 arm64\n" in release and "Valid-Until" not in release
    assert not (tmp_path / "dists/uus-local/InRelease").exists()  # no signer given


def test_filename_and_pool_map(tmp_path):
    infos = [inspect_deb(d, LIMIT) for d in (HELLO, SL)]
    build_suite(tmp_path, "uus-local", "main", ["amd64"], infos, None, None)
    packages = (tmp_path / "dists/uus-local/main/binary-amd64/Packages").read_text()
    assert "Filename: pool/main/s/sl/sl_5.02-1+b1_amd64.deb\n" in packages
    pool_map = (tmp_path / ".uus/pool-map-uus-local.tsv").read_text().splitlines()
    assert f"pool/main/h/hello/hello_2.10-3_amd64.deb\t{infos[0].sha256}\t53080" in pool_map


def test_conflicting_duplicates_are_refused(tmp_path):
    info = inspect_deb(HELLO, LIMIT)
    fields = info.index_fields(pool_path_for("hello", "2.10-3", "amd64"))
    other = {**fields, "SHA256": "0" * 64}
    with pytest.raises(InvalidIndexData, match=r"two different files claim to be hello 2\.10-3"):
        build_suite(tmp_path, "uus-local", "main", ["amd64"], [fields, other], None, None)


def test_resolve_pool_path_only_serves_what_a_generation_names(tmp_path):
    repo_root = tmp_path / "repos" / "ring1"
    pool = tmp_path / "pool"
    hello, sl = _ingest(pool, HELLO, SL)
    publish_tree(repo_root, lambda t: build_suite(t, "uus-local", "main", ["amd64"], [hello], None, None))
    hello_path = "pool/main/h/hello/hello_2.10-3_amd64.deb"
    sl_path = "pool/main/s/sl/sl_5.02-1+b1_amd64.deb"
    assert resolve_pool_path(repo_root, hello_path, pool).read_bytes() == HELLO.read_bytes()
    assert resolve_pool_path(repo_root, sl_path, pool) is None  # stored, but not in this ring
    assert resolve_pool_path(repo_root, "pool/../../etc/passwd", pool) is None
    assert resolve_pool_path(repo_root, "dists/uus-local/Release", pool) is None
    publish_tree(repo_root, lambda t: build_suite(t, "uus-local", "main", ["amd64"], [sl], None, None))
    # hello left the ring, but the previous generation still names it for clients in flight
    assert resolve_pool_path(repo_root, hello_path, pool) is not None
    assert resolve_pool_path(repo_root, sl_path, pool) is not None


def test_publishes_of_one_repository_never_interleave(tmp_path):
    repo_root = tmp_path / "repos" / "ring1"
    spans: list[tuple[float, float]] = []

    def slow(tmp: Path) -> None:
        start = time.monotonic()
        (tmp / "dists").mkdir()
        time.sleep(0.3)
        spans.append((start, time.monotonic()))

    threads = [threading.Thread(target=publish_tree, args=(repo_root, slow)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans.sort()
    assert len(spans) == 3
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end
    assert len(generations(repo_root)) == 2


def test_lock_is_held_across_processes(tmp_path):
    """Another process publishing the same repository makes a bounded wait fail fast."""
    repo_root = tmp_path / "repos" / "ring1"
    ready = tmp_path / "ready"
    code = (
        "import sys, time, pathlib\n"
        "from uus.repos.publish import publish_tree\n"
        "def build(tmp):\n"
        f"    pathlib.Path({str(ready)!r}).touch()\n"
        "    time.sleep(1.5)\n"
        f"publish_tree(pathlib.Path({str(repo_root)!r}), build)\n"
    )
    server_dir = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(server_dir)})
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        with pytest.raises(PublishBusy, match="another publish of ring1 is running"):
            publish_tree(repo_root, lambda t: None, lock_timeout=0.2)
        publish_tree(repo_root, lambda t: (t / "dists").mkdir(), lock_timeout=20)  # waits
    finally:
        assert proc.wait(timeout=20) == 0
    assert len(generations(repo_root)) == 2


def test_a_plain_directory_is_moved_aside_once(tmp_path):
    repo_root = tmp_path / "repos" / "ring1"
    (repo_root / "dists").mkdir(parents=True)
    (repo_root / "dists" / "old").write_text("legacy")
    publish_tree(repo_root, lambda t: (t / "dists").mkdir())
    assert repo_root.is_symlink()
    assert len(generations(repo_root)) == 2
    assert (generations(repo_root)[0] / "dists" / "old").read_text() == "legacy"  # kept as previous
    publish_tree(repo_root, lambda t: (t / "dists").mkdir())
    gens = generations(repo_root)
    assert len(gens) == 2 and not (gens[0] / "dists" / "old").exists()  # now pruned


def test_republish_within_one_second_still_looks_modified(tmp_path):
    """HTTP Last-Modified has whole seconds: a fast republish must not be answered 304."""
    repo_root = tmp_path / "repos" / "ring1"
    infos = [inspect_deb(d, LIMIT) for d in (COWSAY, HELLO)]

    def build(items):
        return lambda t: build_suite(t, "uus-local", "main", ["amd64"], items, None, 7, previous_root=repo_root)

    publish_tree(repo_root, build(infos))
    before = int((repo_root / "dists/uus-local/Release").stat().st_mtime)
    publish_tree(repo_root, build(infos[:1]))
    after = int((repo_root / "dists/uus-local/Release").stat().st_mtime)
    assert after > before
