"""Directory pages: settings and status, add/edit, test/sync/dry run buttons, role mappings, OU tree."""

from __future__ import annotations

import pytest
from django.test import Client

from uus.directory import services
from uus.directory.models import DirectorySource, RoleMapping
from uus.jobs.models import Job
from uus.jobs.services import job_claim, job_run
from uus.testing.fixtures import PASSWORD

from .factories import ADMIN_PW, BASE, expected_ous, machine_make, source_make, wayland_notice_import, wayland_on

pytestmark = [pytest.mark.django_db, pytest.mark.ldap]
HOSTS = "ou=Hosts,dc=corp,dc=test"


def login(user) -> Client:
    c = Client()
    assert c.login(username=user.username, password=PASSWORD)
    return c


def run_jobs():
    while (job := job_claim(worker="test")) is not None:
        job_run(job)


def test_add_edit_and_status_pages(acceptance_ldap, admin_user):
    c = login(admin_user)
    assert c.get("/directory/").status_code == 200
    assert b"No directory yet" in c.get("/directory/").content
    form = {
        "name": "corp",
        "url": acceptance_ldap.url,
        "base_dn": BASE,
        "bind_dn": "cn=admin,dc=corp,dc=test",
        "bind_password": ADMIN_PW,
        "ou_filter": "(objectClass=organizationalUnit)",
        "computer_filter": "(|(objectClass=computer)(objectClass=device))",
        "user_filter": "(objectClass=inetOrgPerson)",
        "group_filter": "(objectClass=groupOfNames)",
        "hostname_attributes": "dNSHostName, cn",
        "login_attributes": "uid",
        "member_attributes": "member",
        "page_size": 500,
        "timeout_seconds": 10,
        "sync_interval_minutes": 60,
        "is_enabled": "on",
        "is_login_enabled": "on",
    }
    r = c.post("/directory/add/", form)
    assert r.status_code == 302 and r["Location"] == "/directory/corp/"
    source = DirectorySource.objects.get()
    assert source.hostname_attributes == ["dNSHostName", "cn"] and source.has_bind_password
    page = c.get("/directory/corp/")
    assert page.status_code == 200 and b"Test connection" in page.content and ADMIN_PW.encode() not in page.content
    edit = c.get("/directory/corp/edit/")
    assert edit.status_code == 200 and ADMIN_PW.encode() not in edit.content
    r = c.post("/directory/corp/edit/", {**form, "bind_password": "", "page_size": 100})
    assert r.status_code == 302
    source.refresh_from_db()
    assert source.page_size == 100 and services.directory_source_test(source=source)["ok"]  # password kept
    r = c.post("/directory/corp/edit/", {**form, "url": "ldaps://x", "start_tls": "on"})
    assert r.status_code == 200 and b"StartTLS cannot be combined" in r.content
    assert ADMIN_PW.encode() not in r.content  # a form shown again with errors does not echo the password
    r = c.post("/directory/add/", {**form, "name": "other", "url": "http://x"})
    assert r.status_code == 200 and b"ldap://HOST" in r.content and ADMIN_PW.encode() not in r.content
    assert DirectorySource.objects.count() == 1


def test_buttons_dispatch_jobs_and_dry_run_page_shows_the_result(acceptance_ldap, admin_user):
    for host in expected_ous()[HOSTS]:
        machine_make(host)
    machine_make("lab-01")
    source_make(acceptance_ldap)
    c = login(admin_user)
    r = c.post("/directory/corp/test/")
    assert r.status_code == 302 and r["Location"].startswith("/jobs/")
    r = c.post("/directory/corp/sync/", {"dry_run": "1"})
    assert r.status_code == 302 and r["Location"].startswith("/directory/corp/dry-run/?job=")
    pending = c.get(r["Location"])
    assert pending.status_code == 200 and b"data-poll" in pending.content
    run_jobs()
    status = c.get(r["Location"].replace("/dry-run/", "/dry-run/status/"))
    assert b"data-done" in status.content and b"Would be added" in status.content and b"lab-01" in status.content
    assert c.get("/directory/corp/dry-run/").status_code == 200
    r = c.post("/directory/corp/sync/")
    assert r.status_code == 302
    run_jobs()
    assert Job.objects.filter(state="succeeded").count() == 3
    page = c.get("/directory/corp/")
    assert b"machines placed" in page.content and b"1 machines without a directory object" in page.content
    assert b"lab-01" in c.get("/directory/corp/unmatched/").content


def test_last_error_is_shown(acceptance_ldap, admin_user):
    source = source_make(acceptance_ldap)
    services.directory_source_update(source=source, bind_password="wrong-pw-1")
    c = login(admin_user)
    c.post("/directory/corp/sync/")
    run_jobs()
    page = c.get("/directory/corp/")
    assert b'id="last-error"' in page.content and b"invalid credentials" in page.content


def test_role_mapping_forms(acceptance_ldap, admin_user):
    source_make(acceptance_ldap)
    c = login(admin_user)
    r = c.post(
        "/directory/corp/mappings/", {"group_dn": "cn=ops,dc=corp,dc=test", "role": "operator", "scope_ou_dn": HOSTS}
    )
    assert r.status_code == 302
    mapping = RoleMapping.objects.get()
    assert mapping.role == "operator" and mapping.scope_ou_dn == HOSTS
    assert b"cn=ops,dc=corp,dc=test" in c.get("/directory/corp/").content
    c.post("/directory/corp/mappings/", {"group_dn": "not a dn", "role": "operator"})
    assert RoleMapping.objects.count() == 1
    assert c.post(f"/directory/corp/mappings/{mapping.pk}/delete/").status_code == 302
    assert not RoleMapping.objects.exists()


def test_ou_tree_page(acceptance_ldap, auditor_user):
    for host in expected_ous()[HOSTS]:
        machine_make(host)
    services.directory_sync(source=source_make(acceptance_ldap))
    page = login(auditor_user).get("/directory/ous/")
    assert page.status_code == 200
    text = page.content.decode()
    london = "ou=London,ou=EMEA,ou=Hosts,dc=corp,dc=test"
    assert f'data-dn="{london}"' in text
    row = text.split(f'data-dn="{london}"')[1].split("</tr>")[0]
    assert f'<td class="machine-count">{len(expected_ous()[london])}</td>' in row
    assert "/machines/?ou=" in row


def test_machine_list_offers_the_ous_and_filters_by_one(acceptance_ldap, auditor_user):
    for host in expected_ous()[HOSTS]:
        machine_make(host)
    machine_make("lab-01")  # in no directory
    services.directory_sync(source=source_make(acceptance_ldap))
    c = login(auditor_user)
    london = "ou=London,ou=EMEA,ou=Hosts,dc=corp,dc=test"
    text = c.get("/machines/").content.decode()
    assert '<select name="ou"' in text and f'<option value="{london}">' in text
    page = c.get("/machines/", {"ou": london}).content.decode()
    assert f'<option value="{london}" selected>' in page
    listed = {h for h in expected_ous()[HOSTS] + ["lab-01"] if f">{h}<" in page}
    assert listed == set(expected_ous()[london])


def test_ou_tree_page_shows_exposed_machines_per_ou(acceptance_ldap, auditor_user):
    """Exposure per OU as the exposure app judges it: two London machines run a wayland older than
    USN-5614-1's fix, one Madrid machine the fixed one; every OU above counts what is below it."""
    machines = {host: machine_make(host) for host in expected_ous()[HOSTS]}
    london, madrid = (f"ou={city},ou=EMEA,{HOSTS}" for city in ("London", "Madrid"))
    vulnerable = expected_ous()[london][:2]
    for host in vulnerable:
        wayland_on(machines[host], "1.20.0-1ubuntu0")
    wayland_on(machines[expected_ous()[madrid][0]], "1.20.0-1ubuntu0.1")
    wayland_notice_import()
    services.directory_sync(source=source_make(acceptance_ldap))
    text = login(auditor_user).get("/directory/ous/").content.decode()
    assert "Exposed machines (incl. sub-OUs)" in text

    def exposed(dn: str) -> str:
        row = text.split(f'data-dn="{dn}"')[1].split("</tr>")[0]
        return row.split('<td class="exposed-count">')[1].split("<")[0]

    assert exposed(london) == "2" and exposed(f"ou=EMEA,{HOSTS}") == "2" and exposed(HOSTS) == "2"
    assert exposed(madrid) == "0" and exposed(f"ou=APAC,{HOSTS}") == "0"


def test_auditors_and_operators_cannot_change_directories(acceptance_ldap, auditor_user, operator_user):
    source_make(acceptance_ldap)
    for user in (auditor_user, operator_user):
        c = login(user)
        assert c.get("/directory/corp/").status_code == 200
        assert b"Sync now" not in c.get("/directory/corp/").content
        for path in ("/directory/add/", "/directory/corp/edit/"):
            assert c.get(path).status_code == 403
        for path in (
            "/directory/corp/sync/",
            "/directory/corp/test/",
            "/directory/corp/delete/",
            "/directory/corp/mappings/",
        ):
            assert c.post(path).status_code == 403
    assert not Job.objects.exists() and DirectorySource.objects.exists()
