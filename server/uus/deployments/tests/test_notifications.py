"""Halted deployments and failed jobs are sent by e-mail (Django's mail) and to a webhook (a real
HTTP server on loopback)."""

import http.server
import json
import threading

import pytest

from uus.deployments import services
from uus.deployments.models import MachineJob
from uus.inventory.tests.factories import machine_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def webhook():
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()


def test_halted_deployment_and_failed_job_notify(settings, mailoutbox, webhook, django_capture_on_commit_callbacks):
    url, received = webhook
    settings.UUS = {**settings.UUS, "notify_emails": ["ops@example.org"], "notify_webhook": url}
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
    assert sorted(e["event"] for e in received) == ["deployment_halted", "job_failed"]
    assert {e.get("machine") for e in received} == {None, "c1"}
    assert sorted(mail.subject for mail in mailoutbox) == [
        f"[UUS] deployment {d.pk} halted: 1 of 1 finished jobs failed (threshold 50%)",
        "[UUS] job on c1 failed: apt_failed",
    ]
    assert mailoutbox[0].to == ["ops@example.org"]


def test_new_security_updates_are_announced_once(settings, webhook, django_capture_on_commit_callbacks):
    from uus.approvals.tests.factories import JQ_NEW, JQ_OLD, jq_archive, jq_notice
    from uus.deployments.notifications import security_updates_notify
    from uus.inventory.tests.factories import entries, entry

    url, received = webhook
    jq_archive()
    jq_notice(priority="medium", rank=3)
    machine_make("m1", packages=entries(entry("jq", JQ_OLD, source="jq")), release="12", os_id="debian")
    assert security_updates_notify() == 0  # nowhere to send: nothing computed or recorded
    settings.UUS = {**settings.UUS, "notify_webhook": url}
    assert security_updates_notify(min_priority="high") == 0  # medium < high
    with django_capture_on_commit_callbacks(execute=True):
        assert security_updates_notify(min_priority="medium") == 1
        assert security_updates_notify(min_priority="medium") == 0  # announced once
    assert [(e["event"], [u["package"] for u in e["updates"]]) for e in received] == [("security_updates", ["jq"])]
    assert received[0]["updates"][0] == {
        "package": "jq", "version": JQ_NEW, "priority": "medium", "notices": ["DSA-TEST-1"], "machines": 1,
    }  # fmt: skip
