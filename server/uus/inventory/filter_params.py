"""The machine filters' names and meanings, importable before Django is set up (the CLI builds its
options from them). MachineFilterSet in filters.py applies them."""

from __future__ import annotations

from dataclasses import dataclass

ORDERINGS = {
    "hostname": ("hostname", "id"),
    "-hostname": ("-hostname", "-id"),
    "last_seen": ("last_seen", "id"),
    "-last_seen": ("-last_seen", "-id"),
    "release": ("os_id", "release", "hostname"),
    "-registered": ("-registered", "-id"),
    "registered": ("registered", "id"),
}


@dataclass(frozen=True)
class Param:
    name: str
    help: str
    kind: str = "text"  # text | bool | version | time | choice


PARAMS: tuple[Param, ...] = (
    Param("q", "hostname or FQDN contains this text"),
    Param("hostname", "exact hostname"),
    Param("release", "OS release, e.g. 22.04 or 12 (comma-separated for several)"),
    Param("os", "OS id: ubuntu, debian"),
    Param("architecture", "dpkg architecture, e.g. amd64"),
    Param("group", "enrollment group"),
    Param("ou", "in this directory OU (DN, any spelling) or any OU below it"),
    Param("package", "has this binary package installed"),
    Param("source", "has a binary of this source package installed"),
    Param("version", "installed version equals (with package or source)", "version"),
    Param("version_gte", "installed version >= (dpkg order)", "version"),
    Param("version_gt", "installed version >", "version"),
    Param("version_lte", "installed version <=", "version"),
    Param("version_lt", "installed version <", "version"),
    Param("needs_reboot", "true: only machines that need a reboot; false: only those that do not", "bool"),
    Param("stale", "true: only machines not seen recently; false: only those seen recently", "bool"),
    Param("revoked", "true/false: revoked machines", "bool"),
    Param("clone_suspected", "true/false: machines whose credentials two agents used", "bool"),
    Param("last_seen_before", "last check-in before this time (ISO 8601) or this long ago (7d, 12h)", "time"),
    Param("last_seen_after", "last check-in after this time (ISO 8601) or this long ago (7d, 12h)", "time"),
    Param("ordering", f"one of {', '.join(ORDERINGS)}", "choice"),
)
PARAM_NAMES = tuple(p.name for p in PARAMS)
