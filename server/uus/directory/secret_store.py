"""Bind passwords kept out of the database: one file of mode 0600 per secret under DATA_DIR/secrets/.

No encryption library is among the project's dependencies, and a home-made cipher keyed by the
Django secret key would protect nothing the data directory does not already expose. So the password
lives like the other secrets of the data directory (``secret_key``, signing keys): in a file only the
server's user can read, which database dumps, API answers, pages and logs never contain. The
database keeps only the file's path.

Each change writes a new file (atomically: temporary file, fsync, rename) and removes the old one
once the transaction that switched to the new path has committed, so a rolled-back change never
leaves a source pointing at a missing or half-written file; files that no source points at (after a
rollback) are removed by :func:`secrets_prune`, which the periodic directory job runs.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path

from django.conf import settings
from django.db import transaction

from .exceptions import DirectorySecretMissing

_PREFIX = "directory-"
_SUFFIX = ".secret"


def secrets_dir() -> Path:
    path = Path(settings.DATA_DIR) / "secrets"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def secret_write(value: str) -> str:
    """Store ``value`` in a new 0600 file and return its path. The caller removes it if the row that
    should point at it is not saved; :func:`secrets_prune` removes any file no source points at."""
    directory = secrets_dir()
    path = directory / f"{_PREFIX}{secrets.token_hex(12)}{_SUFFIX}"
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(value)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return str(path)


def secret_read(path: str, *, what: str = "the bind password") -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DirectorySecretMissing(
            f"{what} is missing from the data directory ({path}); set the password again"
        ) from None


def secret_delete(path: str) -> None:
    """Remove a secret file (only ever one of ours, under DATA_DIR/secrets/)."""
    if not path:
        return
    p = Path(path)
    if p.parent.resolve() != secrets_dir().resolve() or not p.name.startswith(_PREFIX):
        return
    with contextlib.suppress(FileNotFoundError):
        p.unlink()


def secret_delete_on_commit(path: str) -> None:
    transaction.on_commit(lambda: secret_delete(path))


def secrets_prune(in_use: set[str], *, older_than: float = 3600) -> int:
    """Remove directory secret files that no source points at; returns how many. Files younger than
    ``older_than`` seconds are left alone: their source may not be committed yet."""
    keep = {str(Path(p).resolve()) for p in in_use if p}
    cutoff = time.time() - older_than
    n = 0
    for p in secrets_dir().glob(f"{_PREFIX}*{_SUFFIX}"):
        if str(p.resolve()) not in keep and p.stat().st_mtime < cutoff:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                n += 1
    return n
