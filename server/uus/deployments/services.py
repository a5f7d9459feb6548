"""Deployments: create, advance (windows, batches, canary), deliver jobs at check-in, record results,
cancel, retry, roll back. Every state change is one transaction with its audit events.

`deployment_advance` is the one place that starts machines. It runs when a deployment is created,
after every result, and from the periodic job `deployments.tasks.deployments_advance`, so a deployment
continues after a server restart from the rows alone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta

from django.db import transaction
from django.db.models import Q, Value
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from uus.approvals import selectors as approvals
from uus.approvals.services import versions_retain
from uus.audit.services import audit_record, audit_record_many
from uus.core.debversion import version_key
from uus.directory.selectors import scope_require
from uus.inventory.choices import ABSENT_STATUSES

from . import selectors
from .choices import (
    ACCEPTS_RESULT,
    ACTIVE_DEPLOYMENT_STATES,
    FAILED_JOB_STATES,
    OPEN_JOB_STATES,
    DeploymentAction,
    DeploymentState,
    MachineJobState,
)
from .exceptions import DeploymentConflict, DeploymentInvalid, WindowInvalid
from .models import MACHINE_TIME_ZONE, Deployment, MachineJob, MaintenanceWindow

log = logging.getLogger(__name__)

# The agent's own rule for package arguments (protocol/v1/README.md, "Jobs").
PACKAGE_ARG = re.compile(r"^[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?(=[A-Za-z0-9.+~:-]+|/[A-Za-z0-9.-]+)?$")
RESULT_STATES = {
    "succeeded": MachineJobState.SUCCEEDED,
    "failed": MachineJobState.FAILED,
    "expired": MachineJobState.EXPIRED,
}
TIMEOUT_GRACE = timedelta(hours=1)  # a delivered job may still be running at its deadline
ROLLBACK_KEEP = timedelta(days=30)  # how long replaced versions stay published for a rollback
MAX_OUTPUT = 64 * 1024


def parse_time(value: str | datetime | None) -> datetime | None:
    """ISO 8601 (naive = UTC), or "now"."""
    if value is None or value == "" or isinstance(value, datetime):
        return value or None
    if value == "now":
        return timezone.now()
    parsed = parse_datetime(value)
    if parsed is None:
        raise DeploymentInvalid(f"'{value}' is not a time: use ISO 8601, e.g. 2026-11-25T22:00:00Z")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _actor_name(user) -> str:
    return user if isinstance(user, str) else (getattr(user, "username", "") or "")


# -- maintenance windows ---------------------------------------------------------------------------


@transaction.atomic
def window_create(
    *, name: str, weekdays: Iterable[int], start: time | str, duration_minutes: int, tz: str = "UTC", user=None
) -> MaintenanceWindow:
    import zoneinfo

    weekdays = sorted(set(weekdays))
    if not weekdays or any(not isinstance(d, int) or not 0 <= d <= 6 for d in weekdays):
        raise WindowInvalid("weekdays must be numbers 0 (Monday) to 6 (Sunday), at least one")
    if isinstance(start, str):
        try:
            start = time.fromisoformat(start)
        except ValueError:
            raise WindowInvalid(f"start '{start}' is not a time of day like 22:00") from None
    if not 0 < duration_minutes <= 7 * 24 * 60:
        raise WindowInvalid("duration_minutes must be between 1 and one week")
    if tz != MACHINE_TIME_ZONE:
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise WindowInvalid(
                f"'{tz}' is not a time zone name such as Europe/Berlin, nor '{MACHINE_TIME_ZONE}'"
            ) from None
    if MaintenanceWindow.objects.filter(name=name).exists():
        raise WindowInvalid(f"a maintenance window named '{name}' already exists")
    window = MaintenanceWindow.objects.create(
        name=name, weekdays=weekdays, start=start, duration_minutes=duration_minutes, timezone=tz
    )
    audit_record(user, "window.create", f"window:{name}", weekdays=weekdays, start=str(start), tz=tz)
    return window


# -- create ----------------------------------------------------------------------------------------


def _check_packages(action: str, packages: list[str]) -> None:
    bad = [p for p in packages if not isinstance(p, str) or not PACKAGE_ARG.match(p)]
    if bad:
        raise DeploymentInvalid(
            f"not package arguments (name[:arch][=version] or name/release): {', '.join(map(str, bad))}"
        )
    if action in (DeploymentAction.INSTALL, DeploymentAction.REMOVE) and not packages:
        raise DeploymentInvalid(f"a deployment that does '{action}' needs packages")
    if action == DeploymentAction.REBOOT and packages:
        raise DeploymentInvalid("a reboot deployment takes no packages")


def _refuse_declined(packages: list[str], machines: list) -> None:
    """An install that names a version declined for the ring of any target machine is refused here,
    with the ring's reason, rather than failing on each machine (apt would not find it anyway)."""
    from uus.approvals.choices import ApprovalState
    from uus.approvals.models import Approval, RingMembership

    pinned = {}
    for p in packages:
        name, sep, version = p.partition("=")
        if sep:
            pinned[name.split(":")[0]] = version
    if not pinned:
        return
    ring_ids = set(RingMembership.objects.filter(machine__in=machines).values_list("ring_id", flat=True))
    if RingMembership.objects.filter(machine__in=machines).count() < len(machines):
        ring_ids.add(approvals.default_ring().pk)
    declined = Approval.objects.filter(
        ring_id__in=ring_ids, state=ApprovalState.DECLINED, name__in=list(pinned)
    ).select_related("ring")
    bad = [a for a in declined if pinned.get(a.name) == a.version]
    if bad:
        a = bad[0]
        why = f" ({a.comment})" if a.comment else ""
        raise DeploymentInvalid(f"{a.name} {a.version} is declined for ring '{a.ring.name}'{why}: not deployed")


@transaction.atomic
def deployment_create(
    *,
    target: str,
    action: str = DeploymentAction.INSTALL_APPROVED,
    packages: Iterable[str] = (),
    at: str | datetime | None = None,
    deadline: str | datetime | None = None,
    window: MaintenanceWindow | None = None,
    batch_size: int = 0,
    failure_threshold: int | None = None,
    job_timeout_minutes: int = 24 * 60,
    comment: str = "",
    user=None,
) -> Deployment:
    """Create a deployment with one waiting job per target machine, and start what may start now."""
    if action not in DeploymentAction.values or action == DeploymentAction.ROLLBACK:
        raise DeploymentInvalid(
            f"'{action}' is not an action: use one of install_approved, upgrade, install, remove, reboot"
        )
    packages = list(packages)
    _check_packages(action, packages)
    if failure_threshold is not None and not 0 < failure_threshold <= 100:
        raise DeploymentInvalid("failure_threshold is a percentage between 1 and 100")
    if batch_size < 0 or job_timeout_minutes <= 0:
        raise DeploymentInvalid("batch_size must be 0 (all) or more, job_timeout_minutes more than 0")
    start_at = parse_time(at) or timezone.now()
    deadline_at = parse_time(deadline)
    if deadline_at and deadline_at < start_at:
        raise DeploymentInvalid("the deadline is before the start time")
    kind, value = selectors.parse_target(target)
    machines = list(selectors.target_machines(target).order_by("hostname", "id"))
    if not machines:
        raise DeploymentInvalid(f"target '{target}' has no machines")
    scope_require(user, machines, what=f"target '{target}'")
    if action == DeploymentAction.INSTALL:
        _refuse_declined(packages, machines)
    deployment = Deployment.objects.create(
        target=target,
        action=action,
        packages=packages,
        ring=approvals.ring_get(value) if kind == "ring" else None,
        start_at=start_at,
        deadline=deadline_at,
        window=window,
        batch_size=batch_size,
        failure_threshold=failure_threshold,
        job_timeout_minutes=job_timeout_minutes,
        comment=comment,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        created_by_name=_actor_name(user),
    )
    MachineJob.objects.bulk_create([MachineJob(deployment=deployment, machine=m) for m in machines], batch_size=1000)
    audit_record(
        user,
        "deployment.create",
        f"deployment:{deployment.pk}",
        comment,
        target=target,
        action=action,
        packages=packages,
        machines=len(machines),
        start_at=start_at.isoformat(),
    )
    return deployment_advance(deployment)


# -- advance ---------------------------------------------------------------------------------------


def _installed(machine, names) -> dict[str, tuple[bytes, str]]:
    """{name: (version key, version)} of what is installed (not just configuration files) among `names`."""
    from uus.inventory.selectors import machine_packages

    out: dict[str, tuple[bytes, str]] = {}
    rows = machine_packages(machine=machine).filter(package__name__in=list(names))
    for m in rows.only("status", "package__name", "package__version", "package__version_key"):
        if m.status in ABSENT_STATUSES:
            continue
        key = bytes(m.package.version_key)
        if m.package.name not in out or out[m.package.name][0] < key:
            out[m.package.name] = (key, m.package.version)
    return out


def job_for(deployment: Deployment, machine, cache: dict) -> tuple[str, dict] | None:
    """The (type, params) a machine's job gets when it starts, or None when it has nothing to do.
    `cache` is shared by one advance: rings' approved sets and the answer per (ring, package set),
    since machines with one inventory share one package set."""
    action = deployment.action
    if action == DeploymentAction.INSTALL:
        return "apt_install", {"packages": list(deployment.packages), "update": True}
    if action == DeploymentAction.REMOVE:
        return "apt_remove", {"packages": list(deployment.packages), "purge": False}
    if action == DeploymentAction.UPGRADE:
        return "apt_upgrade", {"update": True}
    if action == DeploymentAction.REBOOT:
        # only when the machine says so (its last check-in): a job is the one thing that reboots
        return ("reboot", {"delay_minutes": 1}) if machine.is_reboot_required else None
    # install_approved: the ring's approved versions newer than what the machine has
    ring = deployment.ring or approvals.ring_of(machine)
    if ("ring", ring.pk) not in cache:
        cache[("ring", ring.pk)] = approvals.approved_versions(ring)
    approved = cache[("ring", ring.pk)]
    only = {p.split("=")[0].split(":")[0] for p in deployment.packages}
    names = [n for n in approved if not only or n in only]
    set_key = ("set", ring.pk, machine.package_set_id)
    if machine.package_set_id and set_key in cache:
        return cache[set_key]
    wanted = []
    for name, (key, _) in sorted(_installed(machine, names).items()):
        newer = [a for a in approved.get(name, []) if a[0] > key]
        if newer:
            wanted.append(f"{name}={max(newer)[1]}")
    spec = ("apt_install", {"packages": wanted, "update": True}) if wanted else None
    if machine.package_set_id:
        cache[set_key] = spec
    return spec


def _window_binds(deployment: Deployment, now: datetime) -> bool:
    """Whether the maintenance window still limits when machines may start (none, or past the deadline: no)."""
    return deployment.window is not None and not (deployment.deadline and now >= deployment.deadline)


def _in_window(deployment: Deployment, now: datetime) -> bool:
    """May any waiting machine start now? A per-machine window asks once per time zone of the waiting
    machines (a handful of zones, not one question per machine)."""
    if not _window_binds(deployment, now):
        return True
    window = deployment.window
    if not window.is_per_machine:
        return window.is_open(now)
    zones = (
        MachineJob.objects.filter(deployment=deployment, state=MachineJobState.WAITING)
        .values_list("machine__time_zone", flat=True)
        .distinct()
    )
    return any(window.is_open(now, zone) for zone in zones)


def _expire(deployment: Deployment, now: datetime) -> None:
    jobs = MachineJob.objects.filter(deployment=deployment)
    n = jobs.filter(state=MachineJobState.QUEUED, deadline__lt=now).update(
        state=MachineJobState.EXPIRED, error="not_picked_up", updated=now
    )
    m = jobs.filter(state=MachineJobState.DELIVERED, deadline__lt=now - TIMEOUT_GRACE).update(
        state=MachineJobState.TIMED_OUT, error="timeout", updated=now
    )
    if n or m:
        audit_record(None, "deployment.jobs_expired", f"deployment:{deployment.pk}", not_picked_up=n, timed_out=m)


def _finish(deployment: Deployment, state: str, now: datetime, reason: str = "") -> None:
    deployment.state = state
    deployment.finished = now
    deployment.halted_reason = reason
    deployment.save(update_fields=["state", "finished", "halted_reason", "updated"])
    audit_record(None, f"deployment.{state}", f"deployment:{deployment.pk}", reason)
    if state == DeploymentState.HALTED:
        from uus.deployments.notifications import notify

        notify("deployment_halted", f"deployment {deployment.pk} halted: {reason}", deployment=deployment.pk)


@transaction.atomic
def deployment_advance(deployment: Deployment, *, now: datetime | None = None) -> Deployment:
    """Start the machines that may start now: after `start_at`, inside the window (or past the
    deadline), at most `batch_size` running at once, and none once the failure threshold is reached."""
    now = now or timezone.now()
    deployment = (
        Deployment.objects.select_for_update(of=("self",)).select_related("window", "ring").get(pk=deployment.pk)
    )
    if deployment.state not in ACTIVE_DEPLOYMENT_STATES or now < deployment.start_at:
        return deployment
    _expire(deployment, now)
    counts = selectors.deployment_counts(deployment)
    finished, failed = counts["finished"], counts["failed_total"]
    if deployment.failure_threshold and finished and failed * 100 >= deployment.failure_threshold * finished:
        _finish(
            deployment,
            DeploymentState.HALTED,
            now,
            f"{failed} of {finished} finished jobs failed (threshold {deployment.failure_threshold}%)",
        )
        return deployment
    in_flight = counts[MachineJobState.QUEUED] + counts[MachineJobState.DELIVERED]
    if counts[MachineJobState.WAITING] and _in_window(deployment, now):
        if deployment.state == DeploymentState.SCHEDULED:
            deployment.state = DeploymentState.RUNNING
            deployment.save(update_fields=["state", "updated"])
            audit_record(None, "deployment.started", f"deployment:{deployment.pk}")
        slots = deployment.batch_size - in_flight if deployment.batch_size else counts[MachineJobState.WAITING]
        in_flight += _start_jobs(deployment, slots, now)
    if not in_flight and not MachineJob.objects.filter(deployment=deployment, state=MachineJobState.WAITING).exists():
        _finish(deployment, DeploymentState.COMPLETED, now)
    return deployment


def _start_jobs(deployment: Deployment, slots: int, now: datetime) -> int:
    """Fix the params of up to `slots` waiting jobs and queue them (jobs with nothing to do are skipped)."""
    started = 0
    cache: dict = {}
    deadline = now + timedelta(minutes=deployment.job_timeout_minutes)
    waiting = (
        MachineJob.objects.filter(deployment=deployment, state=MachineJobState.WAITING)
        .select_related("machine")
        .order_by("machine__hostname", "id")
    )
    changed = []
    per_machine = deployment.window if _window_binds(deployment, now) and deployment.window.is_per_machine else None
    for job in waiting.iterator(chunk_size=1000):
        if started >= slots:
            break
        if per_machine and not per_machine.is_open(now, job.machine.time_zone):
            continue  # its own window has not opened yet: it stays waiting
        job.updated = now
        changed.append(job)
        if job.machine.is_revoked:
            job.state, job.error = MachineJobState.SKIPPED, "machine_revoked"
            continue
        if deployment.action == DeploymentAction.ROLLBACK:
            spec = (job.type, job.params) if job.type else None
        else:
            spec = job_for(deployment, job.machine, cache)
        if spec is None:
            job.state = MachineJobState.SKIPPED
            continue
        job.type, job.params = spec
        job.state, job.queued_at, job.deadline = MachineJobState.QUEUED, now, deadline
        started += 1
    MachineJob.objects.bulk_update(
        changed, ["type", "params", "state", "error", "queued_at", "deadline", "updated"], batch_size=500
    )
    return started


def deployments_advance_all(*, now: datetime | None = None) -> int:
    """Advance every scheduled or running deployment whose start time has come (the periodic job)."""
    now = now or timezone.now()
    ids = list(
        Deployment.objects.filter(state__in=ACTIVE_DEPLOYMENT_STATES, start_at__lte=now).values_list("pk", flat=True)
    )
    for pk in ids:
        deployment_advance(Deployment(pk=pk), now=now)
    # A halted or canceled deployment starts no one, but the jobs it had handed out still end: those
    # never picked up or never finished in time are marked so, as in a running one.
    stopped = (
        MachineJob.objects.filter(
            deployment__state__in=(DeploymentState.HALTED, DeploymentState.CANCELED),
            state__in=(MachineJobState.QUEUED, MachineJobState.DELIVERED),
            deadline__lt=now,
        )
        .values_list("deployment_id", flat=True)
        .distinct()
    )
    for pk in list(stopped):
        with transaction.atomic():
            _expire(Deployment.objects.select_for_update().get(pk=pk), now)
    return len(ids)


# -- the agent's side: delivery and results ----------------------------------------------------------


def jobs_for_machine(machine) -> list[dict]:
    """Jobs to deliver at this check-in: every queued or delivered job without a result (redelivery is
    safe: the agent never runs a job id twice). Called inside the check-in's transaction."""
    now = timezone.now()
    open_jobs = list(
        MachineJob.objects.filter(machine=machine, state__in=OPEN_JOB_STATES)
        .select_related("deployment")
        .order_by("queued_at", "id")
    )
    # Deployments due for this machine start here too, not only in the periodic job: a check-in right
    # after the start time (or after a server restart) gets its job without waiting for the scheduler.
    due = {
        j.deployment_id
        for j in open_jobs
        if j.state == MachineJobState.WAITING
        and j.deployment.state in ACTIVE_DEPLOYMENT_STATES
        and j.deployment.start_at <= now
    }
    for pk in sorted(due):
        deployment_advance(Deployment(pk=pk), now=now)
    if due:
        jobs = list(selectors.jobs_to_deliver(machine))
    else:
        jobs = [j for j in open_jobs if j.state in (MachineJobState.QUEUED, MachineJobState.DELIVERED)]
    if any(j.type in selectors.NEEDS_CURRENT_REPOSITORY for j in jobs) and not selectors.ring_repository_is_current(
        approvals.ring_of(machine)
    ):
        jobs = [j for j in jobs if j.type not in selectors.NEEDS_CURRENT_REPOSITORY]
    if not jobs:
        return []
    from django.db.models import Case, F, When

    # one UPDATE: queued jobs become delivered (now), every job counts one more delivery
    first = Q(state=MachineJobState.QUEUED)
    MachineJob.objects.filter(pk__in=[j.pk for j in jobs]).update(
        state=Case(When(first, then=Value(MachineJobState.DELIVERED)), default=F("state")),
        delivered_at=Case(When(first, then=Value(now)), default=F("delivered_at")),
        delivery_count=F("delivery_count") + 1,
        updated=now,
    )
    return [
        {
            "id": str(j.pk),
            "type": j.type,
            "params": j.params,
            "deadline": j.deadline.isoformat() if j.deadline else None,
        }
        for j in jobs
    ]


def _changes(result: dict) -> list[dict]:
    out = []
    for p in result.get("packages") or []:
        if isinstance(p, dict) and isinstance(p.get("name"), str):
            out.append({k: p.get(k) for k in ("name", "architecture", "before", "after")})
    return out


def job_results_record(machine, results: list[dict]) -> list[str]:
    """Store results (well-formed ones; see agentapi), first result per job id wins; return every job id
    received so the agent may forget it, including repeats and ids this server does not know."""
    from uuid import UUID

    by_id: dict[UUID, dict] = {}
    acked = []
    for r in results:
        acked.append(r["job_id"])
        try:
            by_id.setdefault(UUID(r["job_id"]), r)
        except ValueError:
            log.warning("machine %s reported a result for job id %r, not one of ours", machine.hostname, r["job_id"])
    if not by_id:
        return acked
    now = timezone.now()
    jobs = list(
        MachineJob.objects.filter(pk__in=list(by_id), machine=machine, state__in=ACCEPTS_RESULT).select_related(
            "deployment"
        )
    )
    events = []
    touched: dict[int, Deployment] = {}
    stored = []
    for job in jobs:
        r = by_id[job.pk]
        status = r.get("status")
        job.state = RESULT_STATES.get(status, MachineJobState.FAILED)
        job.result_status = status if status in RESULT_STATES else "failed"
        job.error = str(r.get("error") or "")[:64] if job.state != MachineJobState.SUCCEEDED else ""
        job.exit_code = r.get("exit_code") if isinstance(r.get("exit_code"), int) else None
        job.output = str(r.get("output") or "")[-MAX_OUTPUT:]
        job.started_at = parse_datetime(r["started_at"]) if isinstance(r.get("started_at"), str) else None
        job.finished_at = parse_datetime(r["finished_at"]) if isinstance(r.get("finished_at"), str) else None
        job.package_changes = _changes(r)
        job.is_reboot_required = r.get("reboot_required") is True
        # Conditional on the state: of two requests carrying one job's result, only the first stores it.
        if not MachineJob.objects.filter(pk=job.pk, state__in=ACCEPTS_RESULT).update(
            state=job.state,
            result_status=job.result_status,
            error=job.error,
            exit_code=job.exit_code,
            output=job.output,
            started_at=job.started_at,
            finished_at=job.finished_at,
            package_changes=job.package_changes,
            is_reboot_required=job.is_reboot_required,
            result_received=now,
            updated=now,
        ):
            continue
        stored.append(job)
        touched[job.deployment_id] = job.deployment
        events.append(
            (
                machine.hostname,
                "job.result",
                f"machine:{machine.hostname}",
                "",
                {
                    "job": str(job.pk),
                    "deployment": job.deployment_id,
                    "requested_by": job.deployment.created_by_name,
                    "status": job.state,
                    "error": job.error,
                    "exit_code": job.exit_code,
                    "reboot_required": job.is_reboot_required,
                },
            )
        )
        # each change names the job and who asked for it; the reason is the deployment's comment
        why = job.deployment.comment or f"deployment {job.deployment_id} ({job.deployment.action})"
        for c in job.package_changes:
            events.append(
                (
                    machine.hostname,
                    "package.change",
                    f"machine:{machine.hostname}",
                    why,
                    {"job": str(job.pk), "deployment": job.deployment_id, **c},
                )
            )
    jobs = stored
    audit_record_many(events)
    _retain_replaced(machine, jobs)
    failed = [j for j in jobs if j.state in FAILED_JOB_STATES]
    if failed:
        from uus.deployments.notifications import notify

        for j in failed:
            notify(
                "job_failed", f"job on {machine.hostname} failed: {j.error}", job=str(j.pk), machine=machine.hostname
            )
    for deployment in touched.values():
        # A result changes what may start only with batches or a threshold; otherwise only the last
        # result matters (the deployment completes). Skipping the rest keeps 10k results linear.
        open_jobs = MachineJob.objects.filter(deployment=deployment, state__in=OPEN_JOB_STATES)
        if deployment.batch_size or deployment.failure_threshold or not open_jobs.exists():
            deployment_advance(deployment, now=now)
    return acked


def _retain_replaced(machine, jobs: list[MachineJob]) -> None:
    """Keep the versions a job replaced published in the machine's ring, so a rollback can install them."""
    replaced = {
        (c["name"], c["before"])
        for j in jobs
        if j.deployment.action != DeploymentAction.ROLLBACK
        for c in j.package_changes
        if c.get("before") and c.get("after") and version_key(c["after"]) > version_key(c["before"])
    }
    if replaced:
        versions_retain(ring=approvals.ring_of(machine), versions=replaced, until=timezone.now() + ROLLBACK_KEEP)


# -- approval rules ---------------------------------------------------------------------------------


def approval_rules_apply(*, now: datetime | None = None) -> dict[str, int]:
    """Apply every enabled approval rule once. Lives here, not in approvals, because promotion looks at
    failed jobs. Decisions are recorded as made by "rule:<id>"; a declined or held version is never
    changed by a rule (only pending ones are decided)."""
    from uus.approvals.choices import ApprovalState, RuleKind
    from uus.approvals.models import Approval, ApprovalRule
    from uus.approvals.services import approvals_set_bulk
    from uus.audit.models import AuditEvent
    from uus.catalog.choices import priority_rank

    now = now or timezone.now()
    out = {"approved": 0, "promoted": 0}
    for rule in ApprovalRule.objects.filter(is_enabled=True).select_related("ring", "from_ring"):
        decided = set(Approval.objects.filter(ring=rule.ring).values_list("name", "version"))
        if rule.kind == RuleKind.AUTO_APPROVE_SECURITY:
            least = priority_rank(rule.min_priority)
            items = [
                (u.name, u.version)
                for u in approvals.updates_pending(ring=rule.ring, state="pending")
                if u.is_security and u.priority_rank >= least
            ]
            key = "approved"
        else:
            # what from_ring approved at least after_days ago, with no failed job in from_ring since
            cutoff = now - timedelta(days=rule.after_days)
            candidates = Approval.objects.filter(ring=rule.from_ring, state=ApprovalState.APPROVED, updated__lte=cutoff)
            last_failure = selectors.last_failed_job_time(approvals.ring_machines(rule.from_ring))
            if last_failure is not None:
                held = candidates.filter(updated__lte=last_failure)
                held_count = sum(1 for n, v in held.values_list("name", "version") if (n, v) not in decided)
                candidates = candidates.filter(updated__gt=last_failure)
                when = last_failure.isoformat()
                if (
                    held_count
                    and not AuditEvent.objects.filter(
                        action="rule.promotion_held", data__rule=rule.pk, data__failure=when
                    ).exists()
                ):  # once per failure, not at every run of the job
                    audit_record(
                        None,
                        "rule.promotion_held",
                        f"ring:{rule.ring.name}",
                        f"a job failed in ring {rule.from_ring.name} at {when}",
                        rule=rule.pk,
                        failure=when,
                        held=held_count,
                    )
            items = list(candidates.values_list("name", "version"))
            key = "promoted"
        items = [i for i in items if i not in decided]
        if items:
            approvals_set_bulk(
                ring=rule.ring, items=items, state=ApprovalState.APPROVED, comment=str(rule), user=f"rule:{rule.pk}"
            )
            out[key] += len(items)
    return out


# -- cancel, retry, rollback -------------------------------------------------------------------------


@transaction.atomic
def deployment_cancel(*, deployment: Deployment, user=None, reason: str = "") -> Deployment:
    """Stop a deployment: jobs not delivered yet are canceled; delivered ones may still report."""
    deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
    if deployment.state in (DeploymentState.COMPLETED, DeploymentState.CANCELED):
        raise DeploymentConflict(f"deployment {deployment.pk} is already {deployment.state}")
    now = timezone.now()
    n = MachineJob.objects.filter(
        deployment=deployment, state__in=(MachineJobState.WAITING, MachineJobState.QUEUED)
    ).update(state=MachineJobState.CANCELED, updated=now)
    deployment.state, deployment.finished = DeploymentState.CANCELED, now
    deployment.save(update_fields=["state", "finished", "updated"])
    audit_record(user, "deployment.cancel", f"deployment:{deployment.pk}", reason, canceled_jobs=n)
    return deployment


@transaction.atomic
def deployment_retry(*, deployment: Deployment, user=None, reason: str = "") -> Deployment:
    """Run failed, expired and canceled machines again (with new job ids) and resume a halted deployment."""
    deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
    retry = MachineJob.objects.filter(deployment=deployment, state__in=(*FAILED_JOB_STATES, MachineJobState.CANCELED))
    machines = list(retry.values_list("machine_id", flat=True))
    if not machines:
        raise DeploymentConflict(f"deployment {deployment.pk} has no failed or canceled machines to retry")
    retry.delete()
    MachineJob.objects.bulk_create([MachineJob(deployment=deployment, machine_id=m) for m in machines])
    deployment.state, deployment.finished, deployment.halted_reason = DeploymentState.RUNNING, None, ""
    deployment.save(update_fields=["state", "finished", "halted_reason", "updated"])
    audit_record(user, "deployment.retry", f"deployment:{deployment.pk}", reason, machines=len(machines))
    return deployment_advance(deployment)


@transaction.atomic
def deployment_rollback(*, deployment: Deployment, user=None, reason: str = "") -> Deployment:
    """A new deployment that returns each machine of `deployment` to the versions it had before: the
    replaced versions are installed again (they stay published, see _retain_replaced), and packages
    the deployment newly installed are removed."""
    jobs = list(
        MachineJob.objects.filter(deployment=deployment, state=MachineJobState.SUCCEEDED)
        .exclude(package_changes=[])
        .select_related("machine")
    )
    if not jobs:
        raise DeploymentConflict(f"deployment {deployment.pk} changed no packages: nothing to roll back")
    now = timezone.now()
    rollback = Deployment.objects.create(
        target=deployment.target,
        action=DeploymentAction.ROLLBACK,
        ring=deployment.ring,
        start_at=now,
        batch_size=deployment.batch_size,
        failure_threshold=deployment.failure_threshold,
        rollback_of=deployment,
        comment=reason,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        created_by_name=_actor_name(user),
    )
    rows = []
    for job in jobs:
        restore = sorted(f"{c['name']}={c['before']}" for c in job.package_changes if c.get("before"))
        new = sorted(c["name"] for c in job.package_changes if not c.get("before") and c.get("after"))
        if restore:
            # --allow-downgrades is needed for apt-get -y to go back; removal of new ones is a second step
            params = {"packages": restore, "update": True, "allow_downgrades": True}
            rows.append(MachineJob(deployment=rollback, machine=job.machine, type="apt_install", params=params))
        elif new:
            rows.append(
                MachineJob(
                    deployment=rollback,
                    machine=job.machine,
                    type="apt_remove",
                    params={"packages": new, "purge": False},
                )
            )
    MachineJob.objects.bulk_create(rows)
    audit_record(
        user, "deployment.rollback", f"deployment:{deployment.pk}", reason, rollback=rollback.pk, machines=len(rows)
    )
    return deployment_advance(rollback)
