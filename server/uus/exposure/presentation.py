"""Labels, colours and groupings the exposure pages share (search result, machine section, dashboard)."""

from __future__ import annotations

from uus.catalog.choices import priority_rank

from .selectors import EXPOSED_STATUSES, Status

PRIORITY_COLORS = {
    "critical": "#7f1d1d",
    "high": "#d64545",
    "medium": "#e08a1e",
    "low": "#3b82f6",
    "negligible": "#9ca3af",
    "unknown": "#c4c8cf",
}
STATUS_LABELS = {
    Status.NO_FIX: "exposed, no fix yet",
    Status.FIX_AVAILABLE: "fix available, not approved",
    Status.APPROVED: "approved, not deployed",
    Status.DEPLOYING: "deploying",
    Status.DEPLOYED: "deployed, not reported",
    Status.REBOOT_PENDING: "fixed, reboot pending",
    Status.NOT_RUNNING: "kernel installed, not running",
    Status.FIXED: "fixed",
}
STATUS_COLORS = {
    Status.NO_FIX: "#7f1d1d",
    Status.FIX_AVAILABLE: "#d64545",
    Status.APPROVED: "#e08a1e",
    Status.DEPLOYING: "#2f6fdf",
    Status.DEPLOYED: "#3b82f6",
    Status.REBOOT_PENDING: "#b58b00",
    Status.NOT_RUNNING: "#9ca3af",
    Status.FIXED: "#2e9d57",
}


def machine_cards(rows: list[dict], uuids: dict[int, object] | None = None) -> list[dict]:
    """Findings grouped per machine, each with its worst priority, in the order the rows come."""
    cards: dict[int, dict] = {}
    for r in rows:
        card = cards.setdefault(
            r["machine_id"],
            {
                "hostname": r["hostname"],
                "uuid": (uuids or {}).get(r["machine_id"]),
                "release": r["release"],
                "priority": None,
                "rank": -1,
                "exposed": False,
                "findings": [],
            },
        )
        card["findings"].append({**r, "status_label": STATUS_LABELS.get(r["status"], r["status"])})
        card["exposed"] |= r["status"] in EXPOSED_STATUSES
        if priority_rank(r["priority"]) > card["rank"]:
            card["rank"], card["priority"] = priority_rank(r["priority"]), r["priority"] or "unknown"
    return list(cards.values())


def by_priority(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """[(priority, findings)] most severe first (a machine's section)."""
    groups: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: -priority_rank(r["priority"])):
        groups.setdefault(r["priority"] or "unknown", []).append(
            {**r, "status_label": STATUS_LABELS.get(r["status"], r["status"])}
        )
    return list(groups.items())
