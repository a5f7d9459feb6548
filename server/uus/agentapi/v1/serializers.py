"""Protocol v1 messages (protocol/v1/README.md), validated. Unknown fields are ignored.

These are plain functions rather than DRF serializers on purpose: an inventory of 2,000 packages
has 12,000 fields, which DRF validates at ~20 us each; these checks take well under a millisecond,
and the hot paths (check-in, inventory) must serve hundreds to thousands of requests per second.
Each `*_request(body)` returns a frozen dataclass or raises InvalidRequest / UnsupportedProtocol
naming the offending field in `details`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from uus.inventory import packages as pk
from uus.inventory.exceptions import InvalidInventory
from uus.inventory.facts import facts_fields

from ..exceptions import InvalidRequest, UnsupportedProtocol

PROTOCOL_VERSION = 1
_HASH_RE = re.compile(r"[0-9a-f]{64}\Z")
RESULT_STATUSES = ("succeeded", "failed", "expired")
MAX_JOB_RESULTS = 1000
MAX_PACKAGES = 100_000


def _bad(field: str, message: str, problem: str = "invalid"):
    return InvalidRequest(f"{field}: {message}", details={field: problem})


def _string(body: dict, field: str, *, limit: int = 255, required: bool = True) -> str:
    value = body.get(field)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise _bad(field, "must be a non-empty string", "missing or not a string")
    if len(value) > limit:
        raise _bad(field, f"is longer than {limit} characters", "too long")
    return value


def _hash(body: dict, field: str, *, nullable: bool = False) -> str | None:
    value = body.get(field)
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not _HASH_RE.match(value):
        raise _bad(field, "must be a sha256 hex digest (64 lowercase hex digits)", "not a sha256 hex digest")
    return value


@dataclass(frozen=True)
class Envelope:
    agent_version: str
    message_id: str  # uuid, 32 hex digits
    sent_at: datetime


def envelope(body: Any) -> Envelope:
    """The fields every request carries: protocol_version, agent_version, message_id, sent_at."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object", details={"body": "not an object"})
    version = body.get("protocol_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise _bad("protocol_version", f"must be the integer {PROTOCOL_VERSION}", "missing or not an integer")
    if version != PROTOCOL_VERSION:
        raise UnsupportedProtocol(
            f"protocol_version {version} is not spoken here; this server speaks {PROTOCOL_VERSION}",
            details={"supported": [PROTOCOL_VERSION]},
        )
    message_id = _string(body, "message_id", limit=64)
    try:
        message_id = uuid.UUID(message_id).hex
    except ValueError:
        raise _bad("message_id", "must be a UUID (32 hex digits)", "not a uuid") from None
    sent_at_text = _string(body, "sent_at", limit=64)
    try:
        sent_at = parse_datetime(sent_at_text)
    except ValueError:
        sent_at = None
    if sent_at is None:
        raise _bad("sent_at", "must be an ISO 8601 time such as 2026-11-25T09:30:00Z", "not ISO 8601")
    if sent_at.tzinfo is None:
        sent_at = sent_at.replace(tzinfo=UTC)
    return Envelope(
        agent_version=_string(body, "agent_version", limit=64, required=False), message_id=message_id, sent_at=sent_at
    )


def _facts(body: dict) -> dict:
    try:
        facts_fields(body.get("facts"))
    except InvalidInventory as exc:
        raise InvalidRequest(exc.message, details=exc.details) from None
    return body["facts"]


@dataclass(frozen=True)
class RegisterRequest:
    envelope: Envelope
    token: str
    facts: dict


def register_request(body: Any) -> RegisterRequest:
    env = envelope(body)
    return RegisterRequest(envelope=env, token=_string(body, "token", limit=200), facts=_facts(body))


@dataclass(frozen=True)
class CheckInRequest:
    envelope: Envelope
    exchange_token: str
    facts: dict
    inventory_hash: str
    previous_inventory_hash: str | None
    job_results: list[dict]


def check_in_request(body: Any) -> CheckInRequest:
    env = envelope(body)
    results = body.get("job_results", [])
    if results is None:
        results = []
    if not isinstance(results, list):
        raise _bad("job_results", "must be a list of job results", "not a list")
    if len(results) > MAX_JOB_RESULTS:
        raise _bad(
            "job_results", f"has more than {MAX_JOB_RESULTS} results; send them over several check-ins", "too many"
        )
    return CheckInRequest(
        envelope=env,
        exchange_token=_string(body, "exchange_token", limit=200),
        facts=_facts(body),
        inventory_hash=_hash(body, "inventory_hash"),
        previous_inventory_hash=_hash(body, "previous_inventory_hash", nullable=True),
        job_results=results,
    )


def job_result_is_well_formed(r: Any) -> bool:
    """A job result the server can store: the rest of its fields are the deployments' business."""
    return (
        isinstance(r, dict)
        and isinstance(r.get("job_id"), str)
        and 0 < len(r["job_id"]) <= 128
        and r.get("status") in RESULT_STATUSES
    )


@dataclass(frozen=True)
class InventoryRequest:
    envelope: Envelope
    kind: str  # "full" | "delta"
    inventory_hash: str
    packages: list[pk.Entry]  # full: every entry; delta: the added ones
    base_hash: str | None = None
    removed: list[tuple[str, str]] | None = None


def inventory_request(body: Any) -> InventoryRequest:
    env = envelope(body)
    kind = body.get("kind")
    if kind not in ("full", "delta"):
        raise _bad("kind", 'must be "full" or "delta"', "unknown kind")
    inventory_hash = _hash(body, "inventory_hash")
    field = "packages" if kind == "full" else "added"
    items = body.get(field)
    if isinstance(items, list) and len(items) > MAX_PACKAGES:
        raise _bad(field, f"lists more than {MAX_PACKAGES} packages", "too many")
    try:
        entries = pk.entries_from_json(items, field)
        removed = pk.keys_from_json(body.get("removed"), "removed") if kind == "delta" else None
    except InvalidInventory as exc:
        raise InvalidRequest(exc.message, details=exc.details) from None
    if kind == "full":
        return InventoryRequest(envelope=env, kind=kind, inventory_hash=inventory_hash, packages=entries)
    return InventoryRequest(
        envelope=env,
        kind=kind,
        inventory_hash=inventory_hash,
        packages=entries,
        base_hash=_hash(body, "base_hash"),
        removed=removed,
    )
