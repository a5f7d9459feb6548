"""Read dpkg's database directly and turn it into the inventory the server stores.

Reading ROOT/var/lib/dpkg/status ourselves (instead of calling dpkg-query) keeps the agent fast on
fleets of test roots and lets it work on a root whose dpkg is not runnable; the tests prove the
result equals dpkg-query's ${source:Package}/${source:Version}/${db:Status-Status} exactly.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

# The fields of one inventory entry, in the order the hash uses them.
PACKAGE_FIELDS = ("name", "architecture", "version", "source", "source_version", "status")

# dpkg states in which the package's files are not on the machine: a job's "before"/"after" is null.
ABSENT_STATES = ("not-installed", "config-files")

_SOURCE_RE = re.compile(r"^(\S+)(?:\s*\((.*)\))?\s*$")

Key = Tuple[str, str]


def admindir(root: str) -> str:
    return os.path.join(root, "var/lib/dpkg")


def status_path(root: str) -> str:
    return os.path.join(admindir(root), "status")


def iter_stanzas(text: str) -> Iterator[Dict[str, str]]:
    """Yield deb822 stanzas as {lower-case field: value}; continuation lines are joined with '\\n'.

    Field names are case-insensitive in deb822 (dpkg accepts "package:"), hence the lower-casing.
    """
    fields: Dict[str, str] = {}
    last: Optional[str] = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, None
            continue
        if line[0] in " \t":
            if last is not None:
                fields[last] += "\n" + line[1:]
            continue
        if line.startswith("#"):
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        last = name.strip().lower()
        fields[last] = value.strip()
    if fields:
        yield fields


def package_from_stanza(st: Dict[str, str]) -> Optional[Dict[str, str]]:
    """One inventory entry, or None for stanzas dpkg-query -W does not list (not-installed)."""
    name = st.get("package", "")
    status_words = st.get("status", "").split()
    state = status_words[2] if len(status_words) >= 3 else ""
    if not name or state == "not-installed":
        return None
    version = st.get("version", "")
    source, source_version = name, version
    m = _SOURCE_RE.match(st.get("source", ""))
    if m:
        source = m.group(1)
        if m.group(2) is not None:
            source_version = m.group(2).strip()
    return {
        "name": name,
        "architecture": st.get("architecture", ""),
        "version": version,
        "source": source,
        "source_version": source_version,
        "status": state,
    }


def parse_status_text(text: str) -> List[Dict[str, str]]:
    packages = [p for p in (package_from_stanza(st) for st in iter_stanzas(text)) if p]
    packages.sort(key=lambda p: (p["name"], p["architecture"]))
    return packages


def read_inventory(root: str) -> List[Dict[str, str]]:
    """The machine's package list, sorted by (name, architecture); empty when dpkg has no status."""
    try:
        with open(status_path(root), encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    return parse_status_text(text)


def canonical_lines(packages: Iterable[Dict[str, str]]) -> str:
    return "".join("\t".join(p[f] or "" for f in PACKAGE_FIELDS) + "\n" for p in packages)


def inventory_hash(packages: List[Dict[str, str]]) -> str:
    """sha256 of the sorted canonical lines: server and agent must compute the same value."""
    ordered = sorted(packages, key=lambda p: (p["name"], p["architecture"]))
    return hashlib.sha256(canonical_lines(ordered).encode("utf-8")).hexdigest()


def key_of(p: Dict[str, str]) -> Key:
    return (p["name"], p["architecture"])


def compute_delta(
    base: List[Dict[str, str]], current: List[Dict[str, str]]
) -> Tuple[List[Dict[str, str]], List[Dict[str, str]]]:
    """(added, removed): entries new or changed in any field, and (name, architecture) keys gone."""
    old = {key_of(p): p for p in base}
    new = {key_of(p): p for p in current}
    added = [p for k, p in sorted(new.items()) if old.get(k) != p]
    removed = [{"name": k[0], "architecture": k[1]} for k in sorted(old) if k not in new]
    return added, removed


def apply_delta(
    base: List[Dict[str, str]], added: List[Dict[str, str]], removed: List[Dict[str, str]]
) -> List[Dict[str, str]]:
    """What the server does with a delta; used by tests and to self-check before sending."""
    packages = {key_of(p): p for p in base}
    for r in removed:
        packages.pop((r["name"], r["architecture"]), None)
    for p in added:
        packages[key_of(p)] = p
    return [packages[k] for k in sorted(packages)]


def versions(packages: List[Dict[str, str]]) -> Dict[Key, Optional[str]]:
    """(name, arch) -> version of what is really on disk (None for removed/config-files)."""
    return {key_of(p): (None if p["status"] in ABSENT_STATES else p["version"]) for p in packages}


def version_changes(
    before: Dict[Key, Optional[str]], after: Dict[Key, Optional[str]]
) -> List[Dict[str, Optional[str]]]:
    """The "packages" list of a job result: every (name, arch) whose on-disk version changed."""
    changes = []
    for k in sorted(set(before) | set(after)):
        b, a = before.get(k), after.get(k)
        if b != a:
            changes.append({"name": k[0], "architecture": k[1], "before": b, "after": a})
    return changes
