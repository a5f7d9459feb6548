"""Validate an uploaded ``.deb`` the way dpkg would, before a single byte of it is stored.

Why a parser of our own and not only ``debian.debfile.DebFile``: DebFile happily opens files that
dpkg refuses (wrong member order, trailing members, names with ``/`` in them, a truncated data
member), and its errors do not say what is wrong. Here every refusal is an :class:`InvalidPackage`
whose message an administrator can act on ("truncated: data.tar.xz ends early ...").

What is checked, in order:

1. the real size of the open file (``fstat``), never a length someone claimed;
2. the ar container: ``!<arch>\\n`` magic, well-formed member headers, member names without
   path tricks, the members ``debian-binary`` (exactly ``2.0\\n``), ``control.tar[.gz|.xz|.zst]``
   and ``data.tar[.gz|.xz|.bz2|.lzma|.zst]`` in that order, every member complete, nothing else
   (dpkg skips ``_``-prefixed members such as debsigs' ``_gpgorigin``, so do we);
3. the control archive: a tar without ``..`` or absolute names, holding a regular ``control`` file;
   the control file is one strict deb822 paragraph with Package, Version, Architecture, Maintainer
   and Description, a policy-conforming package name, a valid Debian version and one real
   architecture name;
4. the data archive decompresses to its end and is a tar without ``..`` components;
5. the Debian tools as a second opinion (:class:`SecondOpinion`, once per batch of uploads):
   apt-ftparchive must read the same Package/Version/Architecture, size and SHA-256 from the
   file, and dpkg's own parser must accept the control paragraph (relationship fields included).

``.zst`` members are decompressed by the ``zstd`` command-line tool, because Python 3.11 has no zstd
module; it is installed wherever dpkg itself can read such packages.

Files up to 64 MiB are read once and checked from memory (:func:`read_deb` returns those bytes, so
a caller stores exactly what was checked); bigger ones are streamed. The second opinion reopens the
file by path and proves by its SHA-256 that it read the same bytes.
"""

from __future__ import annotations

import bisect
import bz2
import dataclasses
import hashlib
import io
import lzma
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple

from uus.core.exceptions import UusError

__all__ = [
    "DebInfo",
    "InvalidPackage",
    "SecondOpinion",
    "inspect_deb",
    "parse_control",
    "read_deb",
    "valid_architecture",
    "valid_package_name",
    "valid_version",
    "version_problem",
]

AR_MAGIC = b"!<arch>\n"
AR_HEADER_LEN = 60
CONTROL_MEMBERS = ("control.tar", "control.tar.gz", "control.tar.xz", "control.tar.zst")
DATA_MEMBERS = (
    "data.tar",
    "data.tar.gz",
    "data.tar.xz",
    "data.tar.bz2",
    "data.tar.lzma",
    "data.tar.zst",
)
MANDATORY_FIELDS = ("Package", "Version", "Architecture", "Maintainer", "Description")
# Fields the archive computes; a control file must not be able to inject them into an index.
INDEX_ONLY_FIELDS = frozenset(f.lower() for f in ("Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512", "Status"))

_SINGLE_LINE_FIELDS = frozenset(("package", "version", "architecture", "maintainer", "source", "installed-size"))
MAX_CONTROL_TAR_BYTES = 64 * 1024 * 1024  # decompressed; a real one is a few KiB to a few MiB
MAX_CONTROL_FILE_BYTES = 1024 * 1024

PACKAGE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_FIELD_LINE_RE = re.compile(r"^([!-9;-~][!-9;-~]*):(.*)$")  # printable ASCII without ':' or space
_AR_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
_SOURCE_RE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?$")
_EPOCH_RE = re.compile(r"^[0-9]+$")
_UPSTREAM_REV_RE = re.compile(r"^[0-9][A-Za-z0-9.+~:-]*$")  # '-' allowed: a revision follows
_UPSTREAM_RE = re.compile(r"^[0-9][A-Za-z0-9.+~:]*$")
_REVISION_RE = re.compile(r"^[A-Za-z0-9.+~]+$")

# dpkg's CPU names (cputable) and the OS prefixes of its ostable that are real-world Debian ports.
_CPUS = frozenset(
    "alpha amd64 arc arm arm64 arm64ilp32 armeb armel armhf avr32 hppa i386 ia64 loong64 m32r "
    "m68k mips mips64 mips64el mips64r6 mips64r6el mipsel mipsn32 mipsn32el mipsn32r6 "
    "mipsn32r6el mipsr6 mipsr6el nios2 or1k powerpc powerpcel powerpcspe ppc64 ppc64el "
    "riscv64 s390 s390x sh3 sh3eb sh4 sh4eb sparc sparc64 tilegx x32".split()
)
_OS_PREFIXES = frozenset(
    "hurd kfreebsd knetbsd kopensolaris musl-linux uclibc-linux netbsd openbsd freebsd darwin solaris aix mint".split()
)


class InvalidPackage(UusError):
    """The upload is not a package dpkg would install; the message says why."""

    code = "invalid_package"
    status = 400

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class DebInfo:
    """What the server keeps about a validated package (all text is str, sizes are int)."""

    package: str
    version: str
    architecture: str
    source: str
    source_version: str
    maintainer: str
    description: str  # the synopsis, first line of Description
    section: str
    priority: str
    installed_size: int | None
    depends: str
    control: str  # the control paragraph as found in the package, ending with "\n"
    fields: dict[str, str]  # the same paragraph parsed, in the package's field order
    size: int
    sha256: str
    md5: str
    sha1: str
    control_member: str
    data_member: str

    def index_fields(self, filename: str) -> dict[str, str]:
        """The stanza for a Packages index: control fields plus where and what the file is."""
        out = {k: v for k, v in self.fields.items() if k.lower() not in INDEX_ONLY_FIELDS}
        out["Filename"] = filename
        out["Size"] = str(self.size)
        out["MD5sum"] = self.md5
        out["SHA1"] = self.sha1
        out["SHA256"] = self.sha256
        return out


# --------------------------------------------------------------------------- small validators


def version_problem(version: str) -> str | None:
    """Why ``version`` is not a Debian version (policy 5.6.12), or None when it is one.

    Local on purpose: repos must not depend on another app's parser to refuse a bad upload.
    """
    if not version:
        return "the version is empty"
    if len(version) > 256:
        return "the version is longer than 256 characters"
    if any(c.isspace() for c in version):
        return "the version contains white space"
    epoch, colon, rest = version.partition(":")
    if colon:
        if not _EPOCH_RE.fullmatch(epoch):
            return f"the epoch {epoch!r} is not a number"
        if int(epoch) > 2**31 - 1:
            return "the epoch is too large"
    else:
        rest = version
    if not rest:
        return "the version is empty after the epoch"
    if "-" in rest:
        upstream, revision = rest.rsplit("-", 1)
        if not revision:
            return "the Debian revision after '-' is empty"
        if not _REVISION_RE.fullmatch(revision):
            return f"the Debian revision {revision!r} has characters outside [A-Za-z0-9.+~]"
        upstream_re = _UPSTREAM_REV_RE
    else:
        upstream, upstream_re = rest, _UPSTREAM_RE
    if not upstream:
        return "the upstream version is empty"
    if not upstream[0].isdigit():
        return f"the upstream version {upstream!r} does not start with a digit"
    if not upstream_re.fullmatch(upstream):
        return f"the upstream version {upstream!r} has characters outside [A-Za-z0-9.+~-:]"
    return None


def valid_version(version: str) -> bool:
    return version_problem(version) is None


_valid_version = valid_version  # the name the design brief uses


def valid_package_name(name: str) -> bool:
    return bool(PACKAGE_NAME_RE.fullmatch(name))


def valid_architecture(arch: str) -> bool:
    """One concrete architecture of a binary package: ``all`` or a dpkg CPU, maybe OS-prefixed.

    ``any``, wildcards (``linux-any``) and lists are source-package syntax and are refused.
    """
    if arch == "all" or arch in _CPUS:
        return True
    os_name, _, cpu = arch.rpartition("-")
    return os_name in _OS_PREFIXES and cpu in _CPUS


# --------------------------------------------------------------------------- control paragraph


def parse_control(text: str, what: str = "control file") -> dict[str, str]:
    """Parse exactly one deb822 paragraph, strictly (dpkg's rules for a binary control file).

    Values keep their continuation lines (``"short\\n long\\n ."``); field names keep their case,
    duplicates are refused case-insensitively.
    """
    fields: dict[str, str] = {}
    seen: dict[str, str] = {}
    current: str | None = None
    ended = False
    for lineno, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            raise InvalidPackage(f"{what} has a carriage return on line {lineno}")
        if not line.strip():
            if line:
                raise InvalidPackage(f"{what} has a line of only white space (line {lineno})")
            if fields:
                ended = True
            continue
        if ended:
            raise InvalidPackage(f"{what} has more than one paragraph (line {lineno})")
        if line[0] in " \t":
            if current is None:
                raise InvalidPackage(f"{what} starts with a continuation line (line {lineno})")
            fields[current] += "\n" + line.rstrip()
            continue
        if line.startswith("#"):
            raise InvalidPackage(f"{what} has a comment line, not allowed here (line {lineno})")
        m = _FIELD_LINE_RE.match(line)
        if not m or m.group(1).startswith("-"):
            raise InvalidPackage(f"{what} line {lineno} is not 'Field: value': {line[:60]!r}")
        name, value = m.group(1), m.group(2).strip()
        key = name.lower()
        if key in seen:
            raise InvalidPackage(f"{what} has {seen[key]} twice")
        seen[key] = name
        fields[name] = value
        current = name
    if not fields:
        raise InvalidPackage(f"{what} is empty")
    return fields


def _lowered(fields: dict[str, str]) -> dict[str, str]:
    """The fields by lower-case name (parse_control refuses names that differ only in case)."""
    return {k.lower(): v for k, v in fields.items()}


def _check_control(fields: dict[str, str]) -> None:
    by_lower = _lowered(fields)
    for name, value in fields.items():
        if "\n" in value and name.lower() in _SINGLE_LINE_FIELDS:
            raise InvalidPackage(f"control file field {name} spans several lines")
    for name in MANDATORY_FIELDS:
        value = by_lower.get(name.lower())
        if value is None:
            raise InvalidPackage(f"control file lacks {name}")
        if not value.split("\n", 1)[0].strip():
            raise InvalidPackage(f"control file has an empty {name}")
    package = by_lower["package"]
    if not valid_package_name(package):
        raise InvalidPackage(
            f"invalid package name {package!r}: Debian names are lower case letters, digits and"
            " + . -, at least two characters, starting with a letter or digit"
        )
    version = by_lower.get("version", "")
    problem = version_problem(version)
    if problem:
        raise InvalidPackage(f"invalid version {version!r}: {problem}")
    arch = by_lower.get("architecture", "")
    if not valid_architecture(arch):
        raise InvalidPackage(
            f"invalid architecture {arch!r}: a binary package has exactly one architecture"
            " such as amd64, arm64, i386, armhf or all"
        )
    source = by_lower.get("source", "")
    if source:
        m = _SOURCE_RE.fullmatch(source)
        if not m or not valid_package_name(m.group(1)):
            raise InvalidPackage(f"invalid Source field {source!r}")
        if m.group(2) and version_problem(m.group(2)):
            raise InvalidPackage(f"invalid source version {m.group(2)!r}: {version_problem(m.group(2))}")
    size = by_lower.get("installed-size", "")
    if size and not size.isdigit():
        raise InvalidPackage(f"Installed-Size {size!r} is not a number of KiB")


# --------------------------------------------------------------------------- ar container


@dataclasses.dataclass
class _Member:
    name: str
    offset: int  # of the data
    size: int


def _read_exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    return data if data is not None else b""


def _ar_members(f: BinaryIO, file_size: int) -> list[_Member]:
    """Walk the ar headers (no data is read) and refuse anything dpkg would not open."""
    f.seek(0)
    magic = _read_exact(f, len(AR_MAGIC))
    if magic != AR_MAGIC:
        if magic and AR_MAGIC.startswith(magic):
            raise InvalidPackage("truncated: the file ends inside the ar magic")
        raise InvalidPackage("not a Debian package: the file is not an ar archive")
    members: list[_Member] = []
    pos = len(AR_MAGIC)
    while pos < file_size:
        f.seek(pos)
        header = _read_exact(f, AR_HEADER_LEN)
        index = len(members) + 1
        if len(header) < AR_HEADER_LEN:
            raise InvalidPackage(
                f"truncated: the file ends inside the header of ar member #{index}"
                f" ({len(header)} of {AR_HEADER_LEN} bytes)"
            )
        if header[58:60] != b"`\n":
            raise InvalidPackage(f"corrupt: ar member #{index} has a malformed header")
        raw_name = header[0:16].decode("latin-1").rstrip(" ")
        name = raw_name[:-1] if raw_name.endswith("/") and len(raw_name) > 1 else raw_name
        if not _AR_NAME_RE.fullmatch(name) or ".." in name:
            raise InvalidPackage(
                f"ar member name {raw_name!r} is not allowed (path separators, '..',"
                " long-name tables and control characters are refused)"
            )
        raw_size = header[48:58].decode("ascii", "replace").strip()
        if not raw_size.isdigit():
            raise InvalidPackage(f"corrupt: ar member {name} has an invalid size {raw_size!r}")
        size = int(raw_size)
        data_at = pos + AR_HEADER_LEN
        if data_at + size > file_size:
            raise InvalidPackage(f"truncated: {name} ends early ({file_size - data_at} of {size} bytes present)")
        members.append(_Member(name, data_at, size))
        pos = data_at + size + (size & 1)
        if pos > file_size and name.startswith("data.tar"):
            pos = file_size  # a missing final pad byte is tolerated by dpkg
    return members


def _check_layout(members: list[_Member]) -> tuple[_Member, _Member, _Member]:
    """debian-binary, control.tar*, data.tar*, in that order; ``_`` members skipped, as by dpkg."""
    if not members:
        raise InvalidPackage("truncated: the ar archive has no members")
    first = members[0]
    if first.name != "debian-binary":
        raise InvalidPackage(f"not a Debian package: the first ar member is {first.name!r}, not debian-binary")
    rest = [m for m in members[1:] if not m.name.startswith("_")]
    if not rest:
        raise InvalidPackage("truncated: the file ends after debian-binary (no control member)")
    control = rest[0]
    if control.name not in CONTROL_MEMBERS:
        raise InvalidPackage(f"ar member {control.name!r} comes where control.tar[.gz|.xz|.zst] must be")
    if len(rest) < 2:
        raise InvalidPackage(f"truncated: the file ends after {control.name} (no data member)")
    data = rest[1]
    if data.name not in DATA_MEMBERS:
        raise InvalidPackage(f"ar member {data.name!r} comes where data.tar.* must be")
    if len(rest) > 2:  # '_' members may follow (debsigs appends _gpgorigin)
        raise InvalidPackage(f"unexpected ar member {rest[2].name!r} after {data.name}")
    return first, control, data


# --------------------------------------------------------------------------- decompression


class _Slice:
    """A read-only window on one ar member, so a decompressor cannot read past it."""

    def __init__(self, f: BinaryIO, offset: int, size: int):
        self.f, self.pos, self.end = f, offset, offset + size

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.end - self.pos
        n = min(n, self.end - self.pos)
        if n <= 0:
            return b""
        self.f.seek(self.pos)
        data = self.f.read(n)
        self.pos += len(data)
        return data


class _Decompressed:
    """A file-like object giving the decompressed bytes of a member, checking the stream ends
    properly (truncated or corrupt compressed data raises InvalidPackage) and its size cap."""

    CHUNK = 256 * 1024

    def __init__(self, src: _Slice, member: str, limit: int | None):
        self.src, self.member, self.limit = src, member, limit
        parts = member.split(".")
        self.kind = parts[2] if len(parts) > 2 else ""
        self.produced = 0
        self.buf = bytearray()  # deleting from the front of a bytearray is cheap
        self.done = False
        self._pending = b""
        self._ended = False  # the current compressed stream reached its end marker
        self._proc: subprocess.Popen | None = None
        self._feeder: threading.Thread | None = None
        self.dec = self._new_decoder()
        if self.kind == "zst":
            self._start_zstd()

    def _new_decoder(self):
        return _new_decoder(self.kind)

    def _start_zstd(self) -> None:
        # Python 3.11 has no zstd module: the zstd tool does it, fed from a thread.
        try:
            self._proc = subprocess.Popen(
                ["zstd", "-dcq"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise InvalidPackage(f"cannot check {self.member}: the zstd tool is not installed on the server") from None
        proc = self._proc

        def feed() -> None:
            try:
                while chunk := self.src.read(self.CHUNK):
                    proc.stdin.write(chunk)
            except OSError:
                pass  # zstd gave up early; its exit status says why
            finally:
                try:
                    proc.stdin.close()
                except OSError:
                    pass

        self._feeder = threading.Thread(target=feed, daemon=True)
        self._feeder.start()

    def _more(self) -> bytes:
        if self._proc is not None:
            data = self._proc.stdout.read(self.CHUNK)
            if not data:
                self._feeder.join()
                if self._proc.wait() != 0:
                    raise InvalidPackage(f"truncated or corrupt: {self.member} is not a complete zstd stream")
                self.done = True
            return data
        if self.dec is None:  # an uncompressed tar
            data = self.src.read(self.CHUNK)
            self.done = not data
            return data
        while True:
            raw = self._pending or self.src.read(self.CHUNK)
            self._pending = b""
            if self._ended:
                if not raw:
                    self.done = True
                    return b""
                if not raw.strip(b"\0"):
                    continue  # stream padding
                self.dec, self._ended = self._new_decoder(), False  # concatenated streams
            if not raw:
                raise InvalidPackage(f"truncated: {self.member} ends early (its compressed stream is incomplete)")
            try:
                out = self.dec.decompress(raw)
            except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as exc:
                raise InvalidPackage(f"corrupt: {self.member} does not decompress ({exc})") from None
            if self.dec.eof:
                self._pending, self._ended = self.dec.unused_data, True
            if out:
                return out

    def read(self, n: int = -1) -> bytes:
        want = n if n is not None and n >= 0 else 1 << 62
        while len(self.buf) < want and not self.done:
            chunk = self._more()
            self.produced += len(chunk)
            if self.limit is not None and self.produced > self.limit:
                raise InvalidPackage(f"{self.member} unpacks to more than {self.limit} bytes; refused")
            self.buf += chunk
        out = bytes(self.buf[:want])
        del self.buf[:want]
        return out

    def drain(self) -> None:
        """Read to the end: a tar archive may stop before its compressed stream does."""
        while not self.done:
            self.read(self.CHUNK)
            self.buf.clear()

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            self._proc.stdout.close()
            if self._feeder:
                self._feeder.join()


# --------------------------------------------------------------------------- tar members

FAST_MEMBER_BYTES = 8 << 20  # compressed members up to this are decompressed in one call
FAST_UNPACKED_BYTES = 64 << 20
_ZERO_BLOCK = bytes(512)
# tar type flags (header byte 156) -> what the checks need to know
_TAR_KINDS = {0: "file", 48: "file", 55: "file", 53: "dir", 50: "symlink", 49: "hardlink", 51: "other", 52: "other",
              54: "other"}  # fmt: skip


class _TarEntry(NamedTuple):  # a tuple: made for every header, and a frozen dataclass costs 3x more
    name: str
    kind: str  # file, dir, symlink, hardlink, other
    linkname: str
    size: int
    offset: int = 0  # where a file's bytes start in the tar (in-memory reading only)


def _tar_name_problem(name: str) -> str | None:
    if "\0" in name:
        return "contains a NUL byte"
    parts = name.split("/")
    if ".." in parts:
        return "has a '..' component"
    return None


def _new_decoder(kind: str):
    if kind == "gz":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind in ("xz", "lzma"):
        return lzma.LZMADecompressor()
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    return None


def _member_bytes(f: BinaryIO, member: _Member, limit: int | None) -> bytes | None:
    """The decompressed member, when it is small and one clean stream; None when the streaming reader
    must decide (zstd, concatenated streams, padding, damage, larger members): it gives the precise
    reason for a refusal, this only takes the common case in one call."""
    if member.size > FAST_MEMBER_BYTES:
        return None
    kind = member.name.split(".")[2] if member.name.count(".") >= 2 else ""
    cap = FAST_UNPACKED_BYTES if limit is None else min(limit, FAST_UNPACKED_BYTES)
    f.seek(member.offset)
    data = f.read(member.size)
    if kind == "":
        return data if len(data) <= cap else None
    dec = _new_decoder(kind)
    if dec is None:
        return None
    try:
        out = dec.decompress(data, cap + 1)
    except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError):
        return None
    if len(out) > cap or not dec.eof or dec.unused_data:
        return None
    return out


def _tar_entries(raw: bytes) -> list[_TarEntry] | None:
    """The entries of a tar held in memory, read from plain ustar and GNU headers only.

    Why not tarfile here: tarfile costs about 14 us a header, most of the time it takes to check a
    small package. Whatever this does not fully understand (pax or GNU long-name headers, a ustar
    prefix, base-256 numbers, non-ASCII names, a bad checksum, a missing end marker) gives None, and
    tarfile reads the member instead: this can only agree with tarfile or step aside
    (test_debfile checks both on real and damaged archives).
    """
    entries: list[_TarEntry] = []
    pos, end = 0, len(raw)
    while True:
        if pos + 512 > end:
            return None
        header = raw[pos : pos + 512]
        if header == _ZERO_BLOCK:
            return entries
        magic = header[257:265]
        if (magic != b"ustar  \0" and magic[:6] != b"ustar\0") or header[345:500].strip(b"\0"):
            return None
        kind = _TAR_KINDS.get(header[156])
        if kind is None:
            return None
        try:
            stored = int(header[148:156].strip(b" \0"), 8)
            size = int(header[124:136].strip(b" \0") or b"0", 8)
        except ValueError:
            return None
        if stored != sum(header) - sum(header[148:156]) + 256:
            return None
        name_raw = header[:100].split(b"\0", 1)[0]
        link_raw = header[157:257].split(b"\0", 1)[0]
        if not (name_raw.isascii() and link_raw.isascii()):
            return None
        name = name_raw.decode("ascii")
        if header[156] == 0 and name.endswith("/"):
            kind = "dir"  # as tarfile: an old-style regular entry named like a directory
        if kind == "dir":
            name = name.rstrip("/")
        data_at = pos + 512
        if kind == "file":
            if data_at + size > end:
                return None
            pos = data_at + (size + 511) // 512 * 512
        else:
            pos = data_at
        entries.append(_TarEntry(name, kind, link_raw.decode("ascii"), size, data_at))


def _entry_of(info: tarfile.TarInfo) -> _TarEntry:
    if info.isreg():
        kind = "file"
    elif info.isdir():
        kind = "dir"
    elif info.issym():
        kind = "symlink"
    elif info.islnk():
        kind = "hardlink"
    else:
        kind = "other"
    return _TarEntry(info.name, kind, info.linkname, info.size)


def _is_control(member: str, entry: _TarEntry) -> bool:
    """Check one entry of the control tarball; True when it is the control file."""
    problem = _tar_name_problem(entry.name)
    if problem or entry.name.startswith("/"):
        raise InvalidPackage(f"{member} entry {entry.name!r} {problem or 'is an absolute path'}")
    if entry.kind == "hardlink" and _tar_name_problem(entry.linkname):
        raise InvalidPackage(f"{member} hard link {entry.name!r} points outside")
    name = entry.name[2:] if entry.name.startswith("./") else entry.name
    if name != "control":
        return False
    if entry.kind != "file":
        raise InvalidPackage(f"{member}: control is not a regular file")
    if entry.size > MAX_CONTROL_FILE_BYTES:
        raise InvalidPackage(f"{member}: the control file is over 1 MiB")
    return True


def _check_data_entry(member: str, entry: _TarEntry) -> None:
    problem = _tar_name_problem(entry.name)
    if problem:
        raise InvalidPackage(f"{member} entry {entry.name!r} {problem}")
    if entry.kind == "hardlink" and _tar_name_problem(entry.linkname):
        raise InvalidPackage(f"{member} hard link {entry.name!r} -> {entry.linkname!r} escapes")


def _read_control_tar(f: BinaryIO, member: _Member) -> str:
    raw = _member_bytes(f, member, MAX_CONTROL_TAR_BYTES)
    entries = _tar_entries(raw) if raw is not None else None
    control: bytes | None = None
    if entries is not None:
        for entry in entries:
            if _is_control(member.name, entry):
                if control is not None:
                    raise InvalidPackage(f"{member.name} holds two control files")
                control = raw[entry.offset : entry.offset + entry.size]
    else:
        control = _read_control_tar_stream(f, member, raw)
    if control is None:
        raise InvalidPackage(f"{member.name} has no control file")
    try:
        return control.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPackage("control file is not valid UTF-8") from None


def _read_control_tar_stream(f: BinaryIO, member: _Member, raw: bytes | None) -> bytes | None:
    stream = (
        io.BytesIO(raw)
        if raw is not None
        else _Decompressed(_Slice(f, member.offset, member.size), member.name, MAX_CONTROL_TAR_BYTES)
    )
    control: bytes | None = None
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for info in tar:
                if not _is_control(member.name, _entry_of(info)):
                    continue
                if control is not None:
                    raise InvalidPackage(f"{member.name} holds two control files")
                control = tar.extractfile(info).read()
                if len(control) != info.size:
                    raise InvalidPackage(f"truncated: {member.name} ends inside the control file")
        if isinstance(stream, _Decompressed):
            stream.drain()
    except tarfile.TarError as exc:
        raise InvalidPackage(f"corrupt: {member.name} is not a valid tar archive ({exc})") from None
    finally:
        if isinstance(stream, _Decompressed):
            stream.close()
    return control


def _check_data_tar(f: BinaryIO, member: _Member, limit: int | None) -> None:
    """Decompress the whole payload: dpkg-deb --info never reads it, so this is our only check
    that the files an agent will unpack are actually there."""
    raw = _member_bytes(f, member, limit)
    entries = _tar_entries(raw) if raw is not None else None
    if entries is not None:
        for entry in entries:
            _check_data_entry(member.name, entry)
        return
    stream = (
        io.BytesIO(raw) if raw is not None else _Decompressed(_Slice(f, member.offset, member.size), member.name, limit)
    )
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for info in tar:
                _check_data_entry(member.name, _entry_of(info))
        if isinstance(stream, _Decompressed):
            stream.drain()
    except tarfile.TarError as exc:
        raise InvalidPackage(f"corrupt: {member.name} is not a valid tar archive ({exc})") from None
    except EOFError:
        raise InvalidPackage(f"truncated: {member.name} ends early") from None
    finally:
        if isinstance(stream, _Decompressed):
            stream.close()


# --------------------------------------------------------------------------- second opinions

TOOL_TIMEOUT = 600  # seconds, for a whole batch
_ERRORS_APPLY_RE = re.compile(r"Errors apply to file '/?(.+)'$")
_DPKG_AT_RE = re.compile(r"near line (\d+)(?: package '[^']*')?:\s*(.*)", re.S)


def _tool_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "APT_CONFIG": os.devnull}


class SecondOpinion:
    """What the Debian tools make of a batch of packages, each tool run once for the whole batch.

    1. ``apt-ftparchive packages`` (libapt-inst, the reader Debian-style archive tools use) opens
       every file on its own -- ar container, control tarball, control file -- and must find the
       same Package, Version, Architecture, Size and SHA256 as our parser. The SHA-256 also proves
       it read the very bytes we checked and store, even if the file changed in between.
    2. ``dpkg --merge-avail`` parses every control paragraph with dpkg's own field parsers, in a
       throwaway admin directory: what ``dpkg-deb --show`` refused in a control file (a Depends
       dpkg cannot parse, a Status field, ...) is refused here too.

    ``dpkg-deb --show`` per file did both for one package at a time and cost ~8 ms each, most of a
    bulk upload; see the repos README ("Second opinion"). Start it before our own checks:
    apt-ftparchive then reads on the other core while Python parses.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], *, workdir: str | os.PathLike | None = None):
        self.tmp = Path(tempfile.mkdtemp(prefix="uus-check-", dir=workdir))
        if any(c in str(self.tmp) for c in '"\n\\'):  # it is quoted in apt-ftparchive's configuration
            shutil.rmtree(self.tmp)
            self.tmp = Path(tempfile.mkdtemp(prefix="uus-check-"))
        self.proc: subprocess.Popen | None = None
        self.paths = [os.path.abspath(p) for p in paths]
        # a list of files, not a directory of links to them: a link per file cost ~0.1 ms each
        # on a busy disk, most of the second opinion
        listed = [p for p in self.paths if "\n" not in p]
        (self.tmp / "files").write_text("".join(p + "\n" for p in listed), encoding="utf-8", errors="surrogateescape")
        (self.tmp / "apt.conf").write_text("")
        (self.tmp / "generate.conf").write_text(
            'Dir { ArchiveDir "/"; };\n'
            'Default { Packages::Compress "."; };\n'
            f'BinDirectory "/" {{ Packages "{self.tmp}/packages"; FileList "{self.tmp}/files"; }};\n'
        )
        self.err = open(self.tmp / "errors", "w+b")  # a file, not a pipe: a full pipe would stall it
        try:
            self.proc = subprocess.Popen(
                ["apt-ftparchive", "-q=2", "generate", str(self.tmp / "generate.conf")],
                cwd=self.tmp,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self.err,
                env={**_tool_env(), "APT_CONFIG": str(self.tmp / "apt.conf")},
            )
        except FileNotFoundError:
            self.proc = None

    def finish(self, infos: Sequence[DebInfo | None]) -> list[str | None]:
        """For each file (None where our own checks already refused it): None when the tools
        agree with our parser, else why the file is refused."""
        try:
            read = self._apt_ftparchive(len(infos))
            reasons: list[str | None] = []
            for i, info in enumerate(infos):
                reasons.append(None if info is None else self._compare(info, read.get(i)))
            pending = [(i, info) for i, info in enumerate(infos) if info is not None and reasons[i] is None]
            for i, reason in self._dpkg_parse(pending).items():
                reasons[i] = reason
            return reasons
        finally:
            self.close()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.err.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _apt_ftparchive(self, n: int) -> dict[int, dict[str, str] | str]:
        """What apt-ftparchive read from each file: its stanza, or what it said about the file."""
        if self.proc is None:
            return dict.fromkeys(range(n), "cannot check it: apt-ftparchive (apt-utils) is not installed")
        try:
            self.proc.wait(TOOL_TIMEOUT)
        except subprocess.TimeoutExpired:
            return dict.fromkeys(range(n), f"apt-ftparchive took longer than {TOOL_TIMEOUT} s; refused")
        waiting: dict[str, list[int]] = {}
        for i, path in enumerate(self.paths):
            waiting.setdefault(path, []).append(i)

        def index_of(name: str) -> int | None:
            queue = waiting.get(os.path.normpath("/" + name)) or waiting.get(os.path.realpath("/" + name))
            return queue.pop(0) if queue else None

        read: dict[int, dict[str, str] | str] = {}
        try:
            listing = (self.tmp / "packages").read_bytes().decode("utf-8", "surrogateescape")
        except FileNotFoundError:
            listing = ""
        for para in listing.split("\n\n"):
            fields = {}
            for line in para.split("\n"):
                if line and line[0] not in " \t":
                    name, _, value = line.partition(":")
                    fields[name] = value.strip()
            i = index_of(fields["Filename"]) if fields.get("Filename") else None
            if i is not None:
                read[i] = fields
        self.err.seek(0)
        said: list[str] = []
        for line in self.err.read().decode("utf-8", "replace").splitlines():
            m = _ERRORS_APPLY_RE.search(line)
            if m:
                i = index_of(m.group(1))
                if i is not None:
                    read[i] = "; ".join(said) or "it cannot read it"
                said = []
            elif line.startswith("E: "):
                said.append(line[3:].strip())
        for line in said:  # "Could not open file /x.deb ...": no "Errors apply" line follows
            for path, queue in waiting.items():
                if queue and path in line:
                    read[queue.pop(0)] = line
        return read

    @staticmethod
    def _compare(info: DebInfo, got: dict[str, str] | str | None) -> str | None:
        if not isinstance(got, dict):
            return f"apt-ftparchive cannot read the package: {got or 'it is not in its listing'}"
        ours = (info.package, info.version, info.architecture, str(info.size), info.sha256)
        theirs = tuple(got.get(k, "") for k in ("Package", "Version", "Architecture", "Size", "SHA256"))
        if theirs == ours:
            return None
        if theirs[3:] != ours[3:]:
            return "the file changed while it was being checked"
        return f"apt-ftparchive reads {'/'.join(theirs[:3])!r}, not {'/'.join(ours[:3])}; refused"

    def _dpkg_parse(self, items: list[tuple[int, DebInfo]]) -> dict[int, str]:
        admin = self.tmp / "dpkg"
        (admin / "updates").mkdir(parents=True)
        for name in ("status", "available"):
            (admin / name).touch()
        reasons: dict[int, str] = {}
        remaining = list(items)
        while remaining:
            starts, line, parts = [], 1, []
            for _i, info in remaining:
                starts.append(line)
                parts.append(info.control + "\n")
                line += info.control.count("\n") + 1
            avail = self.tmp / "avail"
            avail.write_text("".join(parts), encoding="utf-8")
            try:
                proc = subprocess.run(
                    ["dpkg", f"--admindir={admin}", "--merge-avail", str(avail)],
                    capture_output=True,
                    timeout=TOOL_TIMEOUT,
                    env=_tool_env(),
                    check=False,
                )
            except FileNotFoundError:
                return {i: "cannot check the control file: dpkg is not installed" for i, _ in remaining} | reasons
            except subprocess.TimeoutExpired:
                return {i: f"dpkg took longer than {TOOL_TIMEOUT} s; refused" for i, _ in remaining} | reasons
            if proc.returncode == 0:
                break
            message = " ".join(proc.stderr.decode("utf-8", "replace").split()) or "(no message)"
            m = _DPKG_AT_RE.search(message)
            if m is None:  # not about one paragraph: refuse what is left rather than guess
                return {i: f"dpkg refuses the control file: {message[:400]}" for i, _ in remaining} | reasons
            k = bisect.bisect_right(starts, int(m.group(1))) - 1
            reasons[remaining[k][0]] = f"dpkg refuses the control file: {m.group(2)[:400]}"
            del remaining[k]
        return reasons


# --------------------------------------------------------------------------- entry point

IN_MEMORY_BYTES = 64 << 20  # files up to this size are read once and checked from memory


def _hash_file(f: BinaryIO, size: int) -> tuple[str, str, str]:
    sha256, md5, sha1 = hashlib.sha256(), hashlib.md5(), hashlib.sha1()
    f.seek(0)
    seen = 0
    while chunk := f.read(1024 * 1024):
        seen += len(chunk)
        sha256.update(chunk)
        md5.update(chunk)
        sha1.update(chunk)
    if seen != size:
        raise InvalidPackage("the file changed while it was being read")
    return sha256.hexdigest(), md5.hexdigest(), sha1.hexdigest()


def inspect_deb(
    path: str | os.PathLike,
    max_bytes: int,
    *,
    max_unpacked_bytes: int | None = None,
    second_opinion: bool = True,
) -> DebInfo:
    """Validate the ``.deb`` at ``path`` and describe it, or raise :class:`InvalidPackage`.

    ``max_bytes`` limits the file's real size; ``max_unpacked_bytes`` (default 64 x max_bytes,
    at least 1 GiB) caps what the payload may decompress to, against decompression bombs.
    ``second_opinion=False`` leaves out the Debian tools (:class:`SecondOpinion`), for a caller
    that runs them once over a whole batch.
    """
    info, _data = read_deb(path, max_bytes, max_unpacked_bytes=max_unpacked_bytes)
    if second_opinion:
        reason = SecondOpinion([path]).finish([info])[0]
        if reason:
            raise InvalidPackage(reason)
    return info


def read_deb(
    path: str | os.PathLike, max_bytes: int, *, max_unpacked_bytes: int | None = None
) -> tuple[DebInfo, bytes | None]:
    """Our own checks of :func:`inspect_deb` (no second opinion), and the bytes they were made on
    when the file is small enough to be read whole: a caller storing those stores what was checked."""
    path = Path(path)
    if max_unpacked_bytes is None:
        max_unpacked_bytes = max(64 * max_bytes, 1 << 30)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise InvalidPackage(f"cannot open the upload: {exc.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise InvalidPackage("not a Debian package: not a regular file")
    with os.fdopen(fd, "rb") as fh:
        size = st.st_size
        if size > max_bytes:
            raise InvalidPackage(f"too large: {size} bytes, the limit is {max_bytes} bytes")
        if size == 0:
            raise InvalidPackage("not a Debian package: the file is empty")
        data = None
        if size <= IN_MEMORY_BYTES:
            data = fh.read(size + 1)
            if len(data) != size:
                raise InvalidPackage("the file changed while it was being read")
        return _inspect(io.BytesIO(data) if data is not None else fh, size, data, max_unpacked_bytes), data


def _inspect(f: BinaryIO, size: int, data: bytes | None, max_unpacked_bytes: int) -> DebInfo:
    members = _ar_members(f, size)
    binary, control_m, data_m = _check_layout(members)
    f.seek(binary.offset)
    if f.read(binary.size) != b"2.0\n":
        raise InvalidPackage("debian-binary does not say 2.0: not a format dpkg reads")

    control_text = _read_control_tar(f, control_m)
    fields = parse_control(control_text)
    _check_control(fields)
    _check_data_tar(f, data_m, max_unpacked_bytes)
    if data is not None:
        sha256, md5, sha1 = (
            hashlib.sha256(data).hexdigest(),
            hashlib.md5(data).hexdigest(),
            hashlib.sha1(data).hexdigest(),
        )
    else:
        sha256, md5, sha1 = _hash_file(f, size)

    by_lower = _lowered(fields)
    package, version, arch = by_lower["package"], by_lower["version"], by_lower["architecture"]
    source, source_version = package, version
    if by_lower.get("source"):
        m = _SOURCE_RE.fullmatch(by_lower["source"])
        source = m.group(1)
        source_version = m.group(2) or version
    installed = by_lower.get("installed-size", "")
    return DebInfo(
        package=package,
        version=version,
        architecture=arch,
        source=source,
        source_version=source_version,
        maintainer=by_lower["maintainer"],
        description=by_lower["description"].split("\n", 1)[0].strip(),
        section=by_lower.get("section", ""),
        priority=by_lower.get("priority", ""),
        installed_size=int(installed) if installed else None,
        depends=by_lower.get("depends", "").replace("\n", " "),
        control=control_text.rstrip("\n") + "\n",
        fields=fields,
        size=size,
        sha256=sha256,
        md5=md5,
        sha1=sha1,
        control_member=control_m.name,
        data_member=data_m.name,
    )
