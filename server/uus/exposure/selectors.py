"""Reads: every finding for a CVE, a notice, a package or a machine, with its status.

The rule (issue 5): a machine on release R is exposed to notice N for CVE C when an affected entry of N for
R names source S and an installed binary built from S has a source version v with introduced <= v < fixed
(no fixed: no fix yet). Entries only under Ubuntu:Pro:R are "fix needs Ubuntu Pro". Kernel binaries (names
carrying an ABI such as 5.15.0-60) count only for the running kernel; other installed kernels are "not
running" and listed apart; a running vulnerable kernel with a fixed kernel installed beside it is "fixed,
reboot pending". Storage, upkeep and costs: docs/decisions/0005-exposure-findings.md.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection

from uus.catalog.choices import PRIORITIES, priority_rank
from uus.catalog.models import AffectedPackage, NoticeCve
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


def _finding_rows(q: Query) -> list[tuple[int, int, int]]:
    """(package set, affected entry, package) of every stored finding the query concerns: three integers a
    row, so the entries, CVEs and packages they name are read once each (below), not once per set."""
    t = {"f": Finding._meta.db_table, "a": AffectedPackage._meta.db_table, "p": Package._meta.db_table}
    where, params, join_p = [], [], False
    if q.cve:
        where.append(f"a.notice_id IN (SELECT notice_id FROM {NoticeCve._meta.db_table} WHERE cve_id = %s)")
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
        join_p = True
    elif q.package:
        where.append("(p.name = %s OR p.source = %s)")
        params += [q.package, q.package]
        join_p = True
    if q.machine_id is not None:
        machine = Machine.objects.filter(pk=q.machine_id).values_list("package_set_id", "release").first()
        if not machine or machine[0] is None:
            return []
        where += ["f.package_set_id = %s", "a.release = %s"]
        params += list(machine)
    # Per package set, not per machine: a fleet has far fewer distinct sets than machines, so this stays
    # small; machines are joined in afterwards. Findings exist only for releases machines use a set on
    # (services.py); sets no machine uses any more simply join no machine until inventory collects them.
    sql = f"""
        SELECT f.package_set_id, f.affected_id, f.package_id
        FROM {t["f"]} f JOIN {t["a"]} a ON a.id = f.affected_id
        {f"JOIN {t['p']} p ON p.id = f.package_id" if join_p else ""}
        WHERE {" AND ".join(where) or "1=1"}
    """
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


@dataclass
class _Entry:
    """An affected entry with what every finding of it shares: its notice's CVEs (those of its own
    cves_map only, when it has one) with their priorities."""

    release: str
    notice: str
    fixed: str
    fixed_key: bytes | None
    is_pro: bool
    ecosystem: str
    codename: str
    distro: str
    fixed_binaries: dict  # binary name: fixed binary version
    cves: list  # [(CVE id or None, priority or None)]


def _entries(ids: set[int], q: Query) -> dict[int, _Entry]:
    out: dict[int, _Entry] = {}
    rows = []
    for batch in _chunked(sorted(ids), 900):
        rows += AffectedPackage.objects.filter(pk__in=batch).values_list(
            "id",
            "release",
            "notice_id",
            "fixed",
            "fixed_key",
            "is_pro",
            "ecosystem",
            "codename",
            "distro",
            "binaries",
            "cves",
            "notice__priority",
        )
    notices = {r[2] for r in rows}
    cves_of: dict[str, list] = defaultdict(list)
    nc = NoticeCve.objects.all() if len(notices) > 900 else NoticeCve.objects.filter(notice_id__in=notices)
    if q.cve:
        nc = nc.filter(cve_id=q.cve)
    for notice, cve, nc_prio, cve_prio in nc.values_list("notice_id", "cve_id", "priority", "cve__priority"):
        if notice in notices:
            cves_of[notice].append((cve, nc_prio or cve_prio or None))
    for pk, release, notice, fixed, fixed_key, is_pro, eco, codename, distro, binaries, own, notice_prio in rows:
        own = set(own or ())
        # an entry with its own CVEs (cves_map) carries only those: the notice's others are other releases'
        named = cves_of.get(notice) or [(None, None)]  # a notice that names no CVE: one finding without
        cves = [(c, p or notice_prio or None) for c, p in named if not own or c in own]
        out[pk] = _Entry(
            release,
            notice,
            fixed,
            bytes(fixed_key) if fixed_key is not None else None,
            bool(is_pro),
            eco,
            codename,
            distro,
            {b.get("name"): b.get("version") for b in binaries or ()},
            cves,
        )
    return out


def _packages(ids: set[int]) -> dict[int, tuple]:
    out: dict[int, tuple] = {}
    for batch in _chunked(sorted(ids), 900):
        for row in Package.objects.filter(pk__in=batch).values_list(
            "id", "name", "architecture", "version", "source", "source_version"
        ):
            out[row[0]] = row[1:]
    return out


def _abi(name: str) -> str | None:
    m = _ABI.search(name)
    return m.group(1) if m else None


def _kernel_release(name: str) -> str:
    """What `uname -r` says when this kernel binary runs: its ABI and flavour (linux-image-5.15.0-60-generic:
    5.15.0-60-generic), or the bare ABI for flavourless ones (linux-headers-5.15.0-60: 5.15.0-60)."""
    m = _ABI.search(name)
    return name[m.start(1) :] if m else ""


def _is_running(release: str, kernel: str) -> bool:
    """The exact kernel, or one of its flavours for a flavourless binary: never a prefix of another ABI
    (5.15.0-13 is not 5.15.0-130-generic)."""
    return kernel == release or (release == _abi(release) and kernel.startswith(release + "-"))


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


def _set_findings(q: Query) -> dict[tuple[int, str], list[dict]]:
    """{(package set, release): [finding without its machine]}: one per (notice, CVE, binary), the best
    entry chosen (a plain-release entry beats a Pro one; among equals the highest fix applies).

    A finding's fields depend on its entry, CVE and package only, so sets that share them share one dict
    (thousands of sets with the same vulnerable openssh cost one); kernel findings, whose reboot state
    depends on the set, get a copy per set."""
    found = _finding_rows(q)
    if not found:
        return {}
    entries = _entries({a for _, a, _ in found}, q)
    packages = _packages({p for _, _, p in found})
    shared: dict[tuple[int, int], list[dict]] = {}
    best: dict[tuple, dict] = {}
    for set_id, affected_id, package_id in found:
        rows = shared.get((affected_id, package_id))
        if rows is None:
            rows = shared[(affected_id, package_id)] = _finding_dicts(entries[affected_id], packages[package_id])
        for row in rows:
            key = (set_id, row["release"], row["notice"], row["cve"], row["package"], row["architecture"])
            prev = best.get(key)
            if (
                prev is None
                or (prev["pro_only"] and not row["pro_only"])
                or (
                    prev["pro_only"] == row["pro_only"]
                    and row["fixed_version"]
                    and prev["fixed_version"]
                    and row["_fixed_key"] > prev["_fixed_key"]
                )
            ):
                best[key] = row
    out: dict[tuple[int, str], list[dict]] = defaultdict(list)
    for (set_id, release, *_), row in best.items():
        out[(set_id, release)].append(row)
    _apply_archive_pockets([r for rows in shared.values() for r in rows])
    kernel_pairs = [k for k, rows in out.items() if any(r["_kernel"] for r in rows)]
    if kernel_pairs:
        sources = {r["source"] for k in kernel_pairs for r in out[k] if r["_kernel"]}
        installed = _installed_kernels({k[0] for k in kernel_pairs}, sources)
        for pair in kernel_pairs:
            rows = out[pair] = [dict(r) if r["_kernel"] else r for r in out[pair]]
            for r in rows:
                if r["_kernel"] and r["_fixed_key"] is not None:
                    # a kernel image of the same source at or above the fix is installed beside this one
                    r["_fixed_beside"] = any(
                        k >= r["_fixed_key"] and n.startswith("linux-image") and _kernel_release(n) != r["_kernel"]
                        for k, n in installed.get((pair[0], r["source"]), [])
                    )
    return out


def _finding_dicts(e: _Entry, package: tuple) -> list[dict]:
    """The findings (one per CVE of the entry) of one installed package, without set or machine."""
    name, arch, version, source, source_version = package
    fixed_binary = e.fixed_binaries.get(name)
    kernel = _kernel_release(name) if _is_kernel(source, name) else None
    needed = version_key(fixed_binary or e.fixed) if e.fixed else None
    return [
        {
            "release": e.release,
            "notice": e.notice,
            "cve": cve,
            "package": name,
            "architecture": arch,
            "installed_version": version,
            "source": source,
            "installed_source_version": source_version,
            "fixed_version": e.fixed or None,
            "fixed_binary_version": fixed_binary,
            "priority": priority,
            "status": Status.FIX_AVAILABLE if e.fixed else Status.NO_FIX,
            "pro_only": e.is_pro,
            "ecosystem": e.ecosystem,
            "pocket": _pocket(e.is_pro, e.codename, e.distro) if e.fixed else None,
            "_fixed_key": e.fixed_key,
            # what an approved version must reach: the binary's own fixed version when the notice names it
            "_needed_key": needed,
            "_kernel": kernel,
        }
        for cve, priority in e.cves
    ]


def _machine_status(row: dict, kernel: str) -> str:
    """Only the running kernel is exposure; a fixed kernel installed beside it means reboot pending."""
    if not row["_kernel"]:
        return row["status"]
    if not _is_running(row["_kernel"], kernel):
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
class _Answer:
    """What every machine of a group has for a query: the (priority, status, pro_only) of each finding,
    and the figures a summary adds up (worked out once per distinct answer, not per group)."""

    rows: list[tuple[str, str, bool]]
    findings: int = 0
    pro_only: int = 0
    exposed: bool = False
    priorities: frozenset = frozenset()
    statuses: frozenset = frozenset()

    def __post_init__(self) -> None:
        self.findings = len(self.rows)
        self.pro_only = sum(1 for r in self.rows if r[2])
        self.exposed = any(r[1] in EXPOSED_STATUSES for r in self.rows)
        self.priorities = frozenset(r[0] for r in self.rows)
        self.statuses = frozenset(r[1] for r in self.rows)


@dataclass
class _Group:
    """Machines that share a package set, a release, a running kernel and a ring answer alike."""

    set_id: int
    release: str
    kernel: str
    ring_id: int  # 0: no membership, the default ring
    machines: int
    answer: _Answer


def _machine_groups(set_ids) -> list[tuple]:
    """(set, release, kernel, ring id, machines) of the machines (not revoked) on these sets, from the counts
    the database keeps (machine_counts.py): a few thousand rows, never the machine table."""
    from .models import MachineCount

    fields = ("package_set_id", "release", "kernel", "ring_id", "machines")
    set_ids = set(set_ids)
    if not set_ids:
        return []
    if len(set_ids) > 900:  # most of the table: read it whole rather than in many IN lists
        return [g for g in MachineCount.objects.values_list(*fields) if g[0] in set_ids]
    return list(MachineCount.objects.filter(package_set_id__in=set_ids).values_list(*fields))


class _RingApprovals:
    """Approved versions per ring, read once per ring a search meets (approvals app's selector)."""

    def __init__(self) -> None:
        self._by_ring: dict[int, dict] = {}

    def __call__(self, ring_id: int) -> dict[str, list[tuple[bytes, str]]]:
        if ring_id not in self._by_ring:
            from uus.approvals import selectors as approvals
            from uus.approvals.models import Ring

            ring = approvals.default_ring() if not ring_id else Ring.objects.filter(pk=ring_id).first()
            self._by_ring[ring_id] = approvals.approved_versions(ring) if ring else {}
        return self._by_ring[ring_id]


def _answer(base: list[dict], kernel: str, approved: dict, include_not_running: bool) -> _Answer:
    rows = []
    for r in base:
        status = _machine_status(r, kernel)
        if status == Status.NOT_RUNNING and not include_not_running:
            continue
        if status == Status.FIX_AVAILABLE:
            # approvals depend on the ring only, so a whole group moves to "approved" at once; deploying
            # and deployed depend on each machine's jobs and are resolved for the machines of a page
            versions = approved.get(r["package"])
            if versions and any(k >= r["_needed_key"] for k, _ in versions):
                status = Status.APPROVED
        rows.append((r["priority"] or "unknown", status, r["pro_only"]))
    return _Answer(rows)


def _groups(per_set: dict, *, include_not_running: bool) -> list[_Group]:
    """The groups of machines that have findings for the query, each with its answer. Groups that differ
    only in what cannot change their answer share it: sets with the same findings (the same shared rows:
    thousands of sets with one vulnerable curl), the kernel when there is no kernel finding, the ring when
    it approved none of the fixes."""
    approvals = _RingApprovals()
    same_rows = {pair: tuple(map(id, rows)) for pair, rows in per_set.items()}  # per_set keeps the rows alive
    facts: dict[tuple, tuple[bool, frozenset]] = {}  # same rows: (has a kernel finding, binaries awaiting a fix)
    for pair, rows in per_set.items():
        if same_rows[pair] not in facts:
            facts[same_rows[pair]] = (
                any(r["_kernel"] for r in rows),
                frozenset(r["package"] for r in rows if r["status"] == Status.FIX_AVAILABLE),
            )
    answers: dict[tuple, _Answer] = {}
    out: list[_Group] = []
    for set_id, release, kernel, ring_id, n in _machine_groups({k[0] for k in per_set}):
        pair = (set_id, release)
        base = per_set.get(pair)
        if not base:
            continue
        kernel_matters, waiting = facts[same_rows[pair]]
        approved = approvals(ring_id) if waiting else {}
        approving = bool(approved) and not waiting.isdisjoint(approved)
        key = (same_rows[pair], kernel if kernel_matters else None, ring_id if approving else None)
        answer = answers.get(key)
        if answer is None:
            answer = answers[key] = _answer(base, kernel, approved if approving else {}, include_not_running)
        if answer.rows:
            out.append(_Group(set_id, release, kernel, ring_id, n, answer))
    return out


def _summarise(groups: list[_Group]) -> dict:
    by_priority: dict[str, int] = defaultdict(int)
    by_status: dict[str, int] = defaultdict(int)
    machines = findings_count = pro_only = 0
    for g in groups:
        a = g.answer
        findings_count += g.machines * a.findings
        pro_only += g.machines * a.pro_only
        if a.exposed:
            machines += g.machines
        for p in a.priorities:
            by_priority[p] += g.machines
        for st in a.statuses:
            by_status[st] += g.machines
    return {
        "machines": machines,
        "findings": findings_count,
        "by_priority": {p: by_priority.get(p, 0) for p in (*reversed(PRIORITIES), "unknown")},
        "by_status": {st: by_status[st] for st in STATUSES if st in by_status},
        "pro_only": pro_only,
    }


_PAGE_FIELDS = ("id", "hostname", "kernel", "release", "package_set_id")


def _page(groups: list[_Group], limit: int, offset: int) -> list[tuple]:
    """Machines of `groups`, by hostname, `limit` from `offset`. When they are a large share of the fleet,
    walking the hostname index and skipping the others stops soonest (a page of 100 of half the fleet
    reads about 200 rows); otherwise the database sorts the machines of the groups' sets. Rows are read
    in LIMITed slices from the last (hostname, id) seen: without a LIMIT, PostgreSQL plans a cursor over
    the whole table as a full sort (570 ms at 1M machines) instead of an index walk (under 1 ms)."""
    from django.db.models import Q

    wanted = {(g.set_id, g.release, g.kernel) for g in groups}
    listed = sum(g.machines for g in groups)
    sets = sorted({g.set_id for g in groups})
    base = Machine.objects.filter(is_revoked=False)
    if listed * 5 < _fleet_size() and len(sets) <= 5000:
        base = base.filter(package_set_id__in=sets)
    base = base.order_by("hostname", "id")
    size = max((offset + limit) * 2, 200)
    page, skipped, last = [], 0, None
    while len(page) < limit:
        qs = base if last is None else base.filter(Q(hostname__gt=last[1]) | Q(id__gt=last[0]), hostname__gte=last[1])
        rows = list(qs.values_list(*_PAGE_FIELDS)[:size])
        for row in rows:
            if (row[4], row[3], row[2]) not in wanted:
                continue
            if skipped < offset:
                skipped += 1
                continue
            page.append(row)
            if len(page) >= limit:
                break
        if len(rows) < size:
            break
        last = rows[-1]
        size = min(size * 4, 100_000)
    return page


def _fleet_size() -> int:
    """Machines counted in groups (not revoked, with an inventory), from the counts, not the machine table."""
    from django.db.models import Sum

    from .models import MachineCount

    return MachineCount.objects.aggregate(n=Sum("machines"))["n"] or 0


def search(
    q: Query, *, limit: int = 100, offset: int = 0, include_not_running: bool = False, count_fixed: bool = False
) -> dict:
    """A result page: counts over every affected machine (per priority and status, and "fixed" machines for
    a CVE or notice) and the findings of `limit` machines from `offset`, by hostname. The counts are worked
    out per group of alike machines from the counts the database keeps, so their cost follows the number of
    distinct inventories, not of machines; deploying/deployed (per machine jobs) are resolved for the page
    only and counted as approved."""
    if q.machine_id is not None:  # one machine: its own list is the answer
        rows = findings(q, include_not_running=include_not_running)
        rows = rows if offset == 0 and limit > 0 else []
        return {"query": q.label, "summary": summary(rows), "findings": rows, "limit": limit, "offset": offset}
    per_set = _set_findings(q)
    groups = _groups(per_set, include_not_running=include_not_running)
    s = _summarise(groups)
    machines = _page(groups, limit, offset) if groups else ()
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
    exposed = {(g.set_id, g.release, g.kernel, g.ring_id) for g in groups if g.answer.exposed}
    fixed = _fixed_sets(q)
    total = 0
    for set_id, release, kernel, ring_id, n in _machine_groups(set().union(*fixed.values())):
        if set_id in fixed.get(release, ()) and (set_id, release, kernel, ring_id) not in exposed:
            total += n
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


def fleet_overview(top: int = 10) -> dict:
    """Dashboard numbers: machines exposed at each (highest) priority and the notices affecting most machines.
    One pass over the findings (per set, three integers a row) and the machine counts: its cost follows the
    number of distinct inventories, not of machines."""
    found = _finding_rows(Query())
    entries = _entries({a for _, a, _ in found}, Query()) if found else {}
    packages = _packages({p for _, _, p in found}) if found else {}
    facts: dict[tuple[int, int], tuple | None] = {}
    per_pair: dict[tuple[int, str], list[tuple]] = defaultdict(list)
    for set_id, affected_id, package_id in found:
        e = entries[affected_id]
        f = facts.get((affected_id, package_id), False)
        if f is False:
            name, arch, _, source, _ = packages[package_id]
            # (notice, worst priority rank of its CVEs, kernel release or None, the findings it makes)
            f = facts[(affected_id, package_id)] = (
                (
                    e.notice,
                    max(priority_rank(p) for _, p in e.cves),
                    _kernel_release(name) if _is_kernel(source, name) else None,
                    frozenset((e.notice, c, name, arch) for c, _ in e.cves),
                )
                if e.cves
                else None
            )
        if f is not None:
            per_pair[(set_id, e.release)].append(f)
    by_priority: dict[str, int] = defaultdict(int)
    per_notice: dict[str, int] = defaultdict(int)
    exposed = findings_count = 0
    kernel_matters = {pair: any(r[2] for r in rows) for pair, rows in per_pair.items()}
    same_rows = {pair: tuple(map(id, rows)) for pair, rows in per_pair.items()}  # facts keep the rows alive
    answers: dict[tuple, tuple | None] = {}
    for set_id, release, kernel, _ring, n in _machine_groups({k[0] for k in per_pair}):
        pair = (set_id, release)
        if pair not in per_pair:
            continue
        key = (same_rows[pair], kernel if kernel_matters[pair] else None)
        if key not in answers:  # (findings, worst priority, notices) of each machine of the group
            rows = [r for r in per_pair[pair] if not r[2] or _is_running(r[2], kernel)]
            answers[key] = (
                (
                    len(frozenset().union(*(r[3] for r in rows))),
                    _PRIORITY_NAMES[max(r[1] for r in rows)],
                    {r[0] for r in rows},
                )
                if rows
                else None
            )
        answer = answers[key]
        if answer is None:
            continue
        exposed += n
        findings_count += n * answer[0]
        by_priority[answer[1]] += n
        for notice in answer[2]:
            per_notice[notice] += n
    top_notices = sorted(per_notice.items(), key=lambda x: (-x[1], x[0]))[:top]
    return {
        "exposed_machines": exposed,
        "by_priority": {p: by_priority[p] for p in (*reversed(PRIORITIES), "unknown") if by_priority.get(p)},
        "top_notices": top_notices,
        "findings": findings_count,
    }
