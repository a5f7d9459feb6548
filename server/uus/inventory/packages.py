"""Inventory entries as plain tuples: validation, the inventory hash and the chunking of an inventory.

An entry is (name, architecture, version, source, source_version, status), exactly the six fields of
protocol/v1 "package object". The inventory hash is the sha256 hex digest of the lines
"name\\tarchitecture\\tversion\\tsource\\tsource_version\\tstatus\\n" sorted by (name, architecture);
the agent computes the same (uus_agent/dpkg.py) and the protocol's examples are a test vector.

Chunks: an inventory is split into BUCKETS slices by a stable hash of the package name; each slice is
addressed by the sha256 of its lines (see docs/decisions/0003-inventory-storage.md).
"""

from __future__ import annotations

import hashlib
import itertools
import operator
import re
import zlib
from collections.abc import Iterable

from uus.core.debversion import is_valid_version

from .choices import STATUS_CODES
from .exceptions import InvalidInventory

Entry = tuple[str, str, str, str, str, str]
FIELDS = ("name", "architecture", "version", "source", "source_version", "status")
BUCKETS = 32

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9+.-]{0,254}\Z")  # Debian policy 5.6.1 (dpkg also allows 1 char)
_ARCH_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}\Z")
_MAX_VERSION = 255

# Versions and names repeat across a fleet; remembering the ones already checked keeps validation of a
# 2,000-package upload well under a millisecond. Bounded: cleared when it grows too large.
_VALID_VERSIONS: set[str] = set()
_VALID_ENTRIES: set[Entry] = set()  # whole entries, status included
_fields_of = operator.itemgetter(*FIELDS)  # a package object's six fields as an Entry, in one call
_CACHE_LIMIT = 500_000


def valid_name(name: object) -> bool:
    return isinstance(name, str) and _NAME_RE.match(name) is not None


def valid_architecture(arch: object) -> bool:
    return isinstance(arch, str) and _ARCH_RE.match(arch) is not None


def valid_version(version: object) -> bool:
    """A version dpkg accepts (it only warns about policy, e.g. a non-digit start; so do we)."""
    if version in _VALID_VERSIONS:
        return True
    if not isinstance(version, str) or len(version) > _MAX_VERSION or not is_valid_version(version, strict=False):
        return False
    if len(_VALID_VERSIONS) >= _CACHE_LIMIT:
        _VALID_VERSIONS.clear()
    _VALID_VERSIONS.add(version)
    return True


def _entry_problem(p: object) -> str | None:
    if not isinstance(p, dict):
        return "must be an object"
    for f in FIELDS:
        if not isinstance(p.get(f), str):
            return f"{f} is missing or not a string"
    if not valid_name(p["name"]):
        return f"invalid package name {p['name']!r}"
    if not valid_architecture(p["architecture"]):
        return f"invalid architecture {p['architecture']!r}"
    if not valid_version(p["version"]):
        return f"invalid Debian version {p['version']!r}"
    if not valid_name(p["source"]):
        return f"invalid source package name {p['source']!r}"
    if not valid_version(p["source_version"]):
        return f"invalid Debian source version {p['source_version']!r}"
    if p["status"] not in STATUS_CODES:
        return f"unknown dpkg status {p['status']!r} (one of {', '.join(STATUS_CODES)})"
    return None


def entries_from_json(packages: object, field: str = "packages") -> list[Entry]:
    """Validate a list of protocol package objects; returns entries sorted by (name, architecture).

    Raises InvalidInventory naming every bad entry (up to 20), so nothing half-valid is stored.
    """
    if not isinstance(packages, list):
        raise InvalidInventory(f"{field} must be a list of package objects", details={field: "not a list"})
    known = _VALID_ENTRIES
    try:  # fast path: a fleet repeats the same packages, each checked once per process
        entries = list(map(_fields_of, packages))
        is_known = known.issuperset(entries)
    except (TypeError, KeyError):  # not an object, a field missing, or an unhashable value
        is_known = False
    if not is_known:
        entries = _entries_checked(packages, field)
    entries.sort()  # by (name, architecture): the same pair twice is refused below
    for a, b in itertools.pairwise(entries):
        if a[0] == b[0] and a[1] == b[1]:
            raise InvalidInventory(f"{field} lists {a[0]}:{a[1]} twice", details={field: f"duplicate {a[0]}:{a[1]}"})
    return entries


def _entries_checked(packages: list, field: str) -> list[Entry]:
    """Each entry validated (those already known skip it); InvalidInventory names up to 20 bad ones."""
    known = _VALID_ENTRIES
    entries: list[Entry] = []
    problems: dict[str, str] = {}
    for i, p in enumerate(packages):
        try:
            e = _fields_of(p)
            if e in known:
                entries.append(e)
                continue
        except (TypeError, KeyError):
            pass
        problem = _entry_problem(p)
        if problem:
            problems[f"{field}[{i}]"] = problem
            if len(problems) >= 20:
                break
            continue
        e = _fields_of(p)
        if len(known) >= _CACHE_LIMIT:
            known.clear()
        known.add(e)
        entries.append(e)
    if problems:
        first = next(iter(problems.items()))
        raise InvalidInventory(f"invalid package in {first[0]}: {first[1]}", details=problems)
    return entries


def keys_from_json(removed: object, field: str = "removed") -> list[tuple[str, str]]:
    if not isinstance(removed, list):
        raise InvalidInventory(f"{field} must be a list", details={field: "not a list"})
    keys = []
    for i, r in enumerate(removed):
        if not isinstance(r, dict) or not valid_name(r.get("name")) or not valid_architecture(r.get("architecture")):
            raise InvalidInventory(
                f"{field}[{i}] must be {{name, architecture}} with a valid package name",
                details={f"{field}[{i}]": "invalid"},
            )
        keys.append((r["name"], r["architecture"]))
    return keys


def _key(e: Entry) -> tuple[str, str]:
    return (e[0], e[1])


def line(e: Entry) -> str:
    return "\t".join(e) + "\n"


def _lines(entries: Iterable[Entry]) -> bytes:
    """The lines of `entries`, joined: the same as "".join(map(line, entries)), without a Python call per entry."""
    text = "\n".join(map("\t".join, entries))
    return (text + "\n").encode() if text else b""


def inventory_hash(entries: Iterable[Entry]) -> str:
    """The protocol's inventory hash; `entries` must already be sorted by (name, architecture)."""
    return hashlib.sha256(_lines(entries)).hexdigest()


def bucket(name: str) -> int:
    return zlib.crc32(name.encode()) % BUCKETS


def split_chunks(entries: list[Entry]) -> dict[str, list[Entry]]:
    """{chunk digest: its entries} for sorted entries; empty buckets make no chunk."""
    buckets: dict[int, list[Entry]] = {}
    for e in entries:
        buckets.setdefault(bucket(e[0]), []).append(e)
    return {hashlib.sha256(_lines(b)).hexdigest(): b for b in buckets.values()}


def apply_delta(base: list[Entry], added: list[Entry], removed: list[tuple[str, str]]) -> list[Entry]:
    """What a delta upload means: drop `removed` keys, then add or replace `added`; sorted result."""
    by_key = {_key(e): e for e in base}
    for k in removed:
        by_key.pop(k, None)
    for e in added:
        by_key[_key(e)] = e
    return [by_key[k] for k in sorted(by_key)]
