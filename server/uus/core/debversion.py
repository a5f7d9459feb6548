"""Debian version strings: validation, dpkg's comparison, and a byte sort key.

Why a byte key: "installed < fixed" must run inside the database, on an index, for whole fleets.
SQLite (BLOB) and PostgreSQL (bytea) both order binary values with memcmp, so `version_key(v)` maps a
version to bytes whose plain bytewise order is exactly `dpkg --compare-versions` order. The
tests prove it against the real dpkg on thousands of real versions (docs/decisions: version key).

Encoding (each element is self-delimiting, so two keys stay aligned while their bytes are equal):

    key      = NUMBER(epoch) PART(upstream) PART(revision)
    PART     = (TEXT NUMBER)+ 0x02          one or more (non-digit run, digit run) pairs, then 0x02
    TEXT     = mapped chars, then 0x02      '~' -> 0x01, letters -> ASCII, others -> 0x80 + ASCII
    NUMBER   = length, digits               leading zeros dropped, so 0 and "" are length 0;
                                            length < 255 is one byte, else 0xFF + 4-byte big-endian

dpkg weighs '~' below the end of a non-digit run, which is below letters, which are below every
other character: 0x01 < 0x02 < letters (0x41-0x7A) < others (0xAB-0xFE) keeps that order. A string
that has ended behaves like endless ("", 0) pairs in dpkg; its final 0x02 therefore sorts above a
following '~' and below any other continuation, as in dpkg. Every PART has at least one pair, so
"1.0" (no revision) and "1.0-0" get the same key, as do "1.0a" and "1.0a0". No key is a proper
prefix of another, so the first differing byte always decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from uus.core.exceptions import UusError

__all__ = [
    "DebVersion",
    "InvalidVersion",
    "compare",
    "is_valid_version",
    "parse_version",
    "version_key",
]

_INT_MAX = 2**31 - 1  # dpkg refuses larger epochs
_UPSTREAM_OK = re.compile(r"[0-9A-Za-z.+~:-]*\Z")
_REVISION_OK = re.compile(r"[0-9A-Za-z.+~]*\Z")
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+\Z")
_PAIRS = re.compile(r"([^0-9]*)([0-9]*)")

# Non-digit characters as dpkg weighs them (lib/dpkg/version.c, order()).
_TEXT_MAP = bytes(
    0x01 if c == ord("~") else c if chr(c).isalpha() and c < 0x80 else (0x80 + c) & 0xFF for c in range(256)
)
_END_TEXT = 0x02


class InvalidVersion(UusError, ValueError):
    """A string that is not a Debian version; the message says why, in dpkg's words."""

    code = "invalid_version"

    def __init__(self, version: object, reason: str):
        super().__init__(f"invalid Debian version {version!r}: {reason}")
        self.version = version
        self.reason = reason


@dataclass(frozen=True)
class DebVersion:
    """The three parts of a version; `revision` is "" when there is none."""

    epoch: int
    upstream: str
    revision: str

    def __str__(self) -> str:
        text = f"{self.epoch}:{self.upstream}" if self.epoch else self.upstream
        return f"{text}-{self.revision}" if self.revision else text


def parse_version(version: str, *, strict: bool = False) -> DebVersion:
    """Split `version` as dpkg does, raising InvalidVersion where dpkg reports an error.

    dpkg only warns (and still compares) when the upstream part does not start with a digit or a
    part holds a character outside policy; `strict=True` refuses those too. Whitespace and
    non-ASCII characters are always refused: no real archive has them and a key must be exact.
    """
    if not isinstance(version, str):
        raise InvalidVersion(version, "not a string")
    if not version:
        raise InvalidVersion(version, "version string is empty")
    if not _PRINTABLE_ASCII.match(version):
        raise InvalidVersion(version, "contains whitespace, control or non-ASCII characters")
    epoch = 0
    rest = version
    if ":" in version:
        epoch_text, rest = version.split(":", 1)
        if not epoch_text:
            raise InvalidVersion(version, "epoch in version is empty")
        if not epoch_text.isdigit():
            raise InvalidVersion(version, "epoch in version is not number")
        epoch = int(epoch_text)
        if epoch > _INT_MAX:
            raise InvalidVersion(version, "epoch in version is too big")
        if not rest:
            raise InvalidVersion(version, "nothing after colon in version number")
    upstream, hyphen, revision = rest.rpartition("-")
    if not hyphen:
        upstream, revision = rest, ""
    elif not revision:
        raise InvalidVersion(version, "revision number is empty")
    if not upstream:
        raise InvalidVersion(version, "version number is empty")
    if strict:
        if not upstream[0].isdigit():
            raise InvalidVersion(version, "version number does not start with digit")
        if not _UPSTREAM_OK.match(upstream):
            raise InvalidVersion(version, "invalid character in version number")
        if not _REVISION_OK.match(revision):
            raise InvalidVersion(version, "invalid character in revision number")
    return DebVersion(epoch, upstream, revision)


def is_valid_version(version: object, *, strict: bool = True) -> bool:
    """True when `version` is a well-formed Debian version (strict: dpkg would not even warn)."""
    try:
        parse_version(version, strict=strict)  # type: ignore[arg-type]
    except InvalidVersion:
        return False
    return True


def _number(digits: str, out: bytearray) -> None:
    digits = digits.lstrip("0")
    n = len(digits)
    if n < 0xFF:
        out.append(n)
    else:
        out.append(0xFF)
        out += n.to_bytes(4, "big")
    out += digits.encode("ascii")


def _part(text: str, out: bytearray) -> None:
    pairs = 0
    for m in _PAIRS.finditer(text):
        chars, digits = m.group(1), m.group(2)
        if not chars and not digits and pairs:
            break  # the empty match at the end of the string
        out += chars.encode("ascii").translate(_TEXT_MAP)
        out.append(_END_TEXT)
        _number(digits, out)
        pairs += 1
        if m.end() == len(text):
            break
    out.append(_END_TEXT)


def version_key(version: str) -> bytes:
    """Bytes whose bytewise order is dpkg's version order (equal keys <=> dpkg "eq")."""
    v = parse_version(version)
    out = bytearray()
    _number(str(v.epoch), out)
    _part(v.upstream, out)
    _part(v.revision, out)
    return bytes(out)


def _order(c: str) -> int:
    if not c or c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    if c == "~":
        return -1
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    """dpkg's verrevcmp(), character for character; the reference the key is tested against."""
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        first_diff = 0
        while (i < la and not a[i].isdigit()) or (j < lb and not b[j].isdigit()):
            ac = _order(a[i] if i < la else "")
            bc = _order(b[j] if j < lb else "")
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < la and a[i] == "0":
            i += 1
        while j < lb and b[j] == "0":
            j += 1
        while i < la and j < lb and a[i].isdigit() and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < la and a[i].isdigit():
            return 1
        if j < lb and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as `a` is lower than, equal to or higher than `b` in dpkg's order."""
    va, vb = parse_version(a), parse_version(b)
    if va.epoch != vb.epoch:
        return -1 if va.epoch < vb.epoch else 1
    r = _verrevcmp(va.upstream, vb.upstream) or _verrevcmp(va.revision, vb.revision)
    return (r > 0) - (r < 0)
