"""Facts an agent reports (protocol/v1 "Facts") turned into Machine field values, validated."""

from __future__ import annotations

import hashlib
import json
import zoneinfo
from typing import Any

from .exceptions import InvalidInventory

_MAX_SOURCES = 500
_MAX_TEXT = 4096


def _text(facts: dict, key: str, limit: int, *, required: bool = False, where: str = "facts") -> str:
    value = facts.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInventory(
            f"{where}.{key} must be a non-empty string" if required else f"{where}.{key} must be a string or null",
            details={f"{where}.{key}": "invalid"},
        )
    if len(value) > limit:
        raise InvalidInventory(
            f"{where}.{key} is longer than {limit} characters", details={f"{where}.{key}": "too long"}
        )
    return value.strip()


def _string_list(facts: dict, key: str, limit: int) -> list[str]:
    value = facts.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and len(v) <= _MAX_TEXT for v in value):
        raise InvalidInventory(f"facts.{key} must be a list of strings", details={f"facts.{key}": "invalid"})
    if len(value) > limit:
        raise InvalidInventory(f"facts.{key} has more than {limit} entries", details={f"facts.{key}": "too long"})
    return value


def facts_fields(facts: Any) -> dict[str, Any]:
    """Machine field values from a facts object; raises InvalidInventory naming the bad field."""
    if not isinstance(facts, dict):
        raise InvalidInventory("facts must be an object", details={"facts": "not an object"})
    os_facts = facts.get("os") or {}
    if not isinstance(os_facts, dict):
        raise InvalidInventory("facts.os must be an object", details={"facts.os": "not an object"})
    reboot = facts.get("reboot_required", False)
    if not isinstance(reboot, bool):
        raise InvalidInventory(
            "facts.reboot_required must be true or false", details={"facts.reboot_required": "not a boolean"}
        )
    hostname = _text(facts, "hostname", 255, required=True)
    version_id = _text(os_facts, "version_id", 64, where="facts.os")
    codename = _text(os_facts, "version_codename", 64, where="facts.os")
    return {
        "hostname": hostname,
        "fqdn": _text(facts, "fqdn", 255) or hostname,
        "machine_id": _text(facts, "machine_id", 128),
        "os_id": _text(os_facts, "id", 64, where="facts.os"),
        "os_version_id": version_id,
        "os_codename": codename,
        "os_pretty_name": _text(os_facts, "pretty_name", 255, where="facts.os"),
        "release": version_id or codename,
        "kernel": _text(facts, "kernel", 255),
        "architecture": _text(facts, "architecture", 64),
        "is_reboot_required": reboot,
        "reboot_required_packages": _string_list(facts, "reboot_required_packages", 5000),
        "apt_sources": _string_list(facts, "apt_sources", _MAX_SOURCES),
        "time_zone": _time_zone(facts),
    }


def facts_digest(facts: dict) -> str:
    """A short digest of a facts object as sent (keys sorted), stored beside the machine's fields: a
    check-in whose facts hash to the stored digest has nothing to write but its token."""
    canonical = json.dumps(facts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest()


def _time_zone(facts: dict) -> str:
    """The machine's IANA zone name, or "" when it is missing or unknown to this server's tzdata (a
    newer zone on the machine must not make its check-ins fail; its windows then run in UTC)."""
    name = _text(facts, "timezone", 64)
    if not name:
        return ""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return ""
    return name


FACT_FIELDS = tuple(facts_fields({"hostname": "x"}))
