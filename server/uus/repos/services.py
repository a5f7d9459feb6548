"""Repositories: the signing key, private uploads, publishing each ring's tree, the pool and its cache.

On disk, in the data directory:

* ``gnupg/``: the signing key's GNUPGHOME (0700, files 0600), made at first use;
* ``repos/<ring>`` -> ``repos/.gen-<ring>-...``: each ring's live generation (publish.py), and
  ``repos/key.asc``, the public key(s);
* ``pool/by-sha256/ab/cdef...``: every package file once (uploads and the pull-through cache);
* ``upstream-indexes/``: the upstream Packages files whose stanzas (Depends, Description...) the
  published indexes repeat; the catalog keeps only what it matches on.

Upstream packages are listed under ``pool/up/<upstream>/<upstream Filename>`` and uploads under
``pool/local/main/...``, so no two files can claim one path. A pool request for a file the pool does
not hold yet is fetched from the upstream once (:func:`pool_fetch`), checked against the catalog's
SHA-256 and size, stored, then served.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import multiprocessing
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from uus.approvals import selectors as approvals
from uus.approvals.models import Ring
from uus.catalog.models import ArchivePackage, UpstreamIndex
from uus.core.exceptions import Conflict, NotFound, UusError

from . import signing
from .debfile import INDEX_ONLY_FIELDS, DebInfo, InvalidPackage, SecondOpinion
from .indexes import FIELD_ORDER, Stanza
from .models import CacheCounter, CachedFile, PrivatePackage, RingRepository
from .pool import pool_file, pool_path_for, pool_place, stage_checked, sync_files
from .publish import (
    POOL_MAP_DIR,
    _current_target,
    build_suite,
    generations,
    load_pool_map,
    publish_tree,
    write_atomic,
)

log = logging.getLogger(__name__)

LOCAL_SUITE = "uus-local"
LOCAL_COMPONENT = "main"
LOCAL_POOL_PREFIX = "pool/local"
UPSTREAM_POOL_PREFIX = "pool/up"
DEFAULT_ARCHITECTURES = ("amd64",)
KEYRING_PATH = "/etc/apt/keyrings/uus.gpg"
FETCH_TIMEOUT = 120


class UpstreamFetchFailed(UusError):
    code = "upstream_fetch_failed"
    status = 502


# --------------------------------------------------------------------------- places


def data_dir() -> Path:
    return Path(settings.DATA_DIR)


def repos_root() -> Path:
    return data_dir() / "repos"


def pool_root() -> Path:
    return data_dir() / "pool"


def ring_root(ring_name: str) -> Path:
    return repos_root() / ring_name


def key_asc_path() -> Path:
    return repos_root() / "key.asc"


def gnupg_home() -> Path:
    """The signing key's GNUPGHOME. gpg-agent puts its socket in it when /run/user/<uid> does not
    exist, and socket paths are limited to ~108 bytes: a long data directory is reached through a
    short symlink in the temp directory."""
    home = data_dir() / "gnupg"
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if len(str(home)) <= 70:
        return home
    alias = Path(tempfile.gettempdir()) / f"uus-gpg-{hashlib.sha256(str(home).encode()).hexdigest()[:12]}"
    if not alias.is_symlink() or os.readlink(alias) != str(home):
        tmp = alias.with_name(alias.name + f".{os.getpid()}")
        tmp.unlink(missing_ok=True)
        os.symlink(home, tmp)
        os.replace(tmp, alias)
    return alias


# --------------------------------------------------------------------------- signing key

_key_lock = threading.Lock()


def signing_key_current() -> str:
    """The fingerprint of the key that signs, generating it at first use (mode 0600, never logged)."""
    with _key_lock:
        fpr = signing.signing_key_ensure(gnupg_home(), "UUS repository signing key", f"uus@{socket.getfqdn()}")
        if not key_asc_path().exists():
            write_atomic(key_asc_path(), signing.export_public_key(gnupg_home()))
        return fpr


def signing_key_info() -> dict:
    current = signing_key_current()
    state = signing.signing_keys(gnupg_home())
    return {"fingerprint": current, "overlap": list(state.get("overlap", [])), "key_url": "/repo/key.asc"}


def signing_key_rotate() -> dict:
    """A new key signs from now on; the old one stays in key.asc and co-signs until retired."""
    signing_key_current()
    with _key_lock:
        signing.signing_key_rotate(gnupg_home(), "UUS repository signing key", f"uus@{socket.getfqdn()}")
        write_atomic(key_asc_path(), signing.export_public_key(gnupg_home()))
    repos_publish_soon()
    return signing_key_info()


def _signing_keys_change(change: Callable[[str], None]) -> dict:
    """Apply a refusable change to the keyring (a SigningError is the admin's to fix), publish the
    public keys that result, and re-sign every ring."""
    with _key_lock:
        try:
            change(gnupg_home())
        except signing.SigningError as exc:
            raise UusError(exc.message, code="invalid") from None
        write_atomic(key_asc_path(), signing.export_public_key(gnupg_home()))
    repos_publish_soon()
    return signing_key_info()


def signing_key_retire(fingerprint: str) -> dict:
    return _signing_keys_change(lambda home: signing.signing_key_retire(home, fingerprint))


def signing_key_import(armored_secret_key: bytes) -> dict:
    """Sign with an organisation's own key from now on (an armored secret key without passphrase,
    tried before it is kept); the previous key stays published and co-signing, as after a rotation.
    The key material goes to gpg on stdin, never to a log or a command line."""
    signing_key_current()
    return _signing_keys_change(lambda home: signing.signing_key_import(home, armored_secret_key))


def public_key_armored() -> bytes:
    signing_key_current()
    return key_asc_path().read_bytes()


# --------------------------------------------------------------------------- private packages


def _private_package(info, filename: str, uploaded_by: str) -> PrivatePackage:
    """The row for a validated upload (``info`` from debfile.inspect_deb), not yet saved."""
    return PrivatePackage(
        name=info.package,
        version=info.version,
        architecture=info.architecture,
        source=info.source,
        source_version=info.source_version,
        maintainer=info.maintainer[:500],
        description=info.description[:500],
        section=info.section,
        size=info.size,
        sha256=info.sha256,
        md5=info.md5,
        sha1=info.sha1,
        fields=info.fields,
        filename=filename,
        uploaded_by_name=uploaded_by,
    )


def package_upload(*, path: str | os.PathLike, user=None, publish: bool = True) -> tuple[PrivatePackage, bool]:
    """Validate a `.deb` as dpkg would, store it in the pool and record it. Returns (row, created).

    The same file again returns the existing row; another file under the same name, version and
    architecture is refused. A refused upload leaves nothing behind. A batch of one of
    :func:`packages_upload_many`, so one file and many are checked alike.
    """
    (outcome,) = packages_upload_many(paths=[path], user=user, publish=publish)
    if outcome.exception is not None:
        raise outcome.exception
    return outcome.package, outcome.created


@dataclass
class UploadOutcome:
    path: str
    package: PrivatePackage | None = None
    created: bool = False
    error: str = ""  # why the file was refused (the message of `exception`)
    exception: UusError | None = None

    def refuse(self, exc: UusError) -> None:
        self.error, self.exception = exc.message, exc


INCOMING_DIR = ".incoming"
PARALLEL_MIN_FILES = 64  # below this, checking in this process costs less than starting workers
_checkers: ProcessPoolExecutor | None = None
_checkers_lock = threading.Lock()


def _checked(jobs: list[tuple[str, str, int, bool]]) -> list[tuple[DebInfo | None, UusError | None]]:
    """pool.stage_checked for every job: in worker processes for a large batch (our parser is
    Python, ~0.1 ms a small package: one core is the limit otherwise), here for a small one.

    The workers come from a fork server (started once per process, importing only debfile and
    pool: no Django, no database, no threads of the web server in them), and are kept."""
    global _checkers
    workers = min(os.cpu_count() or 1, 4)
    if len(jobs) < PARALLEL_MIN_FILES or workers < 2:
        return [stage_checked(job) for job in jobs]
    with _checkers_lock:
        if _checkers is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["uus.repos.pool"])
            _checkers = ProcessPoolExecutor(workers, mp_context=context)
        checkers = _checkers
    try:
        return list(checkers.map(stage_checked, jobs, chunksize=max(1, len(jobs) // (workers * 8))))
    except BrokenProcessPool:  # a worker died (killed, out of memory): check here instead
        with _checkers_lock:
            _checkers = None
        for _path, staged, _max, _link in jobs:
            Path(staged).unlink(missing_ok=True)
        return [stage_checked(job) for job in jobs]


_NAME_CHUNK = 500  # names per IN (...) query, well under SQLite's parameter limit


def _staging_dir() -> Path:
    """A fresh directory for one batch, inside the pool (placing a file is then a rename). Batches
    a killed process left behind are removed here once they are a day old."""
    incoming = pool_root() / INCOMING_DIR
    incoming.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(incoming):
        with contextlib.suppress(OSError):
            if time.time() - entry.stat(follow_symlinks=False).st_mtime > 86400:
                shutil.rmtree(entry.path, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix="batch-", dir=incoming))


def _rows_named(names: set[str]) -> dict[tuple[str, str, str], PrivatePackage]:
    found = {}
    names_list = sorted(names)
    for at in range(0, len(names_list), _NAME_CHUNK):
        for row in PrivatePackage.objects.filter(name__in=names_list[at : at + _NAME_CHUNK]).defer("fields"):
            found[(row.name, row.version, row.architecture)] = row
    return found


def _other_content(info: DebInfo, existing_sha256: str, *, just: bool = False) -> Conflict:
    return Conflict(
        f"{info.package} {info.version} ({info.architecture}) was {'just ' if just else 'already '}uploaded with "
        f"other content (SHA-256 {existing_sha256[:16]}...); give the new build a new version",
        details={"existing_sha256": existing_sha256, "sha256": info.sha256},
    )


def _rows_insert(rows: list[PrivatePackage]) -> None:
    """Insert new rows with one executemany: bulk_create prepares every value of every row
    through its field (about 1 s for 5,000 uploads, most of adding them)."""
    now = timezone.now()
    stamp = connection.ops.adapt_datetimefield_value(now)
    json_field = PrivatePackage._meta.get_field("fields")
    columns = (
        "created", "updated", "name", "version", "architecture", "source", "source_version", "maintainer",
        "description", "section", "size", "sha256", "md5", "sha1", "fields", "filename", "uploaded_by_name",
    )  # fmt: skip
    q = connection.ops.quote_name
    sql = (
        f"INSERT INTO {q(PrivatePackage._meta.db_table)} ({', '.join(map(q, columns))}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )
    values = []
    for r in rows:
        r.created = r.updated = now
        values.append(
            (stamp, stamp, r.name, r.version, r.architecture, r.source, r.source_version, r.maintainer,
             r.description, r.section, r.size, r.sha256, r.md5, r.sha1,
             json_field.get_db_prep_save(r.fields, connection), r.filename, r.uploaded_by_name)
        )  # fmt: skip
    with connection.cursor() as cur:
        cur.executemany(sql, values)
    ids = {}
    names = sorted({r.name for r in rows})
    for at in range(0, len(names), _NAME_CHUNK):
        for pk, name, version, arch in PrivatePackage.objects.filter(name__in=names[at : at + _NAME_CHUNK]).values_list(
            "pk", "name", "version", "architecture"
        ):
            ids[(name, version, arch)] = pk
    for r in rows:
        r.pk = ids[(r.name, r.version, r.architecture)]
        r._state.adding, r._state.db = False, connection.alias


def packages_upload_many(*, paths: list, user=None, publish: bool = True, move: bool = False) -> list[UploadOutcome]:
    """Upload many files, each checked as dpkg would; refused ones are reported and stored nowhere,
    the rest are recorded in one transaction with one publish queued.

    Costs what a bulk upload must: each file is read once and checked in memory by our parser (in
    worker processes for a large batch) while apt-ftparchive reads the batch; dpkg parses every
    control paragraph in one run; the checked bytes go to a staging directory in the pool and are
    renamed into place; one sync; one INSERT for all rows. Nothing is placed before every check has
    passed, and no row names a file before it is durable.

    ``move=True``: the files are handed over (an incoming directory): hard-linked into the pool
    where they can be, and removed from where they were once stored (refused ones stay).
    """
    max_bytes = settings.UUS["upload_max_mb"] * 1024 * 1024
    outcomes = [UploadOutcome(path=str(p)) for p in paths]
    staging = _staging_dir()
    try:
        infos: list[DebInfo | None] = [None] * len(outcomes)
        staged: list[str | None] = [None] * len(outcomes)
        opinion = SecondOpinion(paths, workdir=staging)
        try:
            jobs = [(o.path, str(staging / f"{i}.deb"), max_bytes, move) for i, o in enumerate(outcomes)]
            for i, (info, exc) in enumerate(_checked(jobs)):
                if exc is not None:
                    outcomes[i].refuse(exc)
                else:
                    infos[i], staged[i] = info, jobs[i][1]
            reasons = opinion.finish(infos)
        finally:
            opinion.close()
        for i, reason in enumerate(reasons):
            if reason:
                outcomes[i].refuse(InvalidPackage(reason))
                infos[i] = None

        existing = _rows_named({info.package for info in infos if info})
        username = getattr(user, "username", "") or ""
        new: dict[tuple[str, str, str], PrivatePackage] = {}
        placed: list[str] = []
        root = str(pool_root())
        for i, info in enumerate(infos):
            if info is None:
                continue
            o, key = outcomes[i], (info.package, info.version, info.architecture)
            known = existing.get(key) or new.get(key)
            if known is not None:
                if known.sha256 != info.sha256:
                    o.refuse(_other_content(info, known.sha256))
                else:
                    o.package = known  # the same file again (or twice in this batch): the same row
                continue
            filename = pool_path_for(
                info.package, info.version, info.architecture, info.source,
                component=LOCAL_COMPONENT, prefix=LOCAL_POOL_PREFIX,
            )  # fmt: skip
            o.package, o.created = _private_package(info, filename, username), True
            new[key] = o.package
            placed.append(pool_place(root, staged[i], info.sha256))
        sync_files(placed)  # before any row names the files
        try:
            with transaction.atomic():
                if new:
                    _rows_insert(list(new.values()))
        except IntegrityError:  # another upload of one of these committed meanwhile: one at a time
            _rows_insert_raced(outcomes, new)
        if publish and any(o.created for o in outcomes):
            transaction.on_commit(repos_publish_soon)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if move:
        for o in outcomes:
            if o.package is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(o.path)
    for o in outcomes:
        if o.created:
            log.info("uploaded %s %s %s (%s)", o.package.name, o.package.version, o.package.architecture,
                     o.package.sha256)  # fmt: skip
    return outcomes


@contextlib.contextmanager
def upload_spool(files) -> Iterator[list[Path]]:
    """Spool request files (Django UploadedFile, or bytes) to disk for packages_upload_many, under
    names of our own (a client's file name is never a path here); removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="upload-", dir=data_dir()) as spool:
        paths = []
        for i, f in enumerate(files):
            path = Path(spool) / f"{i}.deb"
            with open(path, "wb") as out:
                for chunk in [f] if isinstance(f, bytes) else f.chunks():
                    out.write(chunk)
            paths.append(path)
        yield paths


def _rows_insert_raced(outcomes: list[UploadOutcome], new: dict[tuple[str, str, str], PrivatePackage]) -> None:
    for key, row in new.items():
        try:
            with transaction.atomic():
                row.save(force_insert=True)
            continue
        except IntegrityError:
            pass
        other = PrivatePackage.objects.filter(name=key[0], version=key[1], architecture=key[2]).first()
        for o in outcomes:
            if o.package is not row:
                continue
            o.created = False
            if other is not None and other.sha256 == row.sha256:
                o.package = other
            else:
                o.package = None
                o.refuse(Conflict(f"{key[0]} {key[1]} ({key[2]}) was just uploaded with other content"))


@transaction.atomic
def package_remove(*, package: PrivatePackage, publish: bool = True) -> None:
    """Forget an upload. Its pool file stays while a published generation still names it; the
    cache maintenance job removes it once nothing does."""
    package.delete()
    if publish:
        transaction.on_commit(repos_publish_soon)


_STANZA_COLUMNS = ("fields", "filename", "size", "md5", "sha1", "sha256")
_CANONICAL = {name.lower(): name for name in FIELD_ORDER}


def private_package_stanza(pkg: PrivatePackage) -> dict[str, str]:
    return _local_stanza(*(getattr(pkg, c) for c in _STANZA_COLUMNS))


def _local_stanza(fields: dict, filename: str, size: int, md5: str, sha1: str, sha256: str) -> dict[str, str]:
    """The index stanza of an upload; known fields in their usual case (dpkg reads names in any)."""
    out = {_CANONICAL.get(k.lower(), k): v for k, v in fields.items() if k.lower() not in INDEX_ONLY_FIELDS}
    out.update(Filename=filename, Size=str(size), MD5sum=md5, SHA1=sha1, SHA256=sha256)
    return out


# --------------------------------------------------------------------------- upstream stanzas


def _upstream_index_dir() -> Path:
    return data_dir() / "upstream-indexes"


def _parse_packages(text: str) -> Iterator[dict[str, str]]:
    """Paragraphs of a Packages file, fields in order, continuation lines kept."""
    for para in text.split("\n\n"):
        fields: dict[str, str] = {}
        last = None
        for line in para.split("\n"):
            if not line:
                continue
            if line[0] in " \t":
                if last is not None:
                    fields[last] += "\n" + line.rstrip()
                continue
            name, _, value = line.partition(":")
            fields[name] = value.strip()
            last = name
        if fields.get("Package"):
            yield fields


_INDEX_FIELDS = ("Version", "Architecture", "Size", "SHA256", "Filename")
_FILENAME_LINE_RE = re.compile(r"^Filename:.*$", re.M)
# lines apt-ftparchive and dak never write: blank-looking ones, and fields without a colon
_ODD_LINE_RE = re.compile(r"^[ \t]+$|^[^ \t\n][^:\n]*$", re.M)


def _field(para: str, name: str) -> str:
    at = para.find(f"\n{name}:")
    if at < 0:
        return ""
    at += len(name) + 2
    end = para.find("\n", at)
    return para[at : end if end >= 0 else len(para)].strip()


def _upstream_stanzas(text: str) -> Iterator[tuple[str | None, dict[str, str]]]:
    """(paragraph text, the fields an index needs) for each stanza of an upstream Packages file;
    the text is None when the file has lines that must be parsed and written out field by field."""
    if _ODD_LINE_RE.search(text):
        for fields in _parse_packages(text):
            yield None, fields
        return
    for para in text.split("\n\n"):
        para = para.strip("\n")
        if para.startswith("Package:"):
            fields = {name: _field(para, name) for name in _INDEX_FIELDS}
            fields["Package"] = para[8 : para.find("\n")].strip() if "\n" in para else para[8:].strip()
            yield para, fields


def _with_filename(para: str | None, fields: dict[str, str], pool_path: str) -> dict[str, str]:
    """The upstream stanza as is, with UUS's pool path as its Filename."""
    if para is None:
        return {**fields, "Filename": pool_path}
    text = _FILENAME_LINE_RE.sub(lambda _m: f"Filename: {pool_path}", para, count=1)
    return Stanza({**fields, "Filename": pool_path}, text + "\n\n")


def upstream_index_text(index: UpstreamIndex) -> str:
    """The upstream Packages file behind a catalog index, fetched (signature and hashes verified
    by the catalog's fetcher) once per change of the index and kept in the data directory."""
    from uus.catalog.sources import apt

    upstream = index.upstream
    folder = _upstream_index_dir() / upstream.name
    stem = f"{index.suite}_{index.component}_{index.architecture}".replace("/", "_")
    path, stamp = folder / f"{stem}.Packages", folder / f"{stem}.sha256"
    with contextlib.suppress(FileNotFoundError):
        if stamp.read_text().strip() == index.sha256:
            return path.read_text(encoding="utf-8", errors="replace")
    folder.mkdir(parents=True, exist_ok=True)
    release = apt.fetch_release(upstream.url, index.suite, upstream.keyring)
    with apt.fetch_index(release, index.component, index.architecture) as fetched, fetched.open() as fh:
        data = fh.read()
    write_atomic(path, data)
    # the index may have moved on upstream since the catalog's sync: record what we hold
    write_atomic(stamp, (index.sha256 if hashlib.sha256(data).hexdigest() == index.sha256 else "stale").encode())
    return data.decode("utf-8", errors="replace")


def upstream_indexes_prefetch(index_ids: list[int]) -> int:
    n = 0
    for index in UpstreamIndex.objects.filter(pk__in=index_ids).select_related("upstream"):
        try:
            upstream_index_text(index)
            n += 1
        except UusError as exc:
            log.warning("could not fetch %s for publishing: %s", index, exc.message)
    return n


# --------------------------------------------------------------------------- publishing


@dataclass
class SuitePlan:
    suite: str
    components: dict[str, list[dict[str, str]]]
    architectures: list[str]


def _upstream_pool_path(upstream_name: str, filename: str) -> str | None:
    rel = filename.lstrip("/")
    while rel.startswith("./"):
        rel = rel[2:]
    parts = rel.split("/")
    if not rel or any(p in ("", ".", "..") for p in parts):
        return None
    return f"{UPSTREAM_POOL_PREFIX}/{upstream_name}/{rel}"


def ring_plan(ring: Ring, ctx=None) -> list[SuitePlan]:
    """Every suite a ring's repository serves, with the stanzas of what the ring may see.

    Suites come from the catalog (every synced suite is published, empty if nothing in it is
    visible, so apt lines never 404); what is in them comes from approvals.ring_visible_packages.
    """
    plans: dict[str, SuitePlan] = {}
    indexes = list(UpstreamIndex.objects.select_related("upstream").filter(upstream__is_enabled=True))
    for index in indexes:
        plan = plans.setdefault(index.suite, SuitePlan(index.suite, {}, []))
        plan.components.setdefault(index.component, [])
        if index.architecture not in plan.architectures and index.architecture != "all":
            plan.architectures.append(index.architecture)
    visible = (
        approvals.ring_visible_packages(ring)
        .filter(index__in=[i.pk for i in indexes])
        .values_list("index_id", "name", "version", "architecture", "sha256")
    )
    wanted: dict[int, list[tuple[str, str, str, str]]] = {}
    for index_id, name, version, arch, sha in visible.iterator(chunk_size=5000):
        wanted.setdefault(index_id, []).append((name, version, arch, sha))
    missing = 0
    for index in indexes:
        rows = wanted.get(index.pk)
        if not rows:
            continue
        stanzas = {}
        for para, fields in _upstream_stanzas(upstream_index_text(index)):
            stanzas[(fields.get("Package"), fields.get("Version"), fields.get("Architecture"))] = (para, fields)
        out = plans[index.suite].components[index.component]
        for name, version, arch, sha in rows:
            para, fields = stanzas.get((name, version, arch), (None, {}))
            pool_path = _upstream_pool_path(index.upstream.name, fields.get("Filename", "")) if fields else None
            if pool_path is None or fields.get("SHA256") != sha:
                missing += 1
                continue
            out.append(_with_filename(para, fields, pool_path))
        if ctx:
            ctx.log(f"{index.upstream.name} {index.suite}/{index.component}/{index.architecture}: {len(rows)} visible")
    if missing:
        log.warning("%d visible packages are not in the upstream index any more; sync the upstream", missing)
    local_archs = {a for p in plans.values() for a in p.architectures}
    # columns, not model instances: building 5,000 rows was a third of publishing as many uploads
    local = [
        _local_stanza(*row)
        for row in PrivatePackage.objects.order_by("name", "architecture", "version").values_list(*_STANZA_COLUMNS)
    ]
    local_archs.update(f["Architecture"] for f in local if f["Architecture"] != "all")
    archs = sorted(local_archs) or list(DEFAULT_ARCHITECTURES)
    result = [SuitePlan(LOCAL_SUITE, {LOCAL_COMPONENT: local}, archs)]
    for name in sorted(plans):
        p = plans[name]
        p.architectures = p.architectures or list(DEFAULT_ARCHITECTURES)
        result.append(p)
    return result


def repo_publish(*, ring: Ring, ctx=None) -> RingRepository:
    """Build the ring's whole tree beside the live one and switch it in with one rename.

    Any failure (an upstream index that cannot be fetched, gpg, the disk) leaves the previous tree
    served whole and is recorded on the repository row. Publishes of one ring never interleave:
    the job holds the lock ``repo:<ring>`` and publish_tree an flock on the ring's directory.
    """
    started = time.monotonic()
    repo, _ = RingRepository.objects.get_or_create(ring=ring)
    fingerprint = signing_key_current()
    try:
        root = ring_root(ring.name)
        valid_days = settings.UUS["repo_valid_days"]
        summary: list[dict] = []

        def build(tmp: Path) -> None:
            # planned inside publish_tree's lock: a publish that waited sees the latest state
            plans = ring_plan(ring, ctx)
            if ctx:
                ctx.set_total(len(plans))
            signer = signing.Signer(gnupg_home())
            for plan in plans:
                result = build_suite(
                    tmp,
                    plan.suite,
                    plan.components,
                    plan.architectures,
                    None,
                    signer,
                    valid_days,
                    codename=plan.suite,
                    label=f"UUS {ring.name}",
                    description=f"UUS repository of ring {ring.name}",
                    previous_root=root,
                )
                count = len(
                    {(f["Package"], f["Version"], f["Architecture"]) for c in plan.components.values() for f in c}
                )
                summary.append(
                    {
                        "suite": plan.suite,
                        "components": list(plan.components),
                        "architectures": plan.architectures,
                        "packages": count,
                        "skipped": result["skipped"],
                    }
                )
                if ctx:
                    ctx.log(f"{plan.suite}: {count} packages")
                    ctx.advance()

        generation = publish_tree(root, build)
        write_atomic(key_asc_path(), signing.export_public_key(gnupg_home()))
    except Exception as exc:
        message = exc.message if isinstance(exc, UusError) else f"{type(exc).__name__}: {exc}"
        RingRepository.objects.filter(pk=repo.pk).update(last_error=message, last_error_at=timezone.now())
        raise
    repo.generation = generation.name
    repo.last_published = timezone.now()
    repo.last_duration = round(time.monotonic() - started, 3)
    repo.suites = summary
    repo.package_count = sum(s["packages"] for s in summary)
    repo.fingerprint = fingerprint
    repo.last_error = ""
    repo.save()
    log.info("published ring %s: %d packages in %d suites", ring.name, repo.package_count, len(summary))
    return repo


def repos_publish_soon(ring: Ring | str | None = None, *, user=None) -> list:
    """Queue a publish of one ring (or every ring). A publish already queued for that ring and not
    started yet will see this change too, so no second one is queued."""
    from uus.jobs.choices import JobState
    from uus.jobs.models import Job
    from uus.jobs.services import dispatch

    from . import tasks

    if ring is None:
        names = list(Ring.objects.values_list("name", flat=True))
    else:
        names = [ring.name if isinstance(ring, Ring) else ring]
    jobs = []
    for name in names:
        queued = Job.objects.filter(name=tasks.repo_publish.job_name, state=JobState.QUEUED, kwargs__ring=name)
        if queued.exists():
            continue
        jobs.append(
            dispatch(
                tasks.repo_publish,
                kwargs={"ring": name},
                locks=[publish_lock(name)],
                user=user,
                title=f"Publish {name}",
            )
        )
    return jobs


def publish_lock(ring_name: str) -> str:
    return f"repo:{ring_name}"


def ring_get(name: str) -> Ring:
    try:
        return Ring.objects.get(name=name)
    except Ring.DoesNotExist:
        raise NotFound(f"no ring named {name!r}") from None


def apt_sources_for_ring(ring: Ring, base_url: str) -> dict | None:
    """The apt configuration of a machine in this ring: one line per published suite."""
    repo = RingRepository.objects.filter(ring=ring).first()
    return apt_config(ring.name, repo.suites if repo else [], base_url)


def apt_config(ring_name: str, suites: list[dict], base_url: str) -> dict | None:
    """{"sources", "key_url"} for a ring whose repository publishes `suites` (RingRepository.suites);
    None while it publishes nothing."""
    if not suites:
        return None
    base = base_url.rstrip("/")
    lines = [
        f"deb [signed-by={KEYRING_PATH}] {base}/repo/{ring_name} {s['suite']} {' '.join(s['components'])}"
        for s in suites
    ]
    return {"sources": "\n".join(lines) + "\n", "key_url": f"{base}/repo/key.asc"}


# --------------------------------------------------------------------------- serving and the cache

_request_base = threading.local()


def request_base_url_set(url: str | None) -> None:
    _request_base.url = url


def public_base_url() -> str:
    """``base_url`` from the configuration, else the scheme and host of the request being served."""
    return settings.UUS["base_url"].rstrip("/") or getattr(_request_base, "url", None) or "http://localhost:8000"


def dists_file(ring_name: str, rel_path: str) -> Path | None:
    """A file of the ring's live tree (indexes, Release files), or None."""
    parts = rel_path.split("/")
    if any(p in ("", ".", "..") for p in parts) or parts[0] == POOL_MAP_DIR or parts[0] != "dists":
        return None
    path = ring_root(ring_name) / rel_path
    return path if path.is_file() else None


def pool_entry(ring_name: str, rel_path: str) -> tuple[str, int] | None:
    """(sha256, size) of a pool path the ring's live (or previous) generation names."""
    root = ring_root(ring_name)
    if not rel_path.startswith("pool/") or ".." in rel_path.split("/"):
        return None
    live = _current_target(root)
    candidates = [root.parent / live] if live else []
    candidates += [g for g in reversed(generations(root)) if g.name != live]
    for generation in candidates:
        try:
            entry = load_pool_map(generation).get(rel_path)
        except OSError:
            continue
        if entry:
            return entry
    return None


def _counter_add(**values: int) -> None:
    for name, n in values.items():
        if not CacheCounter.objects.filter(name=name).update(value=F("value") + n):
            try:
                with transaction.atomic():
                    CacheCounter.objects.create(name=name, value=n)
            except IntegrityError:
                CacheCounter.objects.filter(name=name).update(value=F("value") + n)


def pool_serve(ring_name: str, rel_path: str) -> Path | None:
    """The stored file for a pool path, fetching an upstream file into the cache on first request."""
    entry = pool_entry(ring_name, rel_path)
    if entry is None:
        return None
    sha256, size = entry
    path = pool_file(pool_root(), sha256)
    if path.is_file():
        if CachedFile.objects.filter(sha256=sha256).update(last_access=timezone.now(), hits=F("hits") + 1):
            _counter_add(hits=1, bytes_saved=size)
        return path
    return pool_fetch(sha256, size)


def _upstream_url_for(sha256: str) -> str | None:
    row = (
        ArchivePackage.objects.filter(sha256=sha256)
        .select_related("index__upstream")
        .only("filename", "index__upstream__url")
        .first()
    )
    if row is None:
        return None
    return f"{row.index.upstream.url.rstrip('/')}/{urllib.parse.quote(row.filename.lstrip('/'))}"


@contextlib.contextmanager
def _fetch_lock(sha256: str) -> Iterator[None]:
    """One download per file across threads and processes: the others wait here, then find it."""
    lock_dir = pool_root() / ".fetch"
    lock_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_dir / sha256, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def pool_fetch(sha256: str, size: int) -> Path:
    """Download an upstream file into the pool once, checking its size and SHA-256 against the
    catalog; a bad download is discarded and never served."""
    final = pool_file(pool_root(), sha256)
    with _fetch_lock(sha256):
        if final.is_file():  # another request fetched it while we waited: served from the cache
            if CachedFile.objects.filter(sha256=sha256).update(last_access=timezone.now(), hits=F("hits") + 1):
                _counter_add(hits=1, bytes_saved=size)
            return final
        url = _upstream_url_for(sha256)
        if url is None:
            raise NotFound("no upstream lists this file any more")
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=final.parent)
        try:
            digest, got = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out:
                try:
                    with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as resp:
                        while chunk := resp.read(1024 * 1024):
                            got += len(chunk)
                            if got > size:
                                raise UpstreamFetchFailed(f"{url} is larger than the {size} bytes the index names")
                            digest.update(chunk)
                            out.write(chunk)
                except (urllib.error.URLError, OSError, ValueError) as exc:
                    raise UpstreamFetchFailed(f"could not fetch {url}: {exc}") from None
                out.flush()
                os.fsync(out.fileno())
            if got != size or digest.hexdigest() != sha256:
                raise UpstreamFetchFailed(
                    f"{url}: got {got} bytes with SHA-256 {digest.hexdigest()}, the index names {size} and {sha256}"
                )
            os.chmod(tmp, 0o644)
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        # recorded before the lock is released, so that the requests waiting count as hits
        CachedFile.objects.update_or_create(sha256=sha256, defaults={"size": size, "last_access": timezone.now()})
        _counter_add(misses=1, bytes_fetched=size)
    log.info("cached %s (%d bytes) from %s", sha256, size, url)
    return final


def referenced_hashes() -> set[str]:
    """Every SHA-256 a generation on disk names (live and kept ones of every ring), and uploads'."""
    refs = set(PrivatePackage.objects.values_list("sha256", flat=True))
    root = repos_root()
    if root.is_dir():
        for entry in os.listdir(root):
            if entry.startswith(".gen-"):
                for sha, _size in load_pool_map(root / entry).values():
                    refs.add(sha)
    return refs


def cache_stats() -> dict:
    counters = dict(CacheCounter.objects.values_list("name", "value"))
    agg = CachedFile.objects.aggregate(n=Sum("hits"), size=Sum("size"))
    return {
        "hits": counters.get("hits", 0),
        "misses": counters.get("misses", 0),
        "bytes_fetched": counters.get("bytes_fetched", 0),
        "bytes_saved": counters.get("bytes_saved", 0),
        "evicted": counters.get("evicted", 0),
        "files": CachedFile.objects.count(),
        "size": agg["size"] or 0,
        "limit": settings.UUS["cache_max_mb"] * 1024 * 1024,
    }


def cache_evict(*, max_bytes: int | None = None) -> dict:
    """Keep the cache under its limit by removing least recently used files that no published
    repository names, and remove pool files nothing refers to any more (removed uploads)."""
    limit = settings.UUS["cache_max_mb"] * 1024 * 1024 if max_bytes is None else max_bytes
    refs = referenced_hashes()
    total = CachedFile.objects.aggregate(s=Sum("size"))["s"] or 0
    evicted, freed = 0, 0
    if limit and total > limit:
        for row in CachedFile.objects.order_by("last_access").iterator():
            if total <= limit:
                break
            if row.sha256 in refs:
                continue
            pool_file(pool_root(), row.sha256).unlink(missing_ok=True)
            row.delete()
            total -= row.size
            evicted += 1
            freed += row.size
    cached = set(CachedFile.objects.values_list("sha256", flat=True))
    removed = 0
    base = pool_root() / "by-sha256"
    if base.is_dir():
        for sub in os.scandir(base):
            if not sub.is_dir():
                continue
            for f in os.scandir(sub.path):
                sha = sub.name + f.name
                if f.name.startswith(".") or sha in refs or sha in cached:
                    continue
                if time.time() - f.stat().st_mtime < 3600:
                    continue  # an upload between its store and its row
                os.unlink(f.path)
                removed += 1
    if evicted:
        _counter_add(evicted=evicted)
    return {"evicted": evicted, "freed": freed, "removed": removed, "size": total}


def repositories_overview() -> list[dict]:
    """Every ring with its repository state, for the UI, the API and the CLI."""
    out = []
    repos = {r.ring_id: r for r in RingRepository.objects.all()}
    for ring in Ring.objects.all():
        repo = repos.get(ring.pk)
        out.append(
            {
                "ring": ring.name,
                "url": f"/repo/{ring.name}/",
                "last_published": repo.last_published if repo else None,
                "last_duration": repo.last_duration if repo else None,
                "last_error": repo.last_error if repo else "",
                "suites": repo.suites if repo else [],
                "package_count": repo.package_count if repo else 0,
                "fingerprint": repo.fingerprint if repo else "",
            }
        )
    return out


def remove_tree(ring_name: str) -> None:
    """Remove a ring's published tree (a deleted ring)."""
    root = ring_root(ring_name)
    for g in generations(root):
        shutil.rmtree(g, ignore_errors=True)
    root.unlink(missing_ok=True)
