"""Reads of deployments and jobs: targets resolved to machines, per-deployment progress, what each
machine must receive at its next check-in, and "deployed" for exposure."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from .choices import DELIVERABLE, FAILED_JOB_STATES, FINISHED_JOB_STATES, MachineJobState
from .exceptions import DeploymentInvalid, DeploymentNotFound
from .models import Deployment, MachineJob, MaintenanceWindow

TARGET_KINDS = ("ring", "group", "ou", "machine")


def parse_target(target: str) -> tuple[str, str]:
    kind, sep, value = (target or "").partition(":")
    if not sep or kind not in TARGET_KINDS or not value:
        raise DeploymentInvalid(
            f"target '{target}' is not one of ring:NAME, group:NAME, ou:DN or machine:HOSTNAME[,HOSTNAME...]"
        )
    return kind, value


def target_machines(target: str) -> QuerySet:
    """The machines (not revoked) a target names now. Unknown rings, groups, OUs and machines raise."""
    from uus.approvals import selectors as approvals
    from uus.inventory.models import Machine
    from uus.inventory.selectors import machine_get

    kind, value = parse_target(target)
    if kind == "ring":
        return approvals.ring_machines(approvals.ring_get(value))
    if kind == "group":
        return approvals.group_machines(approvals.group_get(value))
    if kind == "ou":
        from uus.directory.selectors import machines_in_ou

        return machines_in_ou(value, queryset=Machine.objects.filter(is_revoked=False))
    # machine:web-01,web-02 names machines one by one (a hostname has no comma); each must exist
    idents = [v.strip() for v in value.split(",") if v.strip()]
    return Machine.objects.filter(pk__in=[machine_get(ident=i).pk for i in idents], is_revoked=False)


def deployment_list(*, state: str = "") -> QuerySet[Deployment]:
    qs = Deployment.objects.select_related("ring", "window")
    return qs.filter(state=state) if state else qs


def deployment_get(pk) -> Deployment:
    try:
        return Deployment.objects.select_related("ring", "window").get(pk=int(pk))
    except (Deployment.DoesNotExist, ValueError, TypeError):
        raise DeploymentNotFound(f"no deployment with id {pk!r}") from None


def deployment_counts(deployment: Deployment) -> dict[str, int]:
    """Jobs per state, plus total/finished/failed, in one query."""
    rows = dict(
        MachineJob.objects.filter(deployment=deployment).values_list("state").annotate(n=Count("id")).order_by()
    )
    counts = {s: rows.get(s, 0) for s in MachineJobState.values}
    counts["total"] = sum(rows.values())
    counts["finished"] = sum(rows.get(s, 0) for s in FINISHED_JOB_STATES)
    counts["failed_total"] = sum(rows.get(s, 0) for s in FAILED_JOB_STATES)
    return counts


def deployment_jobs(deployment: Deployment) -> QuerySet[MachineJob]:
    """Every job of a deployment, without the apt output (up to 64 KiB each; read one job for it)."""
    return (
        MachineJob.objects.filter(deployment=deployment)
        .select_related("machine")
        .defer("output")
        .order_by("machine__hostname")
    )


PROGRESS_ROWS = 200
LOG_TAIL = 2000


def deployment_progress_jobs(deployment: Deployment, limit: int = PROGRESS_ROWS) -> list[MachineJob]:
    """The rows the live deployment page shows (it is polled every second): failed jobs first, then those
    running, then the rest by hostname, at most `limit`, each with only the end of its apt output
    (`output_tail`), so that a 10,000-machine deployment costs the same poll as a small one."""
    from django.db.models import Case, IntegerField, Value, When
    from django.db.models.functions import Right

    rank = Case(
        When(state__in=FAILED_JOB_STATES, then=Value(0)),
        When(state__in=DELIVERABLE, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    return list(
        MachineJob.objects.filter(deployment=deployment)
        .select_related("machine")
        .defer("output")
        .annotate(rank=rank, output_tail=Right("output", LOG_TAIL))
        .order_by("rank", "machine__hostname")[:limit]
    )


def machine_jobs(machine) -> QuerySet[MachineJob]:
    return MachineJob.objects.filter(machine=machine).select_related("deployment").order_by("-created")


def jobs_to_deliver(machine) -> QuerySet[MachineJob]:
    return MachineJob.objects.filter(machine=machine, state__in=DELIVERABLE).order_by("queued_at", "id")


NEEDS_CURRENT_REPOSITORY = ("apt_install", "apt_upgrade")


def ring_repository_is_current(ring) -> bool:
    """Whether the ring's APT repository shows every approval decision made so far: published after the
    last change and no publish of it queued or running. Jobs that install are held until then, or
    apt would not find the version a job names (the publish runs in the background). Two short
    statements written out: this runs at every check-in that carries an install job."""
    import json

    from django.db import connection

    try:
        from uus.repos import tasks as repo_tasks
        from uus.repos.models import RingRepository
    except ImportError:  # no publisher: nothing to wait for
        return True
    from uus.approvals.models import Approval
    from uus.jobs.choices import JobState
    from uus.jobs.models import Job

    q = connection.ops.quote_name
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT {q('kwargs')} FROM {q(Job._meta.db_table)} WHERE {q('name')} = %s AND {q('state')} IN (%s, %s)",
            [repo_tasks.repo_publish.job_name, JobState.QUEUED, JobState.RUNNING],
        )
        for (kwargs,) in cur.fetchall():
            if (json.loads(kwargs) if isinstance(kwargs, str) else kwargs or {}).get("ring") == ring.name:
                return False  # a publish of this ring is queued or running
        cur.execute(
            f"SELECT (SELECT {q('last_published')} FROM {q(RingRepository._meta.db_table)} WHERE {q('ring_id')} = %s), "
            f"EXISTS (SELECT 1 FROM {q(Approval._meta.db_table)} WHERE {q('ring_id')} = %s AND {q('updated')} > "
            f"(SELECT {q('last_published')} FROM {q(RingRepository._meta.db_table)} WHERE {q('ring_id')} = %s))",
            [ring.pk, ring.pk, ring.pk],
        )
        published, changed_since = cur.fetchone()
    # never published and none queued: nothing will change by waiting
    return published is None or not changed_since


def window_list() -> QuerySet[MaintenanceWindow]:
    return MaintenanceWindow.objects.all()


def window_get(name: str) -> MaintenanceWindow:
    try:
        return MaintenanceWindow.objects.get(name=name)
    except MaintenanceWindow.DoesNotExist:
        raise DeploymentInvalid(f"no maintenance window named '{name}'") from None


def deployed_state(machine, package: str, version: str) -> str | None:
    """ "deployed" when a succeeded job of `machine` installed `package` `version`, "pending" when a job
    that will install it is queued or delivered, else None (for exposure's "approved, not deployed")."""
    wanted = f"{package}={version}"
    rows = MachineJob.objects.filter(machine=machine, state__in=(MachineJobState.SUCCEEDED, *DELIVERABLE)).values_list(
        "state", "package_changes", "params"
    )
    pending = False
    for state, changes, params in rows.order_by("-created")[:500]:
        if state == MachineJobState.SUCCEEDED:
            if any(c.get("name") == package and c.get("after") == version for c in changes or []):
                return "deployed"
        elif wanted in (params or {}).get("packages", []):
            pending = True
    return "pending" if pending else None


def last_failed_job_time(machines: QuerySet):
    """When a job of these machines last failed, expired or timed out (its row's last change), or None."""
    return (
        MachineJob.objects.filter(Q(machine__in=machines), state__in=FAILED_JOB_STATES)
        .order_by("-updated")
        .values_list("updated", flat=True)
        .first()
    )
