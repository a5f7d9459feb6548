"""Reads: every finding for a CVE, a notice, a package or a machine, with its status.

The rule (issue 5): a machine on release R is exposed to notice N for CVE C when an affected entry of N for
R names source S and an installed binary built from S has a source version v with introduced <= v < fixed
(no fixed: no fix yet). Entries only under Ubuntu:Pro:R are "fix needs Ubuntu Pro". Kernel binaries (names
carrying an ABI such as 5.15.0-60) count only for the running kernel; other installed kernels are "not
running" and listed apart; a running vulnerable kernel with a fixed kernel installed beside it is "fixed,
reboot pending". Storage, upkeep and costs: docs/decisions/0005-exposure-findings.md.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection

from uus.catalog.choices import PRIORITIES, priority_rank
from uus.catalog.models import AffectedPackage, Cve, Notice, NoticeCve
from uus.core.debversion import is_valid_version, version_key
from uus.core.exceptions import UusError
from uus.inventory.models import Machine, Package

from .models import Finding

_ABI = re.compile(r"(\d+\.\d+\.\d+-\d+)")


class Status:
    """Where a finding stands, from worst to nearly done. "fixed" machines have no finding; result pages
    count them apart (fixed_machines)."""

    NO_FIX = "no_fix"  # exposed: no fixed version published
    FIX_AVAILABLE = "fix_available"  # a fix exists, not approved for the machine's ring
    APPROVED = "approved"  # the fix is approved for the machine's ring, no deployment installs it yet
    DEPLOYING = "deploying"  # a deployment job that installs the fix is queued or delivered
    DEPLOYED = "deployed"  # a job installed the fix; the machine has not reported its new inventory yet
    REBOOT_PENDING = "fixed_reboot_pending"  # the fixed kernel is installed but not running
    NOT_RUNNING = "not_running"  # a vulnerable kernel that is installed but not booted: not exposure
    FIXED = "fixed"


STATUSES = (
    Status.NO_FIX,
    Status.FIX_AVAILABLE,
    Status.APPROVED,
    Status.DEPLOYING,
    Status.DEPLOYED,
    Status.REBOOT_PENDING,
    Status.NOT_RUNNING,
    Status.FIXED,
)
EXPOSED_STATUSES = (
    Status.NO_FIX,
    Status.FIX_AVAILABLE,
    Status.APPROVED,
    Status.DEPLOYING,
    Status.DEPLOYED,
    Status.REBOOT_PENDING,
)


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
    if below and not is_valid_version(below):  # strict: a query starting with no digit is a typo
        raise UusError(f"'{below}' is not a Debian version", code="invalid_query")
    return Query(package=name, below=below, label=f"package {name}" + (f" < {below}" if below else ""))


def _sql(where: list[str]) -> str:
    t = {
        "f": Finding._meta.db_table,
        "a": AffectedPackage._meta.db_table,
        "p": Package._meta.db_table,
        "nc": NoticeCve._meta.db_table,
        "c": Cve._meta.db_table,
        "n": Notice._meta.db_table,
    }
    # Per package set, not per machine: a fleet has far fewer distinct sets than machines, so this stays
    # small; machines are joined in afterwards. Findings exist only for releases machines use a set on
    # (services.py); sets no machine uses any more simply join no machine until inventory collects them.
    return f"""
        SELECT f.package_set_id, a.release, a.notice_id, nc.cve_id, nc.priority, c.priority, n.priority,
               p.name, p.architecture, p.version, p.source, p.source_version, a.fixed, a.is_pro, a.ecosystem,
               a.binaries, a.fixed_key, a.cves, a.codename, a.distro, a.id
        FROM {t["f"]} f
        JOIN {t["a"]} a ON a.id = f.affected_id
        JOIN {t["p"]} p ON p.id = f.package_id
        JOIN {t["n"]} n ON n.id = a.notice_id
        LEFT JOIN {t["nc"]} nc ON nc.notice_id = a.notice_id
        LEFT JOIN {t["c"]} c ON c.id = nc.cve_id
        WHERE {" AND ".join(where) or "1=1"}
    """


def _set_rows(q: Query) -> list[tuple]:
    where, params = [], []
    if q.cve:
        where.append("nc.cve_id = %s")
        params.append(q.cve)
    if q.notice:
        where.append("a.notice_id = %s")
        params.append(q.notice)
    if q.package and q.below:
        # A binary name compares binary versions, a source name source versions: bsdutils carries an
        # epoch (1:2.34-…) that its source util-linux (2.34-…) does not.
        below = version_key(q.below)
        where.append("((p.name = %s AND p.version_key < %s) OR (p.source = %s AND p.source_version_key < %s))")
        params += [q.package, below, q.package, below]
    elif q.package:
        where.append("(p.name = %s OR p.source = %s)")
        params += [q.package, q.package]
    if q.machine_id is not None:
        machine = Machine.objects.filter(pk=q.machine_id).values_list("package_set_id", "release").first()
        if not machine or machine[0] is None:
            return []
        where += ["f.package_set_id = %s", "a.release = %s"]
        params += list(machine)
    with connection.cursor() as cur:
        cur.execute(_sql(where), params)
        return cur.fetchall()


def _abi(name: str) -> str | None:
    m = _ABI.search(name)
    return m.group(1) if m else None


def _is_kernel(source: str, binary: str) -> bool:
    return source.startswith("linux") and _abi(binary) is not None


def _installed_kernels(set_ids: set[int], sources: set[str]) -> dict[tuple[int, str], list[tuple[bytes, str]]]:
    """Installed kernel binaries per (package set, source): (source version key, binary name)."""
    if not set_ids:
        return {}
    from uus.inventory.choices import PackageStatus
    from uus.inventory.models import PackageSetChunk

    out: dict[tuple[int, str], list[tuple[bytes, str]]] = defaultdict(list)
    prefix = "chunk__members__"
    rows = PackageSetChunk.objects.filter(
        package_set_id__in=set_ids,
        **{f"{prefix}package__source__in": sources, f"{prefix}status": PackageStatus.INSTALLED},
    ).values_list(
        "package_set_id", f"{prefix}package__source", f"{prefix}package__source_version_key", f"{prefix}package__name"
    )
    for set_id, source, key, name in rows:
        if _abi(name):
            out[(set_id, source)].append((bytes(key), name))
    return out


def _entry_facts(entry_cves, binaries, fixed) -> tuple[set, dict]:
    """(the entry's own CVEs, {binary: fixed binary version}); raw SQL gives JSON text on SQLite."""
    if isinstance(entry_cves, str):
        entry_cves = json.loads(entry_cves)
    if isinstance(binaries, str):
        binaries = json.loads(binaries)
    return set(entry_cves or ()), {b.get("name"): b.get("version") for b in binaries or ()}


def _set_findings(q: Query) -> dict[tuple[int, str], list[dict]]:
    """{(package set, release): [finding without its machine]}: one per (notice, CVE, binary), the best
    entry chosen (a plain-release entry beats a Pro one; among equals the highest fix applies)."""
    best: dict[tuple, dict] = {}
    entries: dict[int, tuple] = {}
    for (
        set_id,
        release,
        notice,
        cve,
        nc_prio,
        cve_prio,
        notice_prio,
        name,
        arch,
        version,
        source,
        source_version,
        fixed,
        is_pro,
        ecosystem,
        binaries,
        fixed_key,
        entry_cves,
        codename,
        distro,
        affected_id,
    ) in _set_rows(q):
        entry = entries.get(affected_id)
        if entry is None:  # parsed once per entry: many sets share it
            entry = entries[affected_id] = _entry_facts(entry_cves, binaries, fixed)
        if entry[0] and cve not in entry[0]:
            continue  # this release's entry names its own CVEs (cves_map): the others are other releases'
        row = {
            "release": release,
            "notice": notice,
            "cve": cve,
            "package": name,
            "architecture": arch,
            "installed_version": version,
            "source": source,
            "installed_source_version": source_version,
            "fixed_version": fixed or None,
            "fixed_binary_version": entry[1].get(name),
            "priority": nc_prio or cve_prio or notice_prio or None,
            "status": Status.FIX_AVAILABLE if fixed else Status.NO_FIX,
            "pro_only": bool(is_pro),
            "ecosystem": ecosystem,
            "pocket": _pocket(bool(is_pro), codename, distro) if fixed else None,
            "_fixed_key": bytes(fixed_key) if fixed_key is not None else None,
            "_abi": _abi(name) if _is_kernel(source, name) else None,
        }
        key = (set_id, release, notice, cve, name, arch)
        prev = best.get(key)
        if (
            prev is None
            or (prev["pro_only"] and not row["pro_only"])
            or (
                prev["pro_only"] == row["pro_only"]
                and fixed
                and prev["fixed_version"]
                and row["_fixed_key"] > prev["_fixed_key"]
            )
        ):
            best[key] = row
    out: dict[tuple[int, str], list[dict]] = defaultdict(list)
    for (set_id, release, *_), row in best.items():
        out[(set_id, release)].append(row)
    _apply_archive_pockets([r for rows in out.values() for r in rows])
    kernel_sets = {k[0] for k, rows in out.items() if any(r["_abi"] for r in rows)}
    if kernel_sets:
        sources = {r["source"] for k, rows in out.items() if k[0] in kernel_sets for r in rows if r["_abi"]}
        installed = _installed_kernels(kernel_sets, sources)
        for (set_id, _), rows in out.items():
            for r in rows:
                if r["_abi"] and r["_fixed_key"] is not None:
                    # another kernel of the same source at or above the fix is installed beside this one
                    r["_fixed_beside"] = any(
                        k >= r["_fixed_key"] and _abi(n) != r["_abi"]
                        for k, n in installed.get((set_id, r["source"]), [])
                    )
    return out


def _machine_status(row: dict, kernel: str) -> str:
    """Only the running kernel is exposure; a fixed kernel installed beside it means reboot pending."""
    if not row["_abi"]:
        return row["status"]
    if not kernel.startswith(row["_abi"]):
        return Status.NOT_RUNNING
    return Status.REBOOT_PENDING if row.get("_fixed_beside") else row["status"]


def _machines(keys, machine_id: int | None = None):
    """(id, hostname, kernel, release, package set) of the machines (not revoked) using these sets."""
    fields = ("id", "hostname", "kernel", "release", "package_set_id")
    if machine_id is not None:
        yield from Machine.objects.filter(pk=machine_id, is_revoked=False).values_list(*fields)
        return
    for batch in _chunked(sorted({k[0] for k in keys}), 500):
        yield from Machine.objects.filter(is_revoked=False, package_set_id__in=batch).values_list(*fields).order_by()


def _chunked(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _machine_rows(per_set: dict, machines, include_not_running: bool) -> list[dict]:
    """The findings of each (machine id, hostname, kernel, release, set id) from its set's findings,
    with the machine's own status (running kernel, fix progress)."""
    rows: list[dict] = []
    for mid, host, kernel, release, set_id in machines:
        for base in per_set.get((set_id, release), ()):
            status = _machine_status(base, kernel)
            if status == Status.NOT_RUNNING and not include_not_running:
                continue
            row = {k: v for k, v in base.items() if not k.startswith("_")}
            row.update(hostname=host, machine_id=mid, status=status)
            rows.append(row)
    _apply_fix_progress(rows)
    return rows


def findings(q: Query, *, include_not_running: bool = False) -> list[dict]:
    """One dict per (machine, notice, CVE, binary) finding, sorted by priority then host."""
    per_set = _set_findings(q)
    rows = _machine_rows(per_set, _machines(per_set.keys(), q.machine_id), include_not_running)
    return sorted(
        rows,
        key=lambda r: (-priority_rank(r["priority"]), r["hostname"], r["notice"], r["cve"] or "", r["package"]),
    )


def _pocket(is_pro: bool, codename: str, distro: str) -> str:
    """Where the notice says the fix is: a USN's fix is in RELEASE-security (and -updates); a Pro fix is
    in the ESM archive its purl names (esm-infra/xenial, esm-apps/jammy, trusty/esm)."""
    if is_pro:
        return distro or "ubuntu-pro"
    return f"{codename or distro}-security" if (codename or distro) else "security"


def _apply_archive_pockets(rows: list[dict]) -> None:
    """Where a synced upstream archive carries the fixed source version, its suite is the pocket shown."""
    wanted = {(r["source"], r["fixed_version"]) for r in rows if r["fixed_version"] and not r["pro_only"]}
    if not wanted:
        return
    from uus.catalog.models import ArchivePackage

    found: dict[tuple[str, str, str], str] = {}
    sources = {s for s, _ in wanted}
    versions = {v for _, v in wanted}
    for source, version, suite, codename, pocket in (
        ArchivePackage.objects.filter(source__in=sources, source_version__in=versions)
        .values_list("source", "source_version", "index__suite", "index__codename", "index__pocket")
        .distinct()[:5000]
    ):
        key = (source, version, codename)
        # security first: it is where a USN fix is published; updates carries the same build later
        if key not in found or pocket == "security":
            found[key] = suite
    for r in rows:
        codename = r["pocket"].removesuffix("-security") if r["pocket"] else ""
        suite = found.get((r["source"], r["fixed_version"], codename))
        if suite:
            r["pocket"] = suite


def _apply_fix_progress(rows: list[dict]) -> None:
    """Move fix_available findings on to approved / deploying / deployed from the approvals and deployments
    apps: a finding is approved when its ring has approved a version of the binary at or above the fix."""
    waiting = [r for r in rows if r["status"] == Status.FIX_AVAILABLE]
    if not waiting:
        return
    approved = _approved_fixes(waiting)
    for r in waiting:
        version = approved.get((r["machine_id"], r["package"], r["notice"], r["fixed_version"]))
        if version:
            r["status"] = _deployment_progress(r["machine_id"], r["package"], version) or Status.APPROVED
            r["approved_version"] = version


def _approved_fixes(rows: list[dict]) -> dict[tuple, str]:
    """{(machine id, binary, notice, fixed version): the highest approved version that fixes it} for `rows`,
    through the approvals app's selectors (one query per ring, plus one for the memberships)."""
    from uus.approvals import selectors as approvals
    from uus.approvals.models import RingMembership

    ring_of: dict[int, int] = {}
    if RingMembership.objects.exists():
        for batch in _chunked(sorted({r["machine_id"] for r in rows}), 900):
            ring_of.update(RingMembership.objects.filter(machine_id__in=batch).values_list("machine_id", "ring_id"))
    default = approvals.default_ring()
    rings = {default.pk: default, **{r.pk: r for r in approvals.ring_list().filter(pk__in=set(ring_of.values()))}}
    approved = {pk: approvals.approved_versions(ring) for pk, ring in rings.items()}
    out: dict[tuple, str] = {}
    for r in rows:
        versions = approved[ring_of.get(r["machine_id"], default.pk)].get(r["package"])
        if not versions:
            continue
        needed = version_key(r["fixed_binary_version"] or r["fixed_version"])
        fixing = [(k, v) for k, v in versions if k >= needed]
        if fixing:
            out[(r["machine_id"], r["package"], r["notice"], r["fixed_version"])] = max(fixing)[1]
    return out


def _deployment_progress(machine_id: int, package: str, version: str) -> str | None:
    """deploying / deployed from the deployments app's selector, or None (approved, nothing scheduled).
    One query per (machine, package): fine for a page of machines; a full list pays it per approved row."""
    from uus.deployments.selectors import deployed_state

    state = deployed_state(Machine(pk=machine_id), package, version)
    return {"pending": Status.DEPLOYING, "deployed": Status.DEPLOYED}.get(state or "")


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
        "by_status": {s: len(by_status[s]) for s in STATUSES if s in by_status},
        "pro_only": sum(1 for r in rows if r["pro_only"]),
    }


_PRIORITY_NAMES = {0: "unknown", **{i + 1: p for i, p in enumerate(PRIORITIES)}}


@dataclass
class _Group:
    """Machines that share a package set, a release, a running kernel and a ring answer alike."""

    set_id: int
    release: str
    kernel: str
    ring_id: int | None
    machines: int
    rows: list[dict]  # this group's findings (status already for its kernel and ring)


def _machine_groups(set_ids) -> list[tuple]:
    """(set, release, kernel, ring id or None, machines) for the machines (not revoked) on these sets."""
    from django.db.models import Count

    from uus.approvals.models import RingMembership

    with_rings = RingMembership.objects.exists()  # most fleets before rings: skip the join
    fields = ["package_set_id", "release", "kernel", *(["ring_membership__ring_id"] if with_rings else [])]
    out = []
    for batch in _chunked(sorted(set_ids), 900):
        qs = Machine.objects.filter(is_revoked=False, package_set_id__in=batch).values_list(*fields)
        for row in qs.annotate(n=Count("id")).order_by():
            out.append((row[0], row[1], row[2], row[3] if with_rings else None, row[-1]))
    return out


def _groups(q: Query, per_set: dict, *, include_not_running: bool) -> list[_Group]:
    out: list[_Group] = []
    for set_id, release, kernel, ring_id, n in _machine_groups({k[0] for k in per_set}):
        rows = []
        for base in per_set.get((set_id, release), ()):
            status = _machine_status(base, kernel)
            if status == Status.NOT_RUNNING and not include_not_running:
                continue
            row = {k: v for k, v in base.items() if not k.startswith("_")}
            row["status"] = status
            rows.append(row)
        if rows:
            out.append(_Group(set_id, release, kernel, ring_id, n, rows))
    _apply_group_approvals(out)
    return out


def _apply_group_approvals(groups: list[_Group]) -> None:
    """Approvals depend on the ring only, so a whole group moves to "approved" at once. Deploying and
    deployed depend on each machine's jobs: they are resolved for the machines of a page (search)."""
    waiting = [g for g in groups if any(r["status"] == Status.FIX_AVAILABLE for r in g.rows)]
    if not waiting:
        return
    from uus.approvals import selectors as approvals

    default = approvals.default_ring()
    rings = {r.pk: r for r in approvals.ring_list()}
    approved = {pk: approvals.approved_versions(r) for pk, r in rings.items()}
    for g in waiting:
        versions_of = approved.get(g.ring_id or default.pk, {})
        for r in g.rows:
            versions = versions_of.get(r["package"]) if r["status"] == Status.FIX_AVAILABLE else None
            if versions:
                needed = version_key(r["fixed_binary_version"] or r["fixed_version"])
                if any(k >= needed for k, _ in versions):
                    r["status"] = Status.APPROVED


def _summarise(groups: list[_Group]) -> dict:
    by_priority: dict[str, int] = defaultdict(int)
    by_status: dict[str, int] = defaultdict(int)
    machines = findings_count = pro_only = 0
    for g in groups:
        findings_count += g.machines * len(g.rows)
        pro_only += g.machines * sum(1 for r in g.rows if r["pro_only"])
        if any(r["status"] in EXPOSED_STATUSES for r in g.rows):
            machines += g.machines
        for p in {r["priority"] or "unknown" for r in g.rows}:
            by_priority[p] += g.machines
        for st in {r["status"] for r in g.rows}:
            by_status[st] += g.machines
    return {
        "machines": machines,
        "findings": findings_count,
        "by_priority": {p: by_priority.get(p, 0) for p in (*reversed(PRIORITIES), "unknown")},
        "by_status": {st: by_status[st] for st in STATUSES if st in by_status},
        "pro_only": pro_only,
    }


def _page(groups: list[_Group], exposed: int, q: Query, limit: int, offset: int) -> list[tuple]:
    """Machines of `groups`, by hostname, `limit` from `offset`."""
    wanted = {(g.set_id, g.release, g.kernel) for g in groups}
    fields = ("id", "hostname", "kernel", "release", "package_set_id")
    base = Machine.objects.filter(is_revoked=False)
    if q.machine_id is not None:
        base = base.filter(pk=q.machine_id)
    if exposed * 5 >= Machine.objects.count():
        # many machines match: walking the hostname index and skipping the others stops soonest
        candidates = base.order_by("hostname", "id").values_list(*fields).iterator(chunk_size=1000)
    else:
        sets = sorted({g.set_id for g in groups})
        candidates = sorted(
            (
                row
                for batch in _chunked(sets, 900)
                for row in base.filter(package_set_id__in=batch).values_list(*fields)
            ),
            key=lambda r: (r[1], r[0]),
        )
    page, skipped = [], 0
    for mid, host, kernel, release, set_id in candidates:
        if (set_id, release, kernel) not in wanted:
            continue
        if skipped < offset:
            skipped += 1
            continue
        page.append((mid, host, kernel, release, set_id))
        if len(page) >= limit:
            break
    return page


def search(
    q: Query, *, limit: int = 100, offset: int = 0, include_not_running: bool = False, count_fixed: bool = False
) -> dict:
    """A result page: counts over every affected machine (per priority and status, and "fixed" machines for
    a CVE or notice) and the findings of `limit` machines from `offset`, by hostname. The counts are worked
    out per group of alike machines, so their cost follows the number of package sets, not of machines;
    deploying/deployed (per machine jobs) are resolved for the page only and counted as approved."""
    per_set = _set_findings(q)
    groups = _groups(q, per_set, include_not_running=include_not_running)
    s = _summarise(groups)
    machines = _page(groups, s["machines"], q, limit, offset) if groups else ()
    rows = _machine_rows(per_set, machines, include_not_running)
    rows.sort(key=lambda r: (r["hostname"], -priority_rank(r["priority"]), r["notice"], r["cve"] or "", r["package"]))
    if count_fixed and (q.cve or q.notice):  # one more pass over the fixed machines: asked for, not default
        s["fixed"] = _fixed_count(q, groups)
    return {"query": q.label, "summary": s, "findings": rows, "limit": limit, "offset": offset}


def _fixed_sets(q: Query) -> dict[str, set[int]]:
    """{release: package sets used on it that have a binary of an affected source at or above its fix}."""
    from uus.inventory.choices import PackageStatus
    from uus.inventory.models import PackageSetChunk

    from .models import EvaluatedSet

    entries = AffectedPackage.objects.exclude(fixed="")
    entries = entries.filter(notice__cves=q.cve) if q.cve else entries.filter(notice_id=q.notice)
    out: dict[str, set[int]] = defaultdict(set)
    for source, release, fixed_key in entries.values_list("source", "release", "fixed_key").distinct():
        used = EvaluatedSet.objects.filter(release=release).values("package_set_id")
        out[release] |= set(
            PackageSetChunk.objects.filter(
                package_set_id__in=used,
                chunk__members__package__source=source,
                chunk__members__package__source_version_key__gte=fixed_key,
                chunk__members__status=PackageStatus.INSTALLED,
            )
            .values_list("package_set_id", flat=True)
            .distinct()
        )
    return out


def _fixed_count(q: Query, groups: list[_Group]) -> int:
    """Machines with a binary of an affected source at or above its fix and no exposed finding: "fixed"."""
    exposed_in: dict[tuple[int, str], int] = defaultdict(int)
    for g in groups:
        if any(r["status"] in EXPOSED_STATUSES for r in g.rows):
            exposed_in[(g.set_id, g.release)] += g.machines
    total = 0
    for release, sets in _fixed_sets(q).items():
        for batch in _chunked(sorted(sets), 900):
            total += Machine.objects.filter(is_revoked=False, release=release, package_set_id__in=batch).count()
        total -= sum(n for (set_id, rel), n in exposed_in.items() if rel == release and set_id in sets)
    return total


def fixed_machines(q: Query, exposed_ids: set[int]) -> int:
    """Machines that have a binary of an affected source at or above its fix, outside `exposed_ids`."""
    if not (q.cve or q.notice):
        return 0
    fixed: set[int] = set()
    for release, sets in _fixed_sets(q).items():
        for batch in _chunked(sorted(sets), 900):
            fixed |= set(
                Machine.objects.filter(is_revoked=False, release=release, package_set_id__in=batch).values_list(
                    "pk", flat=True
                )
            )
    return len(fixed - exposed_ids)


def _entry_ranks() -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """({notice: {CVE: priority rank}}, {notice: its own rank}) as findings() rates them."""
    per_cve: dict[str, dict[str, int]] = defaultdict(dict)
    for notice, cve, nc_prio, cve_prio, notice_prio in NoticeCve.objects.values_list(
        "notice_id", "cve_id", "priority", "cve__priority", "notice__priority"
    ):
        per_cve[notice][cve] = priority_rank(nc_prio or cve_prio or notice_prio)
    return per_cve, {n: priority_rank(p) for n, p in Notice.objects.values_list("id", "priority")}


def fleet_overview(top: int = 10) -> dict:
    """Dashboard numbers: machines exposed at each (highest) priority and the notices affecting most machines.
    One pass over the findings (per set, no CVE rows) and one grouped count of machines: its cost follows the
    number of distinct inventories, not of machines."""
    t = {"f": Finding._meta.db_table, "a": AffectedPackage._meta.db_table, "p": Package._meta.db_table}
    sql = f"""
        SELECT DISTINCT f.package_set_id, a.release, a.notice_id, a.cves, p.name, p.architecture, p.source
        FROM {t["f"]} f JOIN {t["a"]} a ON a.id = f.affected_id JOIN {t["p"]} p ON p.id = f.package_id
    """
    per_cve, notice_rank = _entry_ranks()
    per_pair: dict[tuple[int, str], list[tuple]] = defaultdict(list)
    with connection.cursor() as cur:
        cur.execute(sql)
        for set_id, release, notice, entry_cves, name, arch, source in cur.fetchall():
            if isinstance(entry_cves, str):
                entry_cves = json.loads(entry_cves)
            cves = {c: r for c, r in per_cve.get(notice, {}).items() if not entry_cves or c in entry_cves}
            rank = max(cves.values(), default=notice_rank.get(notice, 0))
            abi = _abi(name) if _is_kernel(source, name) else None
            keys = {(notice, c, name, arch) for c in cves} or {(notice, None, name, arch)}
            per_pair[(set_id, release)].append((notice, rank, abi, keys))
    by_priority: dict[str, int] = defaultdict(int)
    per_notice: dict[str, int] = defaultdict(int)
    exposed = findings_count = 0
    for set_id, release, kernel, _ring, n in _machine_groups({k[0] for k in per_pair}):
        rows = [r for r in per_pair.get((set_id, release), ()) if not r[2] or kernel.startswith(r[2])]
        if not rows:
            continue
        exposed += n
        findings_count += n * len(set().union(*(r[3] for r in rows)))
        by_priority[_PRIORITY_NAMES[max(r[1] for r in rows)]] += n
        for notice in {r[0] for r in rows}:
            per_notice[notice] += n
    top_notices = sorted(per_notice.items(), key=lambda x: (-x[1], x[0]))[:top]
    return {
        "exposed_machines": exposed,
        "by_priority": {p: by_priority[p] for p in (*reversed(PRIORITIES), "unknown") if by_priority.get(p)},
        "top_notices": top_notices,
        "findings": findings_count,
    }
