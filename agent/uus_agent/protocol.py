"""Builders and readers of protocol v1 messages (protocol/v1/README.md is the spec).

Every message the agent sends is built here and nowhere else, so the contract test can compare
them with protocol/v1/examples/*.json. Readers take only the keys they know and ignore the rest:
a newer server may add fields without breaking older agents.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from typing import Any, Dict, List, Optional

from uus_agent import __version__

PROTOCOL_VERSION = 1
API_PREFIX = "/api/agent/v1/"
PATH_REGISTER = "register/"
PATH_CHECK_IN = "check-in/"
PATH_INVENTORY = "inventory/"

log = logging.getLogger(__name__)

INVENTORY_ANSWERS = ("ok", "full", "delta")
RESULT_STATUSES = ("succeeded", "failed", "expired")
OUTPUT_LIMIT = 64 * 1024


class ProtocolError(Exception):
    """The server answered something this agent cannot use."""


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def isoformat(ts: datetime.datetime) -> str:
    return ts.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> Optional[datetime.datetime]:
    """ISO 8601 as Django/DRF write it ("...Z", "+00:00", fractions). Naive means UTC."""
    if not value:
        return None
    if not isinstance(value, str):
        raise ProtocolError("timestamp %r is not a string" % (value,))
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python 3.8's fromisoformat accepts only 3 or 6 fraction digits.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        text = head + "." + (digits + "000000")[:6] + rest
    try:
        ts = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ProtocolError("timestamp %r is not ISO 8601" % (value,)) from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=datetime.timezone.utc)
    return ts


def envelope() -> Dict[str, Any]:
    """Fields of every request; message_id is fresh per request so the server can log/dedupe."""
    return {
        "protocol_version": PROTOCOL_VERSION,
        "agent_version": __version__,
        "message_id": uuid.uuid4().hex,
        "sent_at": isoformat(utc_now()),
    }


# -- requests ------------------------------------------------------------------------------------
def register_request(token: str, facts: Dict[str, Any]) -> Dict[str, Any]:
    msg = envelope()
    msg.update({"token": token, "facts": facts})
    return msg


def check_in_request(
    exchange_token: str,
    facts: Dict[str, Any],
    inventory_hash: str,
    previous_inventory_hash: Optional[str],
    job_results: List[Dict[str, Any]],
) -> Dict[str, Any]:
    msg = envelope()
    msg.update(
        {
            "exchange_token": exchange_token,
            "facts": facts,
            "inventory_hash": inventory_hash,
            "previous_inventory_hash": previous_inventory_hash,
            "job_results": job_results,
        }
    )
    return msg


def inventory_full_request(inventory_hash: str, packages: List[Dict[str, str]]) -> Dict[str, Any]:
    msg = envelope()
    msg.update({"kind": "full", "inventory_hash": inventory_hash, "packages": packages})
    return msg


def inventory_delta_request(
    inventory_hash: str,
    base_hash: str,
    added: List[Dict[str, str]],
    removed: List[Dict[str, str]],
) -> Dict[str, Any]:
    msg = envelope()
    msg.update(
        {
            "kind": "delta",
            "inventory_hash": inventory_hash,
            "base_hash": base_hash,
            "added": added,
            "removed": removed,
        }
    )
    return msg


def truncate_output(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """Keep the last `limit` bytes of UTF-8: apt's verdict is at the end of its output."""
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    return data[-limit:].decode("utf-8", errors="ignore")


def job_result(
    job_id: str,
    status: str,
    exit_code: Optional[int],
    output: str,
    started_at: Optional[str],
    finished_at: str,
    packages: List[Dict[str, Optional[str]]],
    reboot_required: bool,
    error: Optional[str] = None,
) -> Dict[str, Any]:
    if status not in RESULT_STATUSES:
        raise ValueError("bad result status %r" % status)
    return {
        "job_id": job_id,
        "status": status,
        "error": error,
        "exit_code": exit_code,
        "output": truncate_output(output),
        "started_at": started_at,
        "finished_at": finished_at,
        "packages": packages,
        "reboot_required": reboot_required,
    }


# -- answers -------------------------------------------------------------------------------------
def _require(d: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise ProtocolError("%s answer has no %r" % (where, key))
    value = d[key]
    if not isinstance(value, kind):
        raise ProtocolError("%s answer: %r is not a %s" % (where, key, kind.__name__))
    return value


def _interval(d: Dict[str, Any], where: str) -> int:
    value = d.get("check_in_interval", 3600)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ProtocolError("%s answer: bad check_in_interval %r" % (where, value))
    return int(value)


def parse_register_response(d: Any) -> Dict[str, Any]:
    return {
        "machine": str(_require(d, "machine", str, "register")),
        "client_id": _require(d, "client_id", str, "register"),
        "secret": _require(d, "secret", str, "register"),
        "exchange_token": _require(d, "exchange_token", str, "register"),
        "check_in_interval": _interval(d, "register"),
    }


def parse_job(j: Any) -> Dict[str, Any]:
    if not isinstance(j, dict):
        raise ProtocolError("job is not an object: %r" % (j,))
    job_id = j.get("id")
    if not isinstance(job_id, str) or not job_id:
        raise ProtocolError("job without an id: %r" % (j,))
    params = j.get("params") or {}
    if not isinstance(params, dict):
        raise ProtocolError("job %s: params is not an object" % job_id)
    return {
        "id": job_id,
        "type": str(j.get("type") or ""),
        "params": params,
        "deadline": j.get("deadline"),
    }


def _valid_jobs(jobs: List[Any]) -> List[Dict[str, Any]]:
    """One malformed job must not make the whole answer unusable (the new exchange token in it
    still has to be saved), so it is skipped with a log line instead."""
    valid = []
    for j in jobs:
        try:
            valid.append(parse_job(j))
        except ProtocolError as e:
            log.error("ignoring a job the agent cannot read: %s", e)
    return valid


def parse_check_in_response(d: Any) -> Dict[str, Any]:
    token = _require(d, "next_exchange_token", str, "check-in")
    inventory = d.get("inventory", "ok")
    if inventory not in INVENTORY_ANSWERS:
        raise ProtocolError("check-in answer: unknown inventory request %r" % (inventory,))
    jobs = d.get("jobs") or []
    acked = d.get("acked_job_results") or []
    if not isinstance(jobs, list) or not isinstance(acked, list):
        raise ProtocolError("check-in answer: jobs and acked_job_results must be lists")
    apt = d.get("apt")
    if apt is not None:
        if not isinstance(apt, dict) or not isinstance(apt.get("sources"), str):
            raise ProtocolError("check-in answer: apt must be null or {sources, key_url}")
        apt = {"sources": apt["sources"], "key_url": apt.get("key_url")}
    return {
        "next_exchange_token": token,
        "check_in_interval": _interval(d, "check-in"),
        "inventory": inventory,
        "jobs": _valid_jobs(jobs),
        "acked_job_results": [str(a) for a in acked],
        "apt": apt,
    }


def parse_inventory_response(d: Any) -> Dict[str, Any]:
    return {
        "inventory_hash": _require(d, "inventory_hash", str, "inventory"),
        "accepted": bool(d.get("accepted", False)),
    }


def parse_error(d: Any) -> Dict[str, Any]:
    """The error envelope; tolerant of non-envelope bodies (a proxy's HTML error page)."""
    err = d.get("error") if isinstance(d, dict) else None
    if isinstance(err, dict):
        return {
            "code": str(err.get("code") or "error"),
            "message": str(err.get("message") or ""),
            "details": err.get("details") if isinstance(err.get("details"), dict) else {},
        }
    if isinstance(d, dict) and "detail" in d:  # DRF's default shape, in case a view bypasses ours
        return {"code": "error", "message": str(d["detail"]), "details": {}}
    return {"code": "error", "message": "", "details": {}}
