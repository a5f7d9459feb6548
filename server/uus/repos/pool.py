"""The content-addressed pool: every package file is stored once, under its SHA-256.

Why content-addressed: the same ``.deb`` is published in many rings and suites (and reached by
both an upload and the upstream pull-through cache); storing it by hash makes that one file, makes
a half-written file impossible to confuse with a finished one, and lets a generation's
``pool/main/h/hello/hello_2.10-3_amd64.deb`` (the apt-facing name, from :func:`pool_path_for`) be
resolved to the stored file through the generation's pool map (see ``publish.py``).

Layout: ``<pool_root>/by-sha256/ab/cdef...`` (the first two hex digits name the directory, the
other 62 the file). Files are written to a temporary name in the same directory, fsynced, and
renamed into place, so a reader sees a whole file or none.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
from pathlib import Path

from uus.core.exceptions import UusError

from .debfile import DebInfo, inspect_deb, read_deb, valid_architecture, valid_package_name, version_problem

__all__ = [
    "PoolError",
    "ingest_deb",
    "pool_file",
    "pool_path_for",
    "pool_place",
    "pool_relpath",
    "stage_checked",
    "stage_upload",
    "store_file",
    "sync_files",
]

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_COMPONENT_RE = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")


class PoolError(UusError):
    """A file could not be stored (its hash did not match, or the path was refused)."""

    code = "pool_error"
    status = 400


def pool_relpath(sha256: str) -> str:
    """``by-sha256/ab/cdef...``: where a file with this hash lives, relative to the pool root."""
    if not _SHA256_RE.fullmatch(sha256 or ""):
        raise PoolError(f"not a SHA-256 hex digest: {sha256!r}")
    return f"by-sha256/{sha256[:2]}/{sha256[2:]}"


def pool_file(pool_root: str | os.PathLike, sha256: str) -> Path:
    return Path(pool_root) / pool_relpath(sha256)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def store_file(pool_root: str | os.PathLike, src_path: str | os.PathLike, sha256: str, *, sync: bool = True) -> str:
    """Copy ``src_path`` into the pool under ``sha256`` and return its relative path.

    The copy is hashed as it is written and refused if it is not ``sha256`` (nothing is left
    behind). Storing the same content twice keeps one file. Safe against concurrent writers:
    each writes its own temporary file, and the rename of identical content is harmless.
    ``sync=False`` skips the two fsyncs: a bulk caller then calls ``os.sync()`` once before it
    records the files (two fsyncs per file were most of the cost of adding thousands).
    """
    rel = pool_relpath(sha256)
    final = Path(pool_root) / rel
    if final.is_file():
        return rel
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=final.parent)
    try:
        digest = hashlib.sha256()
        with open(src_path, "rb") as src, os.fdopen(fd, "wb") as out:
            while chunk := src.read(1024 * 1024):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fchmod(out.fileno(), 0o644)
            if sync:
                os.fsync(out.fileno())
        if digest.hexdigest() != sha256:
            raise PoolError(f"the file's SHA-256 is {digest.hexdigest()}, not {sha256}: not stored")
        os.replace(tmp, final)
        if sync:
            _fsync_dir(final.parent)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return rel


def stage_upload(
    staged: Path, src_path: str | os.PathLike, data: bytes | None, sha256: str, *, link: bool = False
) -> Path:
    """Put an upload into the staging directory: ``data`` when the check read the file whole
    (exactly the bytes checked), else a copy of ``src_path`` hashed on the way and refused unless
    it is ``sha256``. The staging directory is in the pool's file system, so placing is a rename.

    ``link=True`` is for files handed over (``uus packages upload --move``): a hard link instead of
    a copy when the file is on the same file system and has no other name, then checked to hold
    the bytes that were checked. A new file costs the disk far more than a new name (0.02 to 0.3 ms
    against 0.01 here), and the file is the pool's alone once the caller removes the old name.
    """
    if link and _link_checked(staged, src_path, data, sha256):
        return staged
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as out:
            if data is not None:
                out.write(data)
                return staged
            digest = hashlib.sha256()
            with open(src_path, "rb") as src:
                while chunk := src.read(1024 * 1024):
                    digest.update(chunk)
                    out.write(chunk)
        if digest.hexdigest() != sha256:
            raise PoolError("the file changed while it was being read: not stored")
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return staged


def _link_checked(staged: Path, src_path: str | os.PathLike, data: bytes | None, sha256: str) -> bool:
    """Hard-link ``src_path`` as ``staged`` if it is then exactly the checked bytes and has no third
    name (which could still be written through); False (nothing left) when a copy must do."""
    try:
        os.link(src_path, staged, follow_symlinks=False)
    except OSError:  # another file system, or links not allowed here
        return False
    try:
        st = os.stat(staged, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 2:
            raise PoolError("not a file of its own")
        with open(staged, "rb") as f:
            if data is not None:
                same = f.read(len(data) + 1) == data
            else:
                digest = hashlib.sha256()
                while chunk := f.read(1024 * 1024):
                    digest.update(chunk)
                same = digest.hexdigest() == sha256
        if not same:
            raise PoolError("the file changed while it was being read")
        if st.st_mode & 0o444 != 0o444:  # others (a front server) read the pool too
            os.chmod(staged, 0o644)
    except (OSError, PoolError):
        staged.unlink(missing_ok=True)
        return False  # the copy checks the bytes again and says what is wrong
    return True


def stage_checked(job: tuple[str, str, int, bool]) -> tuple[DebInfo | None, UusError | None]:
    """One upload of a batch: our own checks (:func:`debfile.read_deb`), then the checked bytes
    staged at ``staged`` (hard-linked with ``link``). Returns (info, None), or (None, why it was
    refused): made to run in a pool of processes, which is why a refusal is returned, not raised."""
    path, staged, max_bytes, link = job
    try:
        info, data = read_deb(path, max_bytes)
        stage_upload(Path(staged), path, data, info.sha256, link=link)
    except UusError as exc:
        return None, exc
    return info, None


def pool_place(pool_root: str | os.PathLike, staged: str | os.PathLike, sha256: str) -> str:
    """Move a staged file into the pool under its hash: one rename, which also serves when the pool
    holds that content already (the same bytes replace the same bytes, atomically for readers).
    Not synced: the caller syncs what it placed (:func:`sync_files`) before anything names it."""
    final = os.path.join(pool_root, pool_relpath(sha256))
    try:
        os.rename(staged, final)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.rename(staged, final)
    return final


def sync_files(paths: list[str]) -> None:
    """Make placed files durable: an fsync each (and of their directories) for a few, one
    ``os.sync()`` for many (an fsync per file was most of the cost of adding thousands)."""
    if len(paths) > 16:
        os.sync()
        return
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    for directory in {os.path.dirname(p) for p in paths}:
        _fsync_dir(Path(directory))


def ingest_deb(pool_root: str | os.PathLike, path: str | os.PathLike, max_bytes: int) -> tuple[DebInfo, str]:
    """Validate an uploaded ``.deb`` and, only if dpkg would accept it, store it in the pool."""
    info = inspect_deb(path, max_bytes)
    return info, store_file(pool_root, path, info.sha256)


def _strip_epoch(version: str) -> str:
    return version.split(":", 1)[1] if ":" in version else version


def pool_path_for(
    package: str,
    version: str,
    arch: str,
    source: str | None = None,
    *,
    component: str = "main",
    prefix: str = "pool",
) -> str:
    """The Debian-style name apt sees: ``pool/main/<p>/<source>/<package>_<version>_<arch>.deb``.

    ``<p>`` is the first letter of the source, or ``libX`` for sources starting with ``lib``
    (as in Debian's archive); the epoch is left out of the file name, as dpkg-name does.
    Every part is validated, so no name can climb out of the pool directory.
    """
    source = source or package
    for what, name in (("package", package), ("source", source)):
        if not valid_package_name(name):
            raise PoolError(f"invalid {what} name for a pool path: {name!r}")
    if version_problem(version):
        raise PoolError(f"invalid version for a pool path: {version!r}")
    if not valid_architecture(arch):
        raise PoolError(f"invalid architecture for a pool path: {arch!r}")
    if not _COMPONENT_RE.fullmatch(component):
        raise PoolError(f"invalid component: {component!r}")
    letter = source[:4] if source.startswith("lib") and len(source) > 3 else source[0]
    filename = f"{package}_{_strip_epoch(version)}_{arch}.deb"
    return f"{prefix.strip('/')}/{component}/{letter}/{source}/{filename}"
