"""Reads: every finding for a CVE, a notice, a package or a machine, with its status.

The rule (docs/decisions/0005-exposure.md): a machine on release R is exposed to notice N for CVE C when
an affected entry of N for R names source S and an installed binary built from S has a source version
v with introduced <= v < fixed (no fixed: no fix yet). Entries only under Ubuntu:Pro:R are "fix needs
Ubuntu Pro". Kernel binaries (names carrying an ABI such as 5.15.0-60) count only for the running kernel;
other installed kernels are "not running" and listed apart; a running vulnerable kernel with a fixed
kernel installed beside it is "fixed, reboot pending".
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection

from uus.catalog.choices import PRIORITIES, priority_rank
from uus.catalog.models import AffectedPackage, Cve, Notice, NoticeCve
from uus.core.debversion import version_key
from uus.core.exceptions import UusError
from uus.inventory.models import Machine, Package

from .models import Finding

_ABI = re.compile(r"(\d+\.\d+\.\d+-\d+)")


class Status:
    NO_FIX = "no_fix"  # no fixed version published
    FIX_AVAILABLE = "fix_available"  # a fix exists, not approved for the machine's ring
    APPROVED = "approved"  # approved for the machine's ring, not yet installed
    REBOOT_PENDING = "fixed_reboot_pending"  # the fixed kernel is installed but not running
    NOT_RUNNING = "not_running"  # a vulnerable kernel that is installed but not booted: not exposure


EXPOSED_STATUSES = (Status.NO_FIX, Status.FIX_AVAILABLE, Status.APPROVED, Status.REBOOT_PENDING)


@dataclass
class Query:
    """What a search asked for: a CVE, a notice, a package (optionally below a version) or a machine."""

    cve: str = ""
    notice: str = ""
    package: str = ""
    below: str = ""
    machine_id: int | None = None
    label: str = ""
    extra: dict = field(default_factory=dict)


def parse_query(text: str) -> Query:
    """`CVE-2024-1234`, `USN-6719-1`, `UBUNTU-CVE-…`, `package:NAME[<VERSION]`, or a bare package name."""
    t = (text or "").strip()
    if not t:
        raise UusError("give a CVE id, a notice id or a package name", code="invalid_query")
    up = t.upper()
    if re.fullmatch(r"CVE-\d{4}-\d+", up):
        return Query(cve=up, label=up)
    if re.fullmatch(r"(USN|LSN)-\d+-\d+|UBUNTU-CVE-\d{4}-\d+", up):
        return Query(notice=up, label=up)
    if t.lower().startswith("package:"):
        t = t[len("package:") :]
    name, _, below = t.partition("<")
    name, below = name.strip(), below.strip()
    if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]*", name):
        raise UusError(f"'{text}' is neither a CVE id, a notice id nor a package name", code="invalid_query")
    if below:
        try:
            version_key(below)
        except ValueError as exc:
            raise UusError(f"'{below}' is not a Debian version", code="invalid_query") from exc
    return Query(package=name, below=below, label=f"package {name}" + (f" < {below}" if below else ""))


def _sql(where: list[str]) -> str:
    t = {
        "f": Finding._meta.db_table,
        "a": AffectedPackage._meta.db_table,
        "m": Machine._meta.db_table,
        "p": Package._meta.db_table,
        "nc": NoticeCve._meta.db_table,
        "c": Cve._meta.db_table,
        "n": Notice._meta.db_table,
    }
    return f"""
        SELECT mc.id, mc.hostname, mc.kernel, mc.release, a.notice_id, nc.cve_id, nc.priority, c.priority,
               n.priority, p.id, p.name, p.architecture, p.version, p.source, p.source_version, a.fixed, a.is_pro,
               a.ecosystem, a.binaries, mc.package_set_id, p.source_version_key, a.fixed_key, a.cves
        FROM {t["f"]} f
        JOIN {t["a"]} a ON a.id = f.affected_id
        JOIN {t["m"]} mc ON mc.package_set_id = f.package_set_id AND mc.release = a.release AND mc.is_revoked = %s
        JOIN {t["p"]} p ON p.id = f.package_id
        JOIN {t["n"]} n ON n.id = a.notice_id
        LEFT JOIN {t["nc"]} nc ON nc.notice_id = a.notice_id
        LEFT JOIN {t["c"]} c ON c.id = nc.cve_id
        WHERE {" AND ".join(where) or "1=1"}
    """


def _rows(q: Query) -> list[tuple]:
    where, params = [], [False]
    if q.cve:
        where.append("nc.cve_id = %s")
        params.append(q.cve)
    if q.notice:
        where.append("a.notice_id = %s")
        params.append(q.notice)
    if q.package:
        where.append("(p.name = %s OR p.source = %s)")
        params += [q.package, q.package]
        if q.below:
            where.append("p.version_key < %s")
            params.append(version_key(q.below))
    if q.machine_id is not None:
        where.append("mc.id = %s")
        params.append(q.machine_id)
    with connection.cursor() as cur:
        cur.execute(_sql(where), params)
        return cur.fetchall()


def _abi(name: str) -> str | None:
    m = _ABI.search(name)
    return m.group(1) if m else None


def _is_kernel(source: str, binary: str) -> bool:
    return source.startswith("linux") and _abi(binary) is not None


def _fixed_kernels(machine_ids: set[int], sources: set[str]) -> dict[tuple[int, str], list[tuple[bytes, str]]]:
    """Installed kernel binaries per (machine, source): (source version key, binary name)."""
    if not machine_ids:
        return {}
    from uus.inventory.choices import PackageStatus
    from uus.inventory.models import PackageChunkMember

    out: dict[tuple[int, str], list[tuple[bytes, str]]] = defaultdict(list)
    prefix = "package_set__set_chunks__chunk__members__"
    rows = Machine.objects.filter(
        pk__in=machine_ids, **{f"{prefix}package__source__in": sources, f"{prefix}status": PackageStatus.INSTALLED}
    ).values_list("pk", f"{prefix}package__source", f"{prefix}package__source_version_key", f"{prefix}package__name")
    _ = PackageChunkMember  # the join above walks it
    for mid, source, key, name in rows:
        out[(mid, source)].append((bytes(key), name))
    return out


def findings(q: Query, *, include_not_running: bool = False) -> list[dict]:
    """One dict per (machine, notice, CVE, binary) finding, sorted by priority then host."""
    raw = _rows(q)
    # Kernel findings need the machine's other kernels to tell "reboot pending" from "exposed".
    kernel_rows = [r for r in raw if _is_kernel(r[13], r[10])]
    others = _fixed_kernels({r[0] for r in kernel_rows}, {r[13] for r in kernel_rows}) if kernel_rows else {}
    best: dict[tuple, dict] = {}
    for (
        mid,
        host,
        kernel,
        release,
        notice,
        cve,
        nc_prio,
        cve_prio,
        notice_prio,
        _pid,
        name,
        arch,
        version,
        source,
        source_version,
        fixed,
        is_pro,
        ecosystem,
        binaries,
        _set_id,
        _sv_key,
        fixed_key,
        entry_cves,
    ) in raw:
        if isinstance(entry_cves, str):
            entry_cves = json.loads(entry_cves)
        if entry_cves and cve not in entry_cves:
            continue  # this release's entry names its own CVEs (cves_map): the others are other releases'
        status = Status.FIX_AVAILABLE if fixed else Status.NO_FIX
        if _is_kernel(source, name):
            abi = _abi(name)
            if not kernel.startswith(abi):
                status = Status.NOT_RUNNING
            elif fixed_key is not None and any(
                k >= bytes(fixed_key) and _abi(n) and _abi(n) != abi for k, n in others.get((mid, source), [])
            ):
                status = Status.REBOOT_PENDING
        if status == Status.NOT_RUNNING and not include_not_running:
            continue
        priority = nc_prio or cve_prio or notice_prio or None
        if isinstance(binaries, str):  # raw SQL gives JSON text on SQLite, parsed values on PostgreSQL
            binaries = json.loads(binaries)
        fixed_binary = next((b.get("version") for b in (binaries or []) if b.get("name") == name), None)
        row = {
            "hostname": host,
            "machine_id": mid,
            "release": release,
            "notice": notice,
            "cve": cve,
            "package": name,
            "architecture": arch,
            "installed_version": version,
            "source": source,
            "installed_source_version": source_version,
            "fixed_version": fixed or None,
            "fixed_binary_version": fixed_binary,
            "priority": priority,
            "status": status,
            "pro_only": bool(is_pro),
            "ecosystem": ecosystem,
        }
        key = (mid, notice, cve, name, arch)
        prev = best.get(key)
        # An entry for the plain release beats one that needs Ubuntu Pro; among equals the higher fix wins.
        if (
            prev is None
            or (prev["pro_only"] and not row["pro_only"])
            or (
                prev["pro_only"] == row["pro_only"]
                and fixed
                and prev["fixed_version"]
                and version_key(fixed) > version_key(prev["fixed_version"])
            )
        ):
            best[key] = row
    return sorted(
        best.values(),
        key=lambda r: (-priority_rank(r["priority"]), r["hostname"], r["notice"], r["cve"] or "", r["package"]),
    )


def summary(rows: list[dict]) -> dict:
    """Counts for a result page: findings and distinct machines per priority and per status."""
    by_priority: dict[str, set] = defaultdict(set)
    by_status: dict[str, set] = defaultdict(set)
    for r in rows:
        by_priority[r["priority"] or "unknown"].add(r["machine_id"])
        by_status[r["status"]].add(r["machine_id"])
    return {
        "machines": len({r["machine_id"] for r in rows if r["status"] in EXPOSED_STATUSES}),
        "findings": len(rows),
        "by_priority": {p: len(by_priority.get(p, ())) for p in (*reversed(PRIORITIES), "unknown")},
        "by_status": {s: len(v) for s, v in sorted(by_status.items())},
        "pro_only": sum(1 for r in rows if r["pro_only"]),
    }


def fleet_overview(top: int = 10) -> dict:
    """Dashboard numbers: machines exposed at each (highest) priority and the notices affecting most machines."""
    rows = findings(Query())
    worst: dict[int, int] = {}
    per_notice: dict[str, set] = defaultdict(set)
    for r in rows:
        if r["status"] not in EXPOSED_STATUSES:
            continue
        worst[r["machine_id"]] = max(worst.get(r["machine_id"], 0), priority_rank(r["priority"]))
        per_notice[r["notice"]].add(r["machine_id"])
    names = {0: "unknown", **{i + 1: p for i, p in enumerate(PRIORITIES)}}
    by_priority = defaultdict(int)
    for rank in worst.values():
        by_priority[names[rank]] += 1
    top_notices = sorted(((n, len(m)) for n, m in per_notice.items()), key=lambda x: (-x[1], x[0]))[:top]
    return {
        "exposed_machines": len(worst),
        "by_priority": dict(by_priority),
        "top_notices": top_notices,
        "findings": len(rows),
    }
