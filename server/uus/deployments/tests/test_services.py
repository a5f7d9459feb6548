"""Deployments called directly: jobs computed from approvals and inventories, delivery, results
(first one wins), canary halting, maintenance windows, cancel/retry/rollback, resuming from rows."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.utils import timezone

from uus.approvals import selectors as approvals
from uus.approvals import services as approval_services
from uus.approvals.tests.factories import JQ_NEW, JQ_OLD, jq_archive, rings_make
from uus.audit.models import AuditEvent
from uus.deployments import selectors, services
from uus.deployments.exceptions import DeploymentInvalid, WindowInvalid
from uus.deployments.models import Deployment, MachineJob
from uus.inventory.exceptions import InvalidInventory
from uus.inventory.models import Machine
from uus.inventory.tests.factories import entries, entry, machine_make

pytestmark = pytest.mark.django_db


def at_wednesday(hour: int, minute: int, *, days: int = 0) -> datetime:
    """A time on a Wednesday at least two weeks ahead (plus `days`): deployment_create advances with the
    real clock, so the times these tests step through must all lie in its future."""
    day = timezone.now().date() + timedelta(days=14)
    day += timedelta(days=(2 - day.weekday()) % 7)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) + timedelta(days=days)


JQ_MACHINE = entries(entry("jq", JQ_OLD, source="jq"), entry("libjq1", JQ_OLD, source="jq"), entry("libc6", "2.36"))


@pytest.fixture
def fleet():
    rings_make()
    jq_archive()
    test = approvals.ring_get("test")
    machines = {h: machine_make(h, packages=JQ_MACHINE, release="12", os_id="debian") for h in ("t1", "t2", "p1")}
    for h in ("t1", "t2"):
        approval_services.machine_set_ring(machine=machines[h], ring=test)
    approval_services.approvals_set_bulk(ring=test, items=[("jq", JQ_NEW), ("libjq1", JQ_NEW)], state="approved")
    return machines


def result(job_id, status="succeeded", *, changes=(), error=None):
    return {
        "job_id": str(job_id),
        "status": status,
        "error": error,
        "exit_code": 0 if status == "succeeded" else 100,
        "output": "$ apt-get install jq\n",
        "started_at": "2026-11-25T10:00:00Z",
        "finished_at": "2026-11-25T10:00:05Z",
        "packages": [{"name": n, "architecture": "amd64", "before": b, "after": a} for n, b, a in changes],
        "reboot_required": False,
    }


def test_install_approved_reaches_the_ring_only(fleet):
    d = services.deployment_create(target="ring:test", user="cli:ops")
    assert d.state == "running"
    assert sorted(MachineJob.objects.filter(deployment=d).values_list("machine__hostname", flat=True)) == ["t1", "t2"]
    jobs = services.jobs_for_machine(fleet["t1"])
    assert [(j["type"], j["params"]) for j in jobs] == [
        ("apt_install", {"packages": [f"jq={JQ_NEW}", f"libjq1={JQ_NEW}"], "update": True})
    ]
    assert services.jobs_for_machine(fleet["p1"]) == []
    assert services.jobs_for_machine(fleet["t1"])[0]["id"] == jobs[0]["id"]  # redelivered until a result arrives
    job = MachineJob.objects.get(pk=jobs[0]["id"])
    assert (job.state, job.delivery_count) == ("delivered", 2)

    acked = services.job_results_record(
        fleet["t1"], [result(job.pk, changes=[("jq", JQ_OLD, JQ_NEW), ("libjq1", JQ_OLD, JQ_NEW)])]
    )
    assert acked == [str(job.pk)]
    assert services.jobs_for_machine(fleet["t1"]) == []
    assert selectors.deployed_state(fleet["t1"], "jq", JQ_NEW) == "deployed"
    assert selectors.deployed_state(fleet["t2"], "jq", JQ_NEW) == "pending"  # queued for t2
    assert selectors.deployed_state(fleet["p1"], "jq", JQ_NEW) is None
    events = AuditEvent.objects.filter(target="machine:t1", actor_name="t1").order_by("id")
    assert [e.action for e in events] == ["job.result", "package.change", "package.change"]
    # the replaced version stays published in the ring for a rollback
    assert (JQ_OLD in {p.version for p in approvals.ring_visible_packages(approvals.ring_get("test"))}) is True


def test_first_result_wins_and_repeats_are_acked(fleet):
    d = services.deployment_create(target="machine:t1")
    job_id = services.jobs_for_machine(fleet["t1"])[0]["id"]
    first = result(job_id, "failed", error="interrupted")
    assert services.job_results_record(fleet["t1"], [first]) == [job_id]
    again = result(job_id, "succeeded", changes=[("jq", JQ_OLD, JQ_NEW)])
    assert services.job_results_record(fleet["t1"], [again, first]) == [job_id, job_id]
    job = MachineJob.objects.get(pk=job_id)
    assert (job.state, job.error, job.package_changes) == ("failed", "interrupted", [])
    assert AuditEvent.objects.filter(action="job.result").count() == 1
    # another machine cannot report for this job; unknown and foreign ids are acked and dropped
    other = "00000000-0000-4000-8000-000000000000"
    assert services.job_results_record(fleet["t2"], [result(job_id), result(other), result("x")]) == [
        job_id,
        other,
        "x",
    ]
    assert MachineJob.objects.get(pk=job_id).state == "failed"
    d.refresh_from_db()
    assert d.state == "completed"


def test_nothing_to_do_is_skipped(fleet):
    d = services.deployment_create(target="ring:production")  # p1: nothing approved for production
    assert selectors.deployment_counts(d)["skipped"] == 1
    assert Deployment.objects.get(pk=d.pk).state == "completed"


def test_canary_threshold_halts(fleet):
    for i in range(4):
        machine_make(f"c{i}", packages=JQ_MACHINE, release="12", os_id="debian")
    d = services.deployment_create(
        target="ring:production", action="install", packages=["does-not-exist"], batch_size=2, failure_threshold=50
    )
    counts = selectors.deployment_counts(d)
    assert (counts["queued"], counts["waiting"]) == (2, 3)  # one batch of two
    first = MachineJob.objects.filter(deployment=d, state="queued").order_by("machine__hostname")
    a, b = list(first)
    services.job_results_record(a.machine, [result(a.pk, "failed", error="apt_failed")])
    d.refresh_from_db()
    assert d.state == "halted" and "1 of 1" in d.halted_reason
    assert selectors.deployment_counts(d)["waiting"] == 3  # nobody else started
    # the other canary still reports; the deployment stays halted
    services.job_results_record(b.machine, [result(b.pk)])
    d.refresh_from_db()
    assert d.state == "halted" and selectors.deployment_counts(d)["waiting"] == 3
    assert AuditEvent.objects.filter(action="deployment.halted", target=f"deployment:{d.pk}").count() == 1
    # retry resumes: the failed machine gets a new job and the next batch may start
    d = services.deployment_retry(deployment=d)
    assert d.state == "running" and selectors.deployment_counts(d)["queued"] == 2


def test_maintenance_window_wait_and_deadline(fleet):
    now = at_wednesday(12, 0)  # a Wednesday
    window = services.window_create(name="nightly", weekdays=[2], start=time(22, 0), duration_minutes=180, tz="UTC")
    assert not window.is_open(now)
    assert window.is_open(at_wednesday(23, 30))
    assert window.is_open(at_wednesday(0, 29, days=1))  # past midnight, still Wednesday's window
    assert not window.is_open(at_wednesday(1, 30, days=1))
    assert not window.is_open(at_wednesday(22, 30, days=1))  # Thursday: no window
    berlin = services.window_create(
        name="berlin", weekdays=[2], start=time(22, 0), duration_minutes=60, tz="Europe/Berlin"
    )
    assert berlin.is_open(at_wednesday(21, 30)) and not berlin.is_open(now)
    d = services.deployment_create(target="ring:test", window=window, at=now.isoformat())
    services.deployment_advance(d, now=now)
    d.refresh_from_db()
    assert d.state == "scheduled" and selectors.deployment_counts(d)["waiting"] == 2
    assert services.jobs_for_machine(fleet["t1"]) == []
    services.deployment_advance(d, now=at_wednesday(22, 5))
    d.refresh_from_db()
    assert d.state == "running" and selectors.deployment_counts(d)["queued"] == 2

    later = services.deployment_create(
        target="ring:test", window=window, at=now.isoformat(), deadline=(now + timedelta(hours=1)).isoformat()
    )
    services.deployment_advance(later, now=now + timedelta(hours=2))  # outside the window, past the deadline
    assert selectors.deployment_counts(later)["queued"] == 2


def test_scheduled_deployment_resumes_from_rows_alone(fleet):
    """The periodic job sees only rows: a deployment created before a restart is started by it."""
    from uus.jobs.services import job_run_inline

    at = timezone.now() + timedelta(seconds=1)
    d = services.deployment_create(target="ring:test", at=at.isoformat(), batch_size=1)
    assert selectors.deployment_counts(d)["waiting"] == 2
    assert services.deployments_advance_all(now=at - timedelta(seconds=1)) == 0
    job = job_run_inline("uus.deployments.tasks.deployments_advance")
    while job.result["advanced"] == 0:  # at most a second until `at`
        job = job_run_inline("uus.deployments.tasks.deployments_advance")
    assert job.state == "succeeded"
    assert selectors.deployment_counts(d)["queued"] == 1  # batch of one


def test_expired_and_timed_out_jobs(fleet):
    d = services.deployment_create(target="ring:test", job_timeout_minutes=10)
    services.jobs_for_machine(fleet["t1"])  # t1 picked its job up, t2 never did
    services.deployment_advance(d, now=timezone.now() + timedelta(minutes=11))
    states = dict(MachineJob.objects.filter(deployment=d).values_list("machine__hostname", "state"))
    assert states == {"t1": "delivered", "t2": "expired"}
    services.deployment_advance(d, now=timezone.now() + timedelta(minutes=11, hours=1))
    job = MachineJob.objects.get(deployment=d, machine__hostname="t1")
    assert job.state == "timed_out"
    services.job_results_record(fleet["t1"], [result(job.pk)])  # a late result is still recorded
    assert MachineJob.objects.get(pk=job.pk).state == "succeeded"


def test_cancel_and_rollback(fleet):
    d = services.deployment_create(target="ring:test", batch_size=1)
    job = MachineJob.objects.get(deployment=d, state="queued")
    services.job_results_record(job.machine, [result(job.pk, changes=[("jq", JQ_OLD, JQ_NEW), ("hello", None, "2")])])
    d = services.deployment_cancel(deployment=d, reason="enough")
    assert d.state == "canceled" and selectors.deployment_counts(d)["canceled"] == 1
    back = services.deployment_rollback(deployment=d, reason="regression")
    jobs = list(MachineJob.objects.filter(deployment=back))
    assert [(j.machine.hostname, j.type, j.params["packages"], j.state) for j in jobs] == [
        (job.machine.hostname, "apt_install", [f"jq={JQ_OLD}"], "queued")
    ]


def test_bad_deployments_change_nothing(fleet):
    for kwargs in (
        {"target": "ring:nope"},
        {"target": "everything"},
        {"target": "group:missing"},
        {"target": "machine:ghost"},
        {"target": "ring:test", "action": "install"},
        {"target": "ring:test", "action": "install", "packages": ["rm -rf /"]},
        {"target": "ring:test", "at": "tomorrow"},
        {"target": "ring:test", "failure_threshold": 0},
    ):
        with pytest.raises(Exception) as info:
            services.deployment_create(**kwargs)
        assert getattr(info.value, "message", ""), kwargs
    assert not Deployment.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="deployment").exists()
    with pytest.raises(DeploymentInvalid):
        services.deployment_create(target="ring:test", at="2026-01-02T00:00Z", deadline="2026-01-01T00:00Z")


def test_install_jobs_wait_for_the_rings_repository(fleet):
    """Approvals take effect through a background publish: an install job is held until the ring's
    repository was published after the last decision (else apt would not find the version)."""
    from uus.repos.models import RingRepository

    test = approvals.ring_get("test")
    repo = RingRepository.objects.create(ring=test, last_published=timezone.now() - timedelta(minutes=5))
    services.deployment_create(target="machine:t1")
    assert services.jobs_for_machine(fleet["t1"]) == []  # approvals are newer than the publish
    repo.last_published = timezone.now()
    repo.save()
    assert [j["type"] for j in services.jobs_for_machine(fleet["t1"])] == ["apt_install"]
    services.deployment_create(target="machine:t1", action="remove", packages=["jq"])
    repo.last_published = timezone.now() - timedelta(minutes=5)
    repo.save()
    assert [j["type"] for j in services.jobs_for_machine(fleet["t1"])] == ["apt_remove"]  # removals need no repo


def test_approval_rules_auto_approve_security_and_promote_after_days(fleet):
    from uus.approvals.models import Approval
    from uus.approvals.tests.factories import jq_notice

    jq_notice(priority="high", rank=4)
    test, prod = approvals.ring_get("test"), approvals.ring_get("production")
    Approval.objects.all().delete()
    approval_services.approval_rule_create(ring=test, kind="auto_approve_security", min_priority="critical")
    assert services.approval_rules_apply() == {"approved": 0, "promoted": 0}  # high < critical
    approval_services.approval_rule_create(ring=test, kind="auto_approve_security", min_priority="high")
    assert services.approval_rules_apply()["approved"] == 2
    assert approvals.approval_state(test, "jq", JQ_NEW) == "approved"
    assert Approval.objects.get(ring=test, name="jq").decided_by_name.startswith("rule:")

    rule = approval_services.approval_rule_create(ring=prod, kind="auto_promote", from_ring=test, after_days=3)
    assert services.approval_rules_apply()["promoted"] == 0  # not 3 days yet
    later = timezone.now() + timedelta(days=4)
    # a failed job in test since the approval holds the promotion
    d = services.deployment_create(target="machine:t1")
    job = MachineJob.objects.get(deployment=d)
    services.job_results_record(fleet["t1"], [result(job.pk, "failed", error="apt_failed")])
    assert services.approval_rules_apply(now=later)["promoted"] == 0
    assert AuditEvent.objects.filter(action="rule.promotion_held", data__rule=rule.pk).exists()
    MachineJob.objects.filter(pk=job.pk).update(updated=timezone.now() - timedelta(days=30))
    assert services.approval_rules_apply(now=later)["promoted"] == 2
    assert approvals.approval_state(prod, "libjq1", JQ_NEW) == "approved"


def test_per_machine_window_starts_each_machine_in_its_own_time_zone(fleet):
    """A window in `machine` time: 22:00-23:00 wherever the machine is (its agent reports the zone);
    a machine without a known zone follows UTC; past the deadline everyone starts."""
    from uus.inventory.facts import facts_fields
    from uus.inventory.tests.factories import facts_make

    assert facts_fields(facts_make("x", timezone="Asia/Tokyo"))["time_zone"] == "Asia/Tokyo"
    assert facts_fields(facts_make("x", timezone="Mars/Olympus_Mons"))["time_zone"] == ""  # unknown zone: UTC
    with pytest.raises(InvalidInventory):
        facts_fields(facts_make("x", timezone=42))
    Machine.objects.filter(pk=fleet["t1"].pk).update(time_zone="Asia/Tokyo")  # UTC+9
    Machine.objects.filter(pk=fleet["t2"].pk).update(time_zone="")  # unknown: UTC
    window = services.window_create(
        name="local-night", weekdays=[2], start=time(22, 0), duration_minutes=60, tz="machine"
    )
    with pytest.raises(WindowInvalid, match="nor 'machine'"):
        services.window_create(name="bad", weekdays=[2], start=time(22, 0), duration_minutes=60, tz="Local")
    tokyo_night = at_wednesday(13, 30)  # Wednesday 22:30 in Tokyo, 13:30 UTC
    d = services.deployment_create(
        target="ring:test", window=window, at=tokyo_night.isoformat(), deadline=at_wednesday(6, 0, days=1).isoformat()
    )
    services.deployment_advance(d, now=tokyo_night)
    d.refresh_from_db()
    states = dict(d.jobs.values_list("machine__hostname", "state"))
    assert d.state == "running" and states == {"t1": "queued", "t2": "waiting"}
    services.deployment_advance(d, now=at_wednesday(20, 0))  # no one's window
    assert dict(d.jobs.values_list("machine__hostname", "state"))["t2"] == "waiting"
    services.deployment_advance(d, now=at_wednesday(22, 10))  # 22:10 UTC
    assert dict(d.jobs.values_list("machine__hostname", "state"))["t2"] == "queued"

    late = services.deployment_create(
        target="ring:test", window=window, at=tokyo_night.isoformat(), deadline=tokyo_night.isoformat()
    )
    services.deployment_advance(late, now=at_wednesday(20, 0))  # past the deadline
    assert set(late.jobs.values_list("state", flat=True)) == {"queued"}


def test_explicit_machines_reboots_and_declined_versions(fleet):
    """machine:a,b targets exactly those machines; a reboot deployment reboots only the machines that
    report a reboot is required; an install naming a version a target's ring declined is refused."""
    d = services.deployment_create(target="machine:t1,p1", action="remove", packages=["jq"])
    assert sorted(d.jobs.values_list("machine__hostname", flat=True)) == ["p1", "t1"]
    with pytest.raises(Exception, match="ghost"):
        services.deployment_create(target="machine:t1,ghost", action="remove", packages=["jq"])

    Machine.objects.filter(pk=fleet["t2"].pk).update(is_reboot_required=True)
    d = services.deployment_create(target="ring:test", action="reboot")
    jobs = dict(d.jobs.values_list("machine__hostname", "type"))
    assert jobs == {"t1": "", "t2": "reboot"} and selectors.deployment_counts(d)["skipped"] == 1
    assert [(j["type"], j["params"]) for j in services.jobs_for_machine(fleet["t2"])] == [
        ("reboot", {"delay_minutes": 1})
    ]
    with pytest.raises(DeploymentInvalid, match="no packages"):
        services.deployment_create(target="ring:test", action="reboot", packages=["jq"])

    prod = approvals.ring_get("production")
    approval_services.approval_set(ring=prod, name="jq", version=JQ_NEW, state="declined", comment="breaks cron")
    before = Deployment.objects.count()
    with pytest.raises(DeploymentInvalid, match=r"jq .* is declined for ring 'production' \(breaks cron\)"):
        services.deployment_create(target="machine:t1,p1", action="install", packages=[f"jq={JQ_NEW}"])
    assert Deployment.objects.count() == before
    # the same version for machines whose ring approved it is fine
    services.deployment_create(target="ring:test", action="install", packages=[f"jq={JQ_NEW}"])


def test_jobs_of_a_halted_deployment_still_expire(fleet):
    d = services.deployment_create(
        target="ring:test", action="install", packages=["x"], failure_threshold=50, job_timeout_minutes=10
    )
    a, b = MachineJob.objects.filter(deployment=d).order_by("machine__hostname")
    services.jobs_for_machine(a.machine)
    services.job_results_record(a.machine, [result(a.pk, "failed", error="apt_failed")])
    d.refresh_from_db()
    assert d.state == "halted" and MachineJob.objects.get(pk=b.pk).state == "queued"
    services.deployments_advance_all(now=timezone.now() + timedelta(minutes=11))
    b.refresh_from_db()
    assert (b.state, b.error) == ("expired", "not_picked_up")
    assert AuditEvent.objects.filter(action="deployment.jobs_expired", target=f"deployment:{d.pk}").count() == 1


def test_promotion_holds_only_what_a_later_failure_casts_doubt_on(fleet):
    """A version approved in test before its last failed job waits; one approved after it is promoted once
    its days are up. The hold is written to the audit log once per failure, not at every run."""
    from uus.approvals.models import Approval

    test, prod = approvals.ring_get("test"), approvals.ring_get("production")
    old = timezone.now() - timedelta(days=10)
    approval_services.approval_rule_create(ring=prod, kind="auto_promote", from_ring=test, after_days=3)
    d = services.deployment_create(target="machine:t1", action="install", packages=["x"])
    job = MachineJob.objects.get(deployment=d)
    services.job_results_record(fleet["t1"], [result(job.pk, "failed", error="apt_failed")])
    MachineJob.objects.filter(pk=job.pk).update(updated=timezone.now() - timedelta(days=5))
    Approval.objects.filter(ring=test, name="jq").update(updated=old)  # before the failure
    Approval.objects.filter(ring=test, name="libjq1").update(updated=timezone.now() - timedelta(days=4))  # after
    for _ in range(3):
        services.approval_rules_apply()
    assert approvals.approval_state(prod, "libjq1", JQ_NEW) == "approved"
    assert approvals.approval_state(prod, "jq", JQ_NEW) == "pending"
    held = AuditEvent.objects.filter(action="rule.promotion_held")
    assert held.count() == 1 and held.get().data["held"] == 1
