"""Notifications reach a real SMTP server (aiosmtpd on loopback, through Django's SMTP backend) and a
real webhook receiver: new security updates of the configured priority or above (once each), halted
deployments and failed jobs. A peer that is down loses the notification, never the change."""

import logging

import pytest

from uus.deployments import services
from uus.deployments.models import MachineJob
from uus.inventory.tests.factories import machine_make

from .peers import smtp_peer, webhook_peer

pytestmark = pytest.mark.django_db


@pytest.fixture
def peers(settings):
    with smtp_peer() as box, webhook_peer() as hook:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = box.host, box.port
        settings.DEFAULT_FROM_EMAIL = "uus@example.org"
        settings.UUS = {
            **settings.UUS,
            "notify_emails": ["ops@example.org", "sec@example.org"],
            "notify_webhook": hook.url,
        }
        yield box, hook


def test_halted_deployment_and_failed_job_notify(peers, django_capture_on_commit_callbacks):
    box, hook = peers
    m = machine_make("c1")
    machine_make("c2")
    d = services.deployment_create(
        target="ring:production", action="install", packages=["x"], batch_size=1, failure_threshold=50
    )
    job = MachineJob.objects.get(deployment=d, state="queued")
    result = {"job_id": str(job.pk), "status": "failed", "error": "apt_failed", "exit_code": 100}
    with django_capture_on_commit_callbacks(execute=True):
        services.job_results_record(job.machine, [result])
    assert job.machine == m
    posts = hook.wait(2)
    assert sorted(body["event"] for _, _, body in posts) == ["deployment_halted", "job_failed"]
    assert {(path, ctype) for path, ctype, _ in posts} == {("/hooks/uus/s3cr3t-token", "application/json")}
    assert {body.get("machine") for _, _, body in posts} == {None, "c1"}
    mails = box.wait(2)
    assert sorted(msg["Subject"] for msg in mails) == [
        f"[UUS] deployment {d.pk} halted: 1 of 1 finished jobs failed (threshold 50%)",
        "[UUS] job on c1 failed: apt_failed",
    ]
    assert {(msg["From"], msg["X-Envelope-To"]) for msg in mails} == {
        ("uus@example.org", "ops@example.org, sec@example.org")
    }
    failed = next(msg for msg in mails if "c1 failed" in msg["Subject"])
    assert "machine: c1" in failed.get_content()


def test_new_security_updates_are_announced_once(peers, settings, django_capture_on_commit_callbacks):
    from uus.approvals.tests.factories import JQ_NEW, JQ_OLD, jq_archive, jq_notice
    from uus.deployments.notifications import security_updates_notify
    from uus.inventory.tests.factories import entries, entry

    box, hook = peers
    jq_archive()
    jq_notice(priority="medium", rank=3)
    machine_make("m1", packages=entries(entry("jq", JQ_OLD, source="jq")), release="12", os_id="debian")
    assert security_updates_notify(min_priority="high") == 0  # medium < high
    with django_capture_on_commit_callbacks(execute=True):
        assert security_updates_notify(min_priority="medium") == 1
        assert security_updates_notify(min_priority="medium") == 0  # announced once
    posts = hook.wait(1)
    assert [(b["event"], [u["package"] for u in b["updates"]]) for _, _, b in posts] == [("security_updates", ["jq"])]
    assert posts[0][2]["updates"][0] == {
        "package": "jq", "version": JQ_NEW, "priority": "medium", "notices": ["DSA-TEST-1"], "machines": 1,
    }  # fmt: skip
    (mail,) = box.wait(1)
    assert mail["Subject"] == "[UUS] 1 new security updates to decide"
    assert f"jq {JQ_NEW}  medium  DSA-TEST-1  1 machines" in mail.get_content()

    settings.UUS = {**settings.UUS, "notify_emails": [], "notify_webhook": ""}
    assert security_updates_notify(min_priority="negligible") == 0


def test_a_peer_that_is_down_loses_the_notification_not_the_result(
    settings, caplog, django_capture_on_commit_callbacks
):
    from .peers import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens
    hook = f"http://127.0.0.1:{free_port()}/hooks/secret-in-the-path?token=hunter2"
    settings.UUS = {**settings.UUS, "notify_emails": ["ops@example.org"], "notify_webhook": hook}
    machine_make("c1")
    d = services.deployment_create(target="ring:production", action="install", packages=["x"])
    job = MachineJob.objects.get(deployment=d)
    result = {"job_id": str(job.pk), "status": "failed", "error": "apt_failed", "exit_code": 100}
    with caplog.at_level(logging.INFO), django_capture_on_commit_callbacks(execute=True):
        assert services.job_results_record(job.machine, [result]) == [str(job.pk)]
    job.refresh_from_db()
    assert job.state == "failed"
    assert "could not e-mail the job_failed notification" in caplog.text
    assert "could not post the job_failed notification" in caplog.text
    assert "hunter2" not in caplog.text and "secret-in-the-path" not in caplog.text


def test_a_catalog_change_queues_the_announcement_and_the_rules_once(django_capture_on_commit_callbacks):
    from uus.catalog.models import Notice
    from uus.catalog.signals import archive_changed, notices_changed
    from uus.jobs.models import Job

    with django_capture_on_commit_callbacks(execute=True):
        notices_changed.send(sender=Notice, notice_ids=["DSA-TEST-1"])
        archive_changed.send(sender=Notice, upstream=None, index_ids=[])
    assert sorted(
        Job.objects.filter(state="queued", name__startswith="uus.deployments.").values_list("name", flat=True)
    ) == [
        "uus.deployments.tasks.approval_rules_apply",
        "uus.deployments.tasks.security_updates_notify",
    ]
