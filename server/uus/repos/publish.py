"""Atomic publishing of an APT repository tree, and building one suite inside it.

Why generations and a symlink: apt reads ``InRelease`` and then the indexes it names in separate
requests. Rewriting files in place would let a client see a new ``Release`` with old ``Packages``
(or half of a new one). Instead every publish builds a complete tree beside the live one and
switches ``repo_root`` -- a symlink -- to it with one ``os.replace``, which is atomic on POSIX:
a reader resolves either the old tree or the new tree, never a mix.

On disk, for ``repo_root = <repos>/production``::

    <repos>/production -> .gen-production-20261125T101500.123456-x1y2z3   (the live tree)
    <repos>/.gen-production-20261125T101500.123456-x1y2z3/dists/...        (current generation)
    <repos>/.gen-production-20261124T090000.000000-a9b8c7/dists/...        (previous, kept)
    <repos>/.lock-production                                                 (flock)

The previous generation is kept for readers in flight; older ones are removed. ``by-hash`` files
of the previous generation are carried into the new one (:func:`carry_over_by_hash`), so a client
holding the old ``InRelease`` still gets the indexes it names, as Debian's archive does.

**Pool files are not part of a generation.** ``Filename:`` fields point at
``pool/main/h/hello/hello_2.10-3_amd64.deb``; the bytes live once in the content-addressed pool
(``pool.py``). Each suite build writes ``.uus/pool-map-<suite>.tsv`` (Filename, SHA-256, size) into
the generation, and the web server answers ``GET /repo/<ring>/pool/<path>`` with
:func:`resolve_pool_path`: look the path up in the live generation's maps (then in the previous
generation's, for clients in flight), and send ``<pool>/by-sha256/ab/cdef...``. Only files a
ring's indexes name are reachable through that ring, and nothing is copied per ring. A path that
is in a map but not yet in the pool is a pull-through cache miss for the caller to fetch.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from uus.core.exceptions import Conflict, UusError

from .debfile import DebInfo, valid_architecture
from .indexes import FileHashes, InvalidIndexData, Stanza, add_by_hash, write_packages, write_release
from .pool import pool_file, pool_path_for

__all__ = [
    "PublishBusy",
    "PublishError",
    "build_suite",
    "carry_over_by_hash",
    "generations",
    "load_pool_map",
    "publish_tree",
    "resolve_pool_path",
    "write_atomic",
]

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SUITE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_COMPONENT_RE = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
POOL_MAP_DIR = ".uus"
BY_HASH_MAX_AGE = timedelta(days=1)


class PublishError(UusError):
    code = "publish_error"
    status = 500


class PublishBusy(Conflict):
    code = "publish_busy"


# --------------------------------------------------------------------------- helpers


def _gen_re(name: str) -> re.Pattern:
    return re.compile(rf"^\.gen-{re.escape(name)}-\d{{8}}T\d{{6}}\.\d{{6}}-[a-z0-9]{{8}}$")


def _build_re(name: str) -> re.Pattern:
    return re.compile(rf"^\.build-{re.escape(name)}-[a-z0-9_]{{8}}$")  # mkdtemp's alphabet


def _fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """A generation is a handful of files (indexes, not packages): make them durable before the
    switch, so a crash never leaves the symlink pointing at empty files."""
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath, f)
            if not p.is_symlink():
                _fsync_path(p)
        _fsync_path(Path(dirpath), directory=True)


def write_atomic(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> None:
    """Replace a single file atomically (e.g. ``key.asc``): temp file, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_path(path.parent, directory=True)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _locked(lock_path: Path, timeout: float | None) -> Iterator[None]:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise PublishBusy(f"another publish of {lock_path.name[6:]} is running") from None
                    time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def generations(repo_root: str | os.PathLike) -> list[Path]:
    """This repository's generation directories, oldest first."""
    repo_root = Path(repo_root)
    pattern = _gen_re(repo_root.name)
    try:
        names = sorted(n for n in os.listdir(repo_root.parent) if pattern.fullmatch(n))
    except FileNotFoundError:
        return []
    return [repo_root.parent / n for n in names]


def _switch(repo_root: Path, target_name: str) -> None:
    parent = repo_root.parent
    if repo_root.exists() and not repo_root.is_symlink():
        # A plain directory from before generations existed: move it aside once. This is the
        # only non-atomic moment, and it happens at most once per repository.
        legacy = _new_generation_name(repo_root.name, "19700101T000000.000000")  # oldest
        os.rename(repo_root, parent / legacy)
        log.warning("moved the plain directory %s aside to %s", repo_root, legacy)
    link = parent / f".link-{repo_root.name}-{secrets.token_hex(4)}"
    os.symlink(target_name, link)  # relative: the data directory can move as a whole
    try:
        os.replace(link, repo_root)
    except BaseException:
        link.unlink(missing_ok=True)
        raise
    _fsync_path(parent, directory=True)


def _new_generation_name(name: str, stamp: str | None = None) -> str:
    stamp = stamp or datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
    suffix = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(8))
    return f".gen-{name}-{stamp}-{suffix}"


def _current_target(repo_root: Path) -> str | None:
    try:
        return os.readlink(repo_root)
    except (FileNotFoundError, OSError):
        return None


# --------------------------------------------------------------------------- publish_tree


def publish_tree(
    repo_root: str | os.PathLike,
    build: Callable[[Path], None],
    *,
    keep: int = 1,
    lock_timeout: float | None = None,
) -> Path:
    """Build a new generation with ``build(tmpdir)`` and make it live in one atomic step.

    ``build`` fills an empty directory (``dists/...``); while it runs, ``repo_root`` still serves
    the previous generation, which ``build`` may read (e.g. ``previous_root=repo_root``). On any
    exception the temporary directory is removed and the live tree is untouched. Publishes of
    one repository are serialised by ``flock`` on ``<parent>/.lock-<name>`` (across processes);
    with ``lock_timeout`` a busy lock raises :class:`PublishBusy` instead of waiting.
    ``keep`` older generations stay for readers in flight. Returns the new generation directory.
    """
    repo_root = Path(repo_root)
    name = repo_root.name
    if not _NAME_RE.fullmatch(name):
        raise PublishError(f"invalid repository name {name!r}")
    parent = repo_root.parent
    parent.mkdir(parents=True, exist_ok=True)
    with _locked(parent / f".lock-{name}", lock_timeout):
        stale = _build_re(name)
        for leftover in os.listdir(parent):  # from a process killed mid-build; we hold the lock
            if stale.fullmatch(leftover):
                shutil.rmtree(parent / leftover, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".build-{name}-", dir=parent))
        try:
            os.chmod(tmp, 0o755)
            build(tmp)
            _fsync_tree(tmp)
            generation = parent / _new_generation_name(name)
            os.rename(tmp, generation)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        previous = _current_target(repo_root)
        _switch(repo_root, generation.name)
        live = generation.name
        # keep the generation that was live until now, then the newest others, up to `keep`
        older = [g for g in generations(repo_root) if g.name not in (live, previous)]
        kept = {previous} if previous and keep > 0 else set()
        kept.update(g.name for g in older[::-1][: max(0, keep - len(kept))])
        for old in generations(repo_root):
            if old.name != live and old.name not in kept:
                shutil.rmtree(old, ignore_errors=True)
    log.info("published %s -> %s", repo_root, live)
    return generation


# --------------------------------------------------------------------------- build_suite


def carry_over_by_hash(previous_dir: Path, new_dir: Path, *, max_age: timedelta = BY_HASH_MAX_AGE) -> int:
    """Hard-link the previous generation's ``by-hash/SHA256`` files into ``new_dir``.

    Kept: the previous generation's own indexes (clients that just read its InRelease need
    them) and older carried-over files younger than ``max_age``. Returns how many were linked.
    """
    src = previous_dir / "by-hash" / "SHA256"
    if not src.is_dir():
        return 0
    dst = new_dir / "by-hash" / "SHA256"
    dst.mkdir(parents=True, exist_ok=True)
    current_inodes = set()
    for name in ("Packages", "Packages.gz", "Packages.xz"):
        with contextlib.suppress(OSError):
            st = (previous_dir / name).stat()
            current_inodes.add((st.st_dev, st.st_ino))
    cutoff = time.time() - max_age.total_seconds()
    linked = 0
    for entry in os.scandir(src):
        st = entry.stat()
        if (st.st_dev, st.st_ino) not in current_inodes and st.st_mtime < cutoff:
            continue
        target = dst / entry.name
        if target.exists():
            continue
        try:
            os.link(entry.path, target)
        except OSError:
            shutil.copy2(entry.path, target)
        linked += 1
    return linked


def _bump_mtimes(new_dir: Path, prev_dir: Path, rels: Iterable[str]) -> None:
    """Give changed files an mtime in a later whole second than their predecessors.

    HTTP ``Last-Modified`` has one-second granularity: a publish within the same second as the
    one a client last fetched would otherwise be answered ``304 Not Modified`` and missed.
    """
    for rel in rels:
        new, prev = new_dir / rel, prev_dir / rel
        try:
            st_new, st_prev = new.stat(), prev.stat()
        except FileNotFoundError:
            continue
        if (st_new.st_dev, st_new.st_ino) == (st_prev.st_dev, st_prev.st_ino):
            continue  # reused (hard-linked) unchanged file
        floor_prev = int(st_prev.st_mtime)
        if int(st_new.st_mtime) <= floor_prev:
            stamp = floor_prev + 1
            os.utime(new, (stamp, stamp))


def _as_fields(pkg: DebInfo | Mapping[str, str], component: str, pool_url_prefix: str) -> Mapping[str, str]:
    if isinstance(pkg, DebInfo):
        filename = pool_path_for(
            pkg.package,
            pkg.version,
            pkg.architecture,
            pkg.source,
            component=component,
            prefix=pool_url_prefix,
        )
        return pkg.index_fields(filename)
    for required in ("Package", "Version", "Architecture", "Size", "SHA256"):
        if not pkg.get(required):
            raise InvalidIndexData(f"package entry lacks {required}: {pkg.get('Package', '?')}")
    if isinstance(pkg, Stanza) and pkg.get("Filename"):
        return pkg  # written out already; copying it would lose its text
    fields = dict(pkg)
    if not fields.get("Filename"):
        source = (fields.get("Source") or fields["Package"]).split(" ", 1)[0]
        fields["Filename"] = pool_path_for(
            fields["Package"],
            fields["Version"],
            fields["Architecture"],
            source,
            component=component,
            prefix=pool_url_prefix,
        )
    return fields


def build_suite(
    tmp_root: str | os.PathLike,
    suite: str,
    component: str | Mapping[str, Iterable[DebInfo | Mapping[str, str]]],
    arch_list: Iterable[str],
    packages: Iterable[DebInfo | Mapping[str, str]] | None,
    signer: Callable[[Path], None] | None,
    valid_days: float | None,
    pool_url_prefix: str = "pool",
    *,
    codename: str | None = None,
    origin: str = "UUS",
    label: str = "UUS",
    description: str | None = None,
    previous_root: str | os.PathLike | None = None,
    now: datetime | None = None,
    xz_preset: int | None = None,
) -> dict:
    """Write ``dists/<suite>/`` into ``tmp_root``: per architecture ``Packages{,.gz,.xz}`` with
    ``by-hash``, then ``Release``, and -- through ``signer(release_path)`` -- ``InRelease`` and
    ``Release.gpg``. Also ``.uus/pool-map-<suite>.tsv`` for the pool (see the module docstring).

    ``packages`` are :class:`DebInfo` objects or mappings of control fields plus ``Size``,
    ``MD5sum``, ``SHA1``, ``SHA256`` and optionally ``Filename`` (else computed with
    :func:`pool_path_for` under ``pool_url_prefix``). ``Architecture: all`` packages are listed
    under every architecture; packages of other architectures are left out.
    ``previous_root`` (normally the live ``repo_root``) lets unchanged indexes reuse their
    compressed files and carries ``by-hash`` files over. ``valid_days`` None omits Valid-Until;
    otherwise the suite must be re-published (re-signed) before it expires.
    ``component`` may also be a mapping ``{component: packages}`` (then ``packages`` is None) for
    a suite with several components, such as Ubuntu's main and universe.
    Returns ``{"files": {relpath: FileHashes}, "counts": {arch: n}, "skipped": n}``.
    """
    tmp_root = Path(tmp_root)
    arch_list = list(dict.fromkeys(arch_list))
    by_component = dict(component) if isinstance(component, Mapping) else {component: packages or ()}
    if not _SUITE_RE.fullmatch(suite):
        raise PublishError(f"invalid suite name {suite!r}")
    if not by_component:
        raise PublishError("a suite needs at least one component")
    for name in by_component:
        if not _COMPONENT_RE.fullmatch(name):
            raise PublishError(f"invalid component name {name!r}")
    if not arch_list:
        raise PublishError("a suite needs at least one architecture")
    for arch in arch_list:
        if arch == "all" or not valid_architecture(arch):
            raise PublishError(f"invalid architecture for a suite: {arch!r}")
    now = now or datetime.now(UTC)

    skipped = 0
    ordered_by_component: dict[str, list[dict[str, str]]] = {}
    for comp, comp_packages in by_component.items():
        by_key: dict[tuple[str, str, str], dict[str, str]] = {}
        for pkg in comp_packages:
            fields = _as_fields(pkg, comp, pool_url_prefix)
            arch = fields["Architecture"]
            if arch != "all" and arch not in arch_list:
                skipped += 1
                continue
            key = (fields["Package"], fields["Version"], arch)
            seen = by_key.get(key)
            if seen is not None:
                if seen["SHA256"] != fields["SHA256"]:
                    raise InvalidIndexData(f"two different files claim to be {key[0]} {key[1]} {key[2]}")
                continue
            by_key[key] = fields
        ordered_by_component[comp] = [by_key[k] for k in sorted(by_key, key=lambda k: (k[0], k[2]))]

    suite_dir = tmp_root / "dists" / suite
    prev_suite = Path(previous_root) / "dists" / suite if previous_root else None
    files: dict[str, FileHashes] = {}
    counts: dict[str, int] = dict.fromkeys(arch_list, 0)
    for comp, arch in ((c, a) for c in ordered_by_component for a in arch_list):
        ordered = ordered_by_component[comp]
        rel_dir = f"{comp}/binary-{arch}"
        out_dir = suite_dir / rel_dir
        prev_dir = prev_suite / rel_dir if prev_suite else None
        selected = [f for f in ordered if f["Architecture"] in (arch, "all")]
        counts[arch] += len(selected)
        hashes = write_packages(
            out_dir,
            selected,
            xz_preset=xz_preset,
            previous_dir=prev_dir if prev_dir and prev_dir.is_dir() else None,
        )
        add_by_hash(out_dir, hashes)
        if prev_dir and prev_dir.is_dir():
            carry_over_by_hash(prev_dir, out_dir)
        for name, fh in hashes.items():
            files[f"{rel_dir}/{name}"] = fh

    release = suite_dir / "Release"
    write_release(
        release,
        suite=suite,
        codename=codename or suite,
        architectures=arch_list,
        components=list(ordered_by_component),
        files=files,
        date=now,
        valid_until=now + timedelta(days=valid_days) if valid_days else None,
        origin=origin,
        label=label,
        description=description,
    )
    if signer is not None:
        signer(release)
    if prev_suite is not None:
        _bump_mtimes(suite_dir, prev_suite, ["Release", "InRelease", "Release.gpg", *files])

    map_dir = tmp_root / POOL_MAP_DIR
    map_dir.mkdir(exist_ok=True)
    with open(map_dir / f"pool-map-{suite}.tsv", "w", encoding="utf-8") as f:
        seen_files: dict[str, str] = {}
        for fields in (f for ordered in ordered_by_component.values() for f in ordered):
            filename = fields["Filename"]
            if seen_files.get(filename, fields["SHA256"]) != fields["SHA256"]:
                raise InvalidIndexData(f"two different files would be served as {filename}")
            if filename in seen_files:
                continue
            seen_files[filename] = fields["SHA256"]
            f.write(f"{filename}\t{fields['SHA256']}\t{fields['Size']}\n")
    return {"files": files, "counts": counts, "skipped": skipped}


# --------------------------------------------------------------------------- serving the pool

_map_cache: dict[tuple[str, float], dict[str, tuple[str, int]]] = {}


def load_pool_map(generation: str | os.PathLike) -> dict[str, tuple[str, int]]:
    """``{"pool/main/h/hello/...deb": (sha256, size)}`` for every suite of a generation.

    Cached per generation directory (generations never change after they are published).
    """
    generation = Path(generation)
    map_dir = generation / POOL_MAP_DIR
    try:
        stamp = map_dir.stat().st_mtime
    except FileNotFoundError:
        return {}
    key = (str(generation.resolve()), stamp)
    cached = _map_cache.get(key)
    if cached is not None:
        return cached
    result: dict[str, tuple[str, int]] = {}
    for tsv in sorted(map_dir.glob("pool-map-*.tsv")):
        with open(tsv, encoding="utf-8") as f:
            for line in f:
                filename, sha256, size = line.rstrip("\n").split("\t")
                result[filename] = (sha256, int(size))
    if len(_map_cache) > 16:
        _map_cache.clear()
    _map_cache[key] = result
    return result


def resolve_pool_path(repo_root: str | os.PathLike, rel_path: str, pool_root: str | os.PathLike) -> Path | None:
    """The stored file to send for ``GET <repo>/<rel_path>`` (``rel_path`` = ``pool/...``).

    Looks in the live generation first, then in older generations still on disk (clients in
    flight). Returns None when no generation names the path, or when the pool does not hold the
    file (a pull-through cache miss, the caller's business).
    """
    repo_root = Path(repo_root)
    rel_path = rel_path.lstrip("/")
    if not rel_path.startswith("pool/") or ".." in rel_path.split("/"):
        return None
    live = _current_target(repo_root)
    candidates = []
    if live:
        candidates.append(repo_root.parent / live)
    candidates += [g for g in reversed(generations(repo_root)) if g.name != live]
    for generation in candidates:
        try:
            entry = load_pool_map(generation).get(rel_path)
        except OSError:
            continue  # a generation being pruned right now
        if entry:
            path = pool_file(pool_root, entry[0])
            return path if path.is_file() else None
    return None
