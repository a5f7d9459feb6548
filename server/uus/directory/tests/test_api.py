"""Directory API: CRUD with a write-only password, 202 jobs for test and sync, OU tree, role mappings."""

from __future__ import annotations

import json

import pytest

from uus.directory import services
from uus.directory.models import DirectorySource
from uus.jobs.models import Job
from uus.jobs.services import job_claim, job_run

from .factories import ADMIN_PW, BASE, expected_ous, machine_make, source_make

pytestmark = [pytest.mark.django_db, pytest.mark.ldap]


def run_queued_jobs() -> list[Job]:
    done = []
    while (job := job_claim(worker="test")) is not None:
        done.append(job_run(job))
    return done


@pytest.fixture
def admin_api(admin_user, api_client_for):
    return api_client_for(admin_user)


def test_create_read_update_delete_never_shows_the_password(acceptance_ldap, admin_api, auditor_user, api_client_for):
    body = {
        "name": "corp",
        "url": acceptance_ldap.url,
        "base_dn": BASE,
        "bind_dn": "cn=admin,dc=corp,dc=test",
        "bind_password": ADMIN_PW,
    }
    r = admin_api.post("/api/v1/directories/", body, format="json")
    assert r.status_code == 201, r.content
    seen = [r.content]
    data = r.json()
    assert data["has_bind_password"] and "bind_password" not in data and data["start_tls"] is False
    assert data["hostname_attributes"] == ["dNSHostName", "associatedDomain", "cn"]  # defaults: AD and OpenLDAP
    auditor = api_client_for(auditor_user)
    for path in ("/api/v1/directories/", "/api/v1/directories/corp/", "/api/schema/"):
        r = auditor.get(path)
        assert r.status_code == 200
        seen.append(r.content)
    r = admin_api.patch("/api/v1/directories/corp/", {"page_size": 50, "bind_password": "New-Secret-9"}, format="json")
    assert r.status_code == 200 and r.json()["page_size"] == 50
    seen.append(r.content)
    for content in seen:
        assert ADMIN_PW.encode() not in content and b"New-Secret-9" not in content
    assert admin_api.delete("/api/v1/directories/corp/").status_code == 204
    assert not DirectorySource.objects.exists()


def test_invalid_settings_use_the_error_envelope(admin_api):
    r = admin_api.post(
        "/api/v1/directories/",
        {"name": "corp", "url": "ldaps://x", "start_tls": True, "base_dn": BASE},
        format="json",
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "directory_invalid" and "StartTLS" in r.json()["error"]["message"]
    r = admin_api.post("/api/v1/directories/", {"name": "corp"}, format="json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid"


def test_test_connection_and_sync_are_jobs(acceptance_ldap, admin_api):
    for host in expected_ous()["ou=Hosts,dc=corp,dc=test"]:
        machine_make(host)
    source_make(acceptance_ldap)
    r = admin_api.post("/api/v1/directories/corp/test-connection/")
    assert r.status_code == 202 and r.json()["job"].endswith(f"/api/v1/jobs/{r.json()['id']}/")
    r = admin_api.post("/api/v1/directories/corp/sync/", {"dry_run": True}, format="json")
    assert r.status_code == 202
    test_job, dry_job = run_queued_jobs()
    assert test_job.state == "succeeded" and test_job.result["ok"], test_job.error
    assert dry_job.state == "succeeded" and dry_job.result["dry_run"] and dry_job.locks == ["directory:corp"]
    assert admin_api.get("/api/v1/organizational-units/").json()["count"] == 0  # the dry run wrote nothing
    admin_api.post("/api/v1/directories/corp/sync/")
    (sync_job,) = run_queued_jobs()
    assert sync_job.state == "succeeded", sync_job.error
    assert sync_job.progress_done == sync_job.progress_total == 7
    assert ADMIN_PW not in sync_job.log and ADMIN_PW not in json.dumps(sync_job.result)


def test_failed_sync_job_says_why(acceptance_ldap, admin_api):
    source_make(acceptance_ldap)
    services.directory_source_update(source=DirectorySource.objects.get(), bind_password="wrong-pw-1")
    admin_api.post("/api/v1/directories/corp/sync/")
    (job,) = run_queued_jobs()
    assert job.state == "failed" and "invalid credentials" in job.error and "last good state" in job.error
    source = admin_api.get("/api/v1/directories/corp/").json()
    assert "invalid credentials" in source["last_error"] and source["last_success"] is None


def test_ou_tree_with_machine_counts(acceptance_ldap, auditor_user, api_client_for, django_assert_max_num_queries):
    for host in expected_ous()["ou=Hosts,dc=corp,dc=test"]:
        machine_make(host)
    services.directory_sync(source=source_make(acceptance_ldap))
    client = api_client_for(auditor_user)
    with django_assert_max_num_queries(6):
        rows = client.get("/api/v1/organizational-units/?source=corp").json()["results"]
    counts = {r["dn"]: r["machine_count"] for r in rows}
    for ou, hosts in expected_ous().items():
        assert counts[ou] == len(hosts)
    london = next(r for r in rows if r["name"] == "London")
    assert london["depth"] == 2 and london["source"] == "corp" and london["computer_count"] == counts[london["dn"]]
    assert client.get("/api/v1/organizational-units/?source=other").json()["count"] == 0
    unmatched = client.get("/api/v1/directories/corp/unmatched/").json()
    assert unmatched == {"machines": [], "computers": []}


def test_role_mappings(acceptance_ldap, admin_api):
    source_make(acceptance_ldap)
    r = admin_api.post(
        "/api/v1/directory-role-mappings/",
        {
            "source": "corp",
            "group_dn": "CN=Ops, OU=Groups,DC=corp,DC=test",
            "role": "operator",
            "scope_ou_dn": "ou=EMEA,ou=Hosts,dc=corp,dc=test",
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    mapping = r.json()
    assert mapping["group_dn"] == "cn=Ops,ou=Groups,dc=corp,dc=test"
    r = admin_api.post(  # the same group in another spelling updates the mapping
        "/api/v1/directory-role-mappings/",
        {"source": "corp", "group_dn": "cn=ops,ou=groups,dc=corp,dc=test", "role": "admin"},
        format="json",
    )
    assert r.status_code == 201 and r.json()["id"] == mapping["id"] and r.json()["scope_ou_dn"] == ""
    r = admin_api.patch(f"/api/v1/directory-role-mappings/{mapping['id']}/", {"role": "auditor"}, format="json")
    assert r.status_code == 200 and r.json()["role"] == "auditor"
    r = admin_api.patch(f"/api/v1/directory-role-mappings/{mapping['id']}/", {"role": "root"}, format="json")
    assert r.status_code == 400
    assert admin_api.get("/api/v1/directories/corp/").json()["role_mappings"][0]["role"] == "auditor"
    assert admin_api.delete(f"/api/v1/directory-role-mappings/{mapping['id']}/").status_code == 204
