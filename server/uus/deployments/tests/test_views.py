"""The UI: updates page with bulk decisions (CSRF enforced), ring board, deployment page with
per-machine progress, a machine's jobs; lesser roles cannot post."""

import re

import pytest
from django.test import Client

from uus.approvals import selectors as approvals
from uus.approvals import services as approval_services
from uus.approvals.models import Approval
from uus.approvals.tests.factories import JQ_NEW, JQ_OLD, jq_archive, jq_notice, rings_make
from uus.deployments import services
from uus.inventory.models import Machine
from uus.inventory.tests.factories import entries, entry, machine_make

pytestmark = pytest.mark.django_db

JQ_MACHINE = entries(entry("jq", JQ_OLD, source="jq"), entry("libjq1", JQ_OLD, source="jq"))


@pytest.fixture
def fleet():
    rings_make()
    jq_archive()
    jq_notice()
    machines = [machine_make(f"t{i}", packages=JQ_MACHINE, release="12", os_id="debian") for i in (1, 2)]
    for m in machines:
        approval_services.machine_set_ring(machine=m, ring=approvals.ring_get("test"))
    return machines


def logged_in(user, csrf=False) -> Client:
    c = Client(enforce_csrf_checks=csrf)
    c.force_login(user)
    return c


def csrf_of(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_updates_page_and_bulk_approve_with_csrf(fleet, operator_user):
    c = logged_in(operator_user, csrf=True)
    page = c.get("/updates/?ring=test")
    html = page.content.decode()
    assert page.status_code == 200
    assert html.index(f'value="jq {JQ_NEW}"') < html.index(f'value="libjq1 {JQ_NEW}"')
    assert "DSA-TEST-1" in html and "high" in html
    form = {"ring": "test", "items": [f"jq {JQ_NEW}", f"libjq1 {JQ_NEW}"], "state": "approved"}
    assert c.post("/updates/decide/", form).status_code == 403  # no CSRF token
    assert not Approval.objects.exists()
    r = c.post("/updates/decide/", {**form, "csrfmiddlewaretoken": csrf_of(html), "comment": "USN"})
    assert r.status_code == 302
    assert set(Approval.objects.values_list("name", "state", "decided_by_name")) == {
        ("jq", "approved", operator_user.username),
        ("libjq1", "approved", operator_user.username),
    }
    assert "No updates in this view" in c.get("/updates/?ring=test").content.decode()  # nothing pending now


def test_auditor_sees_but_cannot_decide(fleet, auditor_user):
    c = logged_in(auditor_user)
    html = c.get("/updates/?ring=test").content.decode()
    assert f"jq</td><td>{JQ_NEW}" in html and 'type="checkbox"' not in html
    r = c.post("/updates/decide/", {"ring": "test", "items": [f"jq {JQ_NEW}"], "state": "approved"})
    assert r.status_code == 403 and not Approval.objects.exists()


def test_ring_board_shows_what_waits_for_promotion(fleet, operator_user):
    approval_services.approval_set(ring=approvals.ring_get("test"), name="jq", version=JQ_NEW, state="approved")
    c = logged_in(operator_user)
    html = c.get("/rings/").content.decode()
    prod = html[html.index('id="ring-production"') :]
    assert f"jq {JQ_NEW}" in prod[prod.index('class="waiting"') :]
    assert c.post("/rings/production/promote/", {"from": "test"}).status_code == 302
    assert approvals.approval_state(approvals.ring_get("production"), "jq", JQ_NEW) == "approved"


def test_deployment_page_shows_per_machine_progress(fleet, operator_user):
    approval_services.approval_set(ring=approvals.ring_get("test"), name="jq", version=JQ_NEW, state="approved")
    d = services.deployment_create(target="ring:test", batch_size=1)
    c = logged_in(operator_user)
    html = c.get(f"/deployments/{d.pk}/").content.decode()
    assert "data-poll" in html and "t1" in html and "t2" in html
    fragment = c.get(f"/deployments/{d.pk}/progress/").content.decode()
    states = re.findall(r'<td class="state">(\w+)', fragment)
    assert states == ["queued", "waiting"] and "data-done" not in fragment
    assert c.post(f"/deployments/{d.pk}/cancel/").status_code == 302
    fragment = c.get(f"/deployments/{d.pk}/progress/").content.decode()
    assert "data-done" in fragment and re.findall(r'<td class="state">(\w+)', fragment) == ["canceled", "canceled"]
    jobs = c.get(f"/deployments/machines/{fleet[0].uuid}/").content.decode()
    assert f"jq={JQ_NEW}" in jobs and "canceled" in jobs
    assert "Deployments" in c.get("/deployments/").content.decode()


def test_machine_jobs_tag_for_the_machine_page(fleet, operator_user):
    from django.template import Context, Template

    approval_services.approval_set(ring=approvals.ring_get("test"), name="jq", version=JQ_NEW, state="approved")
    d = services.deployment_create(target="machine:t1")
    html = Template("{% load deployments %}{% machine_jobs machine %}").render(Context({"machine": fleet[0]}))
    assert f"/deployments/{d.pk}/" in html and f"jq={JQ_NEW}" in html and "queued" in html
    job = d.jobs.get()
    page = logged_in(operator_user).get(f"/deployments/jobs/{job.pk}/").content.decode()
    assert "apt_install" in page and "none yet" in page
    machine_page = logged_in(operator_user).get(f"/machines/{fleet[0].uuid}/").content.decode()
    assert 'id="machine-jobs"' in machine_page and f"/deployments/{d.pk}/" in machine_page


def test_deployment_form_offers_rings_groups_and_ous_and_creates(fleet, operator_user, auditor_user):
    from uus.deployments.models import Deployment
    from uus.directory.models import DirectorySource, OrganizationalUnit

    source = DirectorySource.objects.create(name="corp", url="ldap://127.0.0.1:1", base_dn="dc=corp,dc=test")
    OrganizationalUnit.objects.create(
        source=source, dn="ou=Berlin,dc=corp,dc=test", dn_key="ou=berlin,dc=corp,dc=test", name="Berlin"
    )
    approval_services.group_create(name="web", machines=[fleet[0]])
    c = logged_in(operator_user, csrf=True)
    page = c.get("/deployments/").content.decode()
    assert 'value="ring:test"' in page and 'value="group:web"' in page
    assert 'value="ou:ou=Berlin,dc=corp,dc=test"' in page
    token = csrf_of(page)
    approval_services.approval_set(ring=approvals.ring_get("test"), name="jq", version=JQ_NEW, state="approved")
    bad = c.post("/deployments/new/", {"csrfmiddlewaretoken": token, "action": "install_approved"})
    assert bad.status_code == 400 and "choose a ring, group or OU" in bad.content.decode()
    assert not Deployment.objects.exists()
    ok = c.post(
        "/deployments/new/",
        {"csrfmiddlewaretoken": token, "target": "ring:test", "action": "install_approved", "batch_size": "1"},
    )
    d = Deployment.objects.get()
    assert ok.status_code == 302 and ok["Location"] == f"/deployments/{d.pk}/"
    assert (d.target, d.batch_size, d.created_by_name) == ("ring:test", 1, operator_user.username)
    assert d.jobs.count() == 2
    one = c.post(
        "/deployments/new/", {"csrfmiddlewaretoken": token, "machine": "t1", "action": "remove", "packages": "jq"}
    )
    assert one.status_code == 302 and Deployment.objects.get(target="machine:t1").packages == ["jq"]
    assert logged_in(auditor_user).post("/deployments/new/", {"target": "ring:test"}).status_code == 403
    assert "New deployment" not in logged_in(auditor_user).get("/deployments/").content.decode()


def test_filters_pin_and_new_ring_on_the_pages(fleet, operator_user, admin_user):
    c = logged_in(operator_user)
    assert "jq</td>" in c.get("/updates/?ring=test&kind=security&min_priority=high").content.decode()
    assert "No updates in this view" in c.get("/updates/?ring=test&kind=regular").content.decode()
    assert "No updates in this view" in c.get("/updates/?ring=test&min_priority=critical").content.decode()
    page = c.get("/updates/?ring=test&min_priority=urgent", follow=True).content.decode()
    assert "priority &#x27;urgent&#x27; is not one of" in page
    # hold and pin from the page; pinning is refused with any other decision
    items = {"ring": "test", "items": [f"jq {JQ_OLD}"], "pin": "1"}
    r = c.post("/updates/decide/", {**items, "state": "approved"}, follow=True)
    assert "only a held version can be pinned" in r.content.decode() and not Approval.objects.exists()
    c.post("/updates/decide/", {**items, "state": "held"})
    assert list(Approval.objects.values_list("name", "version", "state", "is_pinned")) == [("jq", JQ_OLD, "held", True)]
    # rings: admins add one from the ring board, operators may not
    assert 'id="ring-form"' not in c.get("/rings/").content.decode()
    assert c.post("/rings/create/", {"name": "pilot", "position": 50}).status_code == 403
    a = logged_in(admin_user)
    assert a.post("/rings/create/", {"name": "test", "position": 5}).status_code == 400  # exists
    r = a.post("/rings/create/", {"name": "pilot", "position": 50, "description": "early adopters"})
    assert r.status_code == 302
    assert [r.name for r in approvals.ring_list()] == ["test", "pilot", "production"]
    assert 'id="ring-pilot"' in a.get("/rings/").content.decode()


def test_progress_shows_each_machines_log_and_the_job_page_polls(fleet, operator_user):
    approval_services.approval_set(ring=approvals.ring_get("test"), name="jq", version=JQ_NEW, state="approved")
    d = services.deployment_create(target="machine:t1")
    job = d.jobs.get()
    c = logged_in(operator_user)
    services.jobs_for_machine(fleet[0])
    assert "running since" in c.get(f"/deployments/{d.pk}/progress/").content.decode()
    page = c.get(f"/deployments/jobs/{job.pk}/").content.decode()
    assert f'data-poll="/deployments/jobs/{job.pk}/status/"' in page and "data-done" not in page
    output = "$ apt-get update\nGet:1 ...\n$ apt-get install jq\nSetting up jq (1.6) ...\n"
    services.job_results_record(
        fleet[0],
        [{"job_id": str(job.pk), "status": "succeeded", "exit_code": 0, "output": output, "packages": []}],
    )
    fragment = c.get(f"/deployments/{d.pk}/progress/").content.decode()
    assert "<summary>Setting up jq (1.6) ...</summary>" in fragment and "$ apt-get update" in fragment
    status = c.get(f"/deployments/jobs/{job.pk}/status/").content.decode()
    assert "data-done" in status and "succeeded" in status and "Setting up jq" in status


def test_machines_move_rings_and_windows_are_made_on_the_pages(fleet, operator_user, auditor_user):
    from uus.audit.models import AuditEvent
    from uus.deployments.models import MaintenanceWindow

    machine_make("p9", release="12")
    c = logged_in(operator_user, csrf=True)
    board = c.get("/rings/").content.decode()
    assert 'action="/rings/test/members/"' in board
    token = csrf_of(board)
    r = c.post("/rings/test/members/", {"csrfmiddlewaretoken": token, "machines": "p9 ghost"}, follow=True)
    assert "no machine named or numbered &#x27;ghost&#x27;" in r.content.decode()
    assert approvals.ring_of(Machine.objects.get(hostname="p9")).name == "production"  # all or nothing
    c.post("/rings/test/members/", {"csrfmiddlewaretoken": token, "machines": "p9", "reason": "canary"})
    assert approvals.ring_of(Machine.objects.get(hostname="p9")).name == "test"
    assert AuditEvent.objects.get(action="machine.set_ring", target="machine:p9").reason == "canary"

    page = c.get("/deployments/").content.decode()
    assert 'id="window-form"' in page and "No windows" in page
    body = {"name": "nightly", "weekdays": ["0", "2"], "start": "22:00", "duration_minutes": "120"}
    r = c.post("/deployments/windows/new/", {"csrfmiddlewaretoken": token, **body, "timezone": "Mars/Base"})
    assert r.status_code == 400 and "is not a time zone name" in r.content.decode()
    r = c.post("/deployments/windows/new/", {"csrfmiddlewaretoken": token, **body, "timezone": "Europe/Berlin"})
    assert r.status_code == 302
    w = MaintenanceWindow.objects.get()
    assert (w.weekdays, str(w.start), w.timezone) == ([0, 2], "22:00:00", "Europe/Berlin")
    assert 'id="window-nightly"' in c.get("/deployments/").content.decode()
    a = logged_in(auditor_user)
    assert a.post("/deployments/windows/new/", body).status_code == 403
    assert a.post("/rings/test/members/", {"machines": "t1"}).status_code == 403


def test_the_progress_table_of_a_large_deployment_is_bounded_failed_first(fleet, operator_user):
    from uus.deployments import selectors

    for i in range(5):
        machine_make(f"z{i}", packages=JQ_MACHINE, release="12", os_id="debian")
    d = services.deployment_create(target="ring:production", action="install", packages=["x"])
    last = d.jobs.order_by("machine__hostname").last()
    long_log = "E: Unable to locate package x\n" + "line\n" * 5000
    services.job_results_record(
        last.machine, [{"job_id": str(last.pk), "status": "failed", "error": "apt_failed", "output": long_log}]
    )
    rows = selectors.deployment_progress_jobs(d, limit=3)
    assert rows[0].machine.hostname == last.machine.hostname and len(rows) == 3
    assert len(rows[0].output_tail) == selectors.LOG_TAIL and "output" in rows[0].get_deferred_fields()
    fragment = logged_in(operator_user).get(f"/deployments/{d.pk}/progress/").content.decode()
    assert fragment.index(last.machine.hostname) < fragment.index(">z0<")  # the failed one first
    assert "<summary>line</summary>" in fragment and "Unable to locate" not in fragment  # only the tail
    assert f"machine-jobs/?deployment={d.pk}" not in fragment  # 5 machines < 200: no "more" note
