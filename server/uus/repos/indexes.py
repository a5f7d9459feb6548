"""Write APT index files: ``Packages`` (+ ``.gz``, ``.xz``), ``Release`` and ``by-hash`` copies.

Why hand-written and streaming: a ring that mirrors Debian main holds ~63,000 packages (50 MB of
``Packages``). Stanzas are formatted one by one into a buffer flushed every MiB while three digests
run over the same bytes; the two compressed forms are then made in two threads (zlib and lzma
release the GIL), and an unchanged ``Packages`` reuses the previous generation's compressed files
instead of compressing again. Field order is apt-ftparchive's (apt's ``tagfile-order.c``), so
our indexes diff cleanly against ones made by Debian tools.
"""

from __future__ import annotations

import dataclasses
import hashlib
import lzma
import os
import re
import threading
import zlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from uus.core.exceptions import UusError

__all__ = [
    "FIELD_ORDER",
    "FileHashes",
    "InvalidIndexData",
    "add_by_hash",
    "format_release_date",
    "format_stanza",
    "hash_file",
    "write_packages",
    "write_release",
]

# apt-pkg/tagfile-order.c, iTFRewritePackageOrder: the order apt-ftparchive writes.
FIELD_ORDER = (
    "Package Package-Type Architecture Subarchitecture Version Revision Package-Revision "
    "Package_Revision Kernel-Version Built-Using Built-For-Profiles Auto-Built-Package Multi-Arch "
    "Status Priority Class Essential Installer-Menu-Item Section Source Origin Maintainer "
    "Original-Maintainer Bugs Config-Version Conffiles Triggers-Awaited Triggers-Pending "
    "Installed-Size Provides Pre-Depends Depends Recommends Recommended Suggests Optional "
    "Conflicts Breaks Replaces Enhances Filename MSDOS-Filename Size MD5sum SHA1 SHA256 SHA512 "
    "Homepage Description Tag Task"
).split()
_RANK = {name.lower(): i for i, name in enumerate(FIELD_ORDER)}
_UNKNOWN_RANK = len(FIELD_ORDER)
_FIELD_NAME_RE = re.compile(r"^[!-9;-~][!-9;-~]*$")
_INDEX_NAMES = ("Packages", "Packages.gz", "Packages.xz")
FLUSH_BYTES = 1 << 20
# Above this, fast settings. xz -6 manages ~1.7 MB/s here: 50 MB took ~25 s (10 s at -1, 4.5 s at -0), and
# 2.2 MB (5,000 small packages) 1.33 s where -0 takes 0.11 s for an .xz 23 % larger (623 against 507 KB).
# A publish follows every change, and apt fetches an index only when it changed: publish fast.
BIG_INDEX = 256 << 10


class InvalidIndexData(UusError):
    """A stanza that would corrupt an index (a field name or value apt would misread)."""

    code = "invalid_index_data"
    status = 400


@dataclasses.dataclass(frozen=True)
class FileHashes:
    size: int
    md5: str
    sha1: str
    sha256: str


class _Hasher:
    __slots__ = ("md5", "sha1", "sha256", "size")

    def __init__(self) -> None:
        self.md5, self.sha1, self.sha256 = hashlib.md5(), hashlib.sha1(), hashlib.sha256()
        self.size = 0

    def update(self, data: bytes) -> None:
        self.md5.update(data)
        self.sha1.update(data)
        self.sha256.update(data)
        self.size += len(data)

    def result(self) -> FileHashes:
        return FileHashes(self.size, self.md5.hexdigest(), self.sha1.hexdigest(), self.sha256.hexdigest())


def hash_file(path: str | os.PathLike) -> FileHashes:
    h = _Hasher()
    with open(path, "rb") as f:
        while chunk := f.read(FLUSH_BYTES):
            h.update(chunk)
    return h.result()


_good_names: set[str] = set()


def _check_field(name: str, value: str) -> None:
    if name not in _good_names:
        if not _FIELD_NAME_RE.fullmatch(name) or name[0] in "#-":
            raise InvalidIndexData(f"invalid field name {name!r}")
        _good_names.add(name)
    if "\n" in value:
        for line in value.split("\n")[1:]:
            if not line or line[0] not in " \t" or not line.strip():
                raise InvalidIndexData(f"field {name} has a line that would end or break the stanza")


class Stanza(dict):
    """A stanza already written out: the fields an index needs (Package, Version, Architecture,
    Size, SHA256, Filename) plus ``text``, the whole stanza as it will appear, used as is.

    For republishing an upstream index (tens of thousands of stanzas, checked once when read):
    parsing and re-sorting every field again was most of the time of publishing Debian main.
    """

    __slots__ = ("text",)

    def __init__(self, fields: Mapping[str, str], text: str):
        super().__init__(fields)
        if not text.endswith("\n\n") or "\n\n" in text[:-2]:
            raise InvalidIndexData(f"stanza of {fields.get('Package', '?')} is not one paragraph")
        self.text = text


def format_stanza(fields: Mapping[str, str]) -> str:
    """One stanza (ending with a blank line) in apt-ftparchive's field order; unknown fields
    follow the known ones in their given order; empty values are left out."""
    if isinstance(fields, Stanza):
        return fields.text
    # sorted() is stable: unknown fields (all of rank _UNKNOWN_RANK) keep their given order
    keys = sorted(
        (k for k, v in fields.items() if v != "" and v is not None),
        key=lambda k: _RANK.get(k.lower(), _UNKNOWN_RANK),
    )
    lines = []
    for k in keys:
        v = str(fields[k])
        _check_field(k, v)
        lines.append(f"{k}:{v}" if v[0] == "\n" else f"{k}: {v}")
    lines.append("\n")
    return "\n".join(lines)


def _compress(src: Path, dst: Path, kind: str, preset: int, out: dict, errors: list) -> None:
    try:
        h = _Hasher()
        if kind == "gz":
            # wbits 31 = gzip container with mtime 0: same input, same bytes (reproducible);
            # level 6 for big indexes: 1% larger than 9 and a third faster
            comp = zlib.compressobj(9 if preset > 0 else 6, zlib.DEFLATED, 31)
        else:
            comp = lzma.LZMACompressor(format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=preset)
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            while chunk := fin.read(FLUSH_BYTES):
                data = comp.compress(chunk)
                if data:
                    h.update(data)
                    fout.write(data)
            data = comp.flush()
            h.update(data)
            fout.write(data)
        out[dst.name] = h.result()
    except BaseException as exc:  # reported to the caller's thread
        errors.append(exc)


def write_packages(
    directory: str | os.PathLike,
    stanzas: Iterable[Mapping[str, str]],
    *,
    xz_preset: int | None = None,
    previous_dir: str | os.PathLike | None = None,
) -> dict[str, FileHashes]:
    """Write ``Packages``, ``Packages.gz`` and ``Packages.xz`` into ``directory``.

    ``stanzas`` is any iterable (a generator is fine) of field mappings, already in the order
    they should appear. When ``previous_dir`` holds a byte-identical ``Packages``, its compressed
    files are hard-linked instead of recompressed. Returns hashes by file name.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    plain = directory / "Packages"
    h = _Hasher()
    with open(plain, "wb") as f:
        buf: list[str] = []
        pending = 0
        for fields in stanzas:
            text = format_stanza(fields)
            buf.append(text)
            pending += len(text)
            if pending >= FLUSH_BYTES:
                data = "".join(buf).encode("utf-8")
                h.update(data)
                f.write(data)
                buf, pending = [], 0
        data = "".join(buf).encode("utf-8")
        h.update(data)
        f.write(data)
    result = {"Packages": h.result()}

    if previous_dir is not None and _reuse_compressed(Path(previous_dir), directory, result):
        return result

    preset = xz_preset if xz_preset is not None else (0 if result["Packages"].size > BIG_INDEX else 6)
    errors: list[BaseException] = []
    threads = [
        threading.Thread(
            target=_compress,
            args=(plain, directory / f"Packages.{kind}", kind, preset, result, errors),
        )
        for kind in ("gz", "xz")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return result


def _reuse_compressed(prev: Path, directory: Path, result: dict[str, FileHashes]) -> bool:
    """Hard-link last generation's .gz/.xz when its Packages is byte-identical to the new one."""
    try:
        if (prev / "Packages").stat().st_size != result["Packages"].size:
            return False
        if hash_file(prev / "Packages").sha256 != result["Packages"].sha256:
            return False
        for name in ("Packages.gz", "Packages.xz"):
            _link_or_copy(prev / name, directory / name)
            result[name] = hash_file(directory / name)
    except OSError:
        for name in ("Packages.gz", "Packages.xz"):
            (directory / name).unlink(missing_ok=True)
            result.pop(name, None)
        return False
    return True


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            while chunk := fin.read(FLUSH_BYTES):
                fout.write(chunk)


def add_by_hash(
    directory: str | os.PathLike,
    files: Mapping[str, FileHashes] | Iterable[str] = _INDEX_NAMES,
) -> list[Path]:
    """Make ``by-hash/SHA256/<sha256>`` hard links of the index files in ``directory``.

    ``files`` names them, or maps names to hashes already computed (saves re-reading 50 MB).
    With ``Acquire-By-Hash: yes`` apt fetches indexes by hash, so a client holding a Release
    from just before a publish still finds the files it names (see publish.carry_over_by_hash).
    """
    directory = Path(directory)
    target_dir = directory / "by-hash" / "SHA256"
    target_dir.mkdir(parents=True, exist_ok=True)
    known = files if isinstance(files, Mapping) else {}
    made = []
    for name in files:
        src = directory / name
        if not src.exists():
            continue
        sha256 = known[name].sha256 if name in known else hash_file(src).sha256
        dst = target_dir / sha256
        if not dst.exists():
            _link_or_copy(src, dst)
        made.append(dst)
    return made


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_release_date(when: datetime) -> str:
    """RFC 2822 in UTC, as Debian writes it ("Sat, 28 Nov 2026 10:00:00 UTC"), locale-free."""
    when = when.astimezone(UTC)
    return f"{_DAYS[when.weekday()]}, {when.day:02d} {_MONTHS[when.month - 1]} {when.year} {when:%H:%M:%S} UTC"


def write_release(
    path: str | os.PathLike,
    *,
    suite: str,
    codename: str,
    architectures: Iterable[str],
    components: Iterable[str],
    files: Mapping[str, FileHashes],
    date: datetime,
    valid_until: datetime | None = None,
    origin: str = "UUS",
    label: str = "UUS",
    description: str | None = None,
    acquire_by_hash: bool = True,
) -> FileHashes:
    """Write a ``Release`` file listing ``files`` (paths relative to ``dists/SUITE/``)."""
    architectures, components = list(architectures), list(components)
    for value in (suite, codename, origin, label, description or "", *architectures, *components):
        if "\n" in value or "\r" in value:
            raise InvalidIndexData(f"a Release field value spans lines: {value!r}")
    for rel in files:
        if any(c.isspace() for c in rel) or rel.startswith("/") or ".." in rel.split("/"):
            raise InvalidIndexData(f"invalid index path for Release: {rel!r}")
    lines = [
        f"Origin: {origin}",
        f"Label: {label}",
        f"Suite: {suite}",
        f"Codename: {codename}",
        f"Date: {format_release_date(date)}",
    ]
    if valid_until is not None:
        lines.append(f"Valid-Until: {format_release_date(valid_until)}")
    lines += [
        f"Architectures: {' '.join(architectures)}",
        f"Components: {' '.join(components)}",
    ]
    if description:
        lines.append(f"Description: {description}")
    if acquire_by_hash:
        lines.append("Acquire-By-Hash: yes")
    for field, attr in (("MD5Sum", "md5"), ("SHA1", "sha1"), ("SHA256", "sha256")):
        lines.append(f"{field}:")
        for rel in sorted(files):
            fh = files[rel]
            lines.append(f" {getattr(fh, attr)} {fh.size:>16} {rel}")
    data = ("\n".join(lines) + "\n").encode("utf-8")
    with open(path, "wb") as f:
        f.write(data)
    return hash_file(path)
