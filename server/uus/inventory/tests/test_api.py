"""/api/v1/machines/ (permissions for every route are in server/tests/test_api_permissions.py)."""

import pytest

from uus.inventory.models import Machine
from uus.inventory.tests.factories import entries, entry, machine_make

from .. import packages as pk
from .. import services

pytestmark = pytest.mark.django_db

PKGS = entries(
    entry("jq", "1.6-2.1+deb12u2"),
    entry("libjq1", "1.6-2.1+deb12u2", source="jq"),
    entry("bash", "5.2.15-2+b8", source_version="5.2.15-2"),
)


@pytest.fixture
def api(auditor_user, api_client_for):
    return api_client_for(auditor_user)


def test_list_filters_and_shape(api):
    machine_make("web-01", packages=PKGS, release="12", os_id="debian")
    machine_make("web-02", packages=PKGS[:1])
    r = api.get("/api/v1/machines/", {"release": "12"})
    assert r.status_code == 200
    data = r.json()
    assert data["count"] == 1
    row = data["results"][0]
    assert row["hostname"] == "web-01" and row["package_count"] == 3 and row["release"] == "12"
    assert {"id", "hostname", "last_seen", "is_stale", "is_reboot_required", "group"} <= set(row)
    r = api.get("/api/v1/machines/", {"package": "libjq1", "version_lt": "1.6-2.1+deb12u3"})
    assert [m["hostname"] for m in r.json()["results"]] == ["web-01"]


def test_bad_filter_is_400_with_the_envelope(api):
    r = api.get("/api/v1/machines/", {"version_lt": "1.0"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid"


def test_detail_packages_history(api):
    m = machine_make("web-03", packages=PKGS)
    upgraded = entries(*[e for e in PKGS if e[0] != "jq"], entry("jq", "1.6-2.1+deb12u3"))
    services.inventory_apply_full(
        machine=Machine.objects.get(pk=m.pk), inventory_hash=pk.inventory_hash(upgraded), entries=upgraded
    )
    r = api.get(f"/api/v1/machines/{m.uuid}/")
    assert r.status_code == 200 and r.json()["id"] == str(m.uuid) and "apt_sources" in r.json()
    r = api.get(f"/api/v1/machines/{m.uuid}/packages/")
    assert [p["name"] for p in r.json()["results"]] == ["bash", "jq", "libjq1"]
    assert r.json()["results"][1] == {
        "name": "jq",
        "architecture": "amd64",
        "version": "1.6-2.1+deb12u3",
        "source": "jq",
        "source_version": "1.6-2.1+deb12u3",
        "status": "installed",
    }
    r = api.get(f"/api/v1/machines/{m.uuid}/history/")
    (change,) = r.json()["results"]
    assert change["old_inventory_hash"] == pk.inventory_hash(PKGS)
    assert change["new_inventory_hash"] == pk.inventory_hash(upgraded)
    assert [(c["kind"], c["name"], c["old_version"], c["new_version"]) for c in change["packages"]] == [
        ("upgraded", "jq", "1.6-2.1+deb12u2", "1.6-2.1+deb12u3")
    ]


def test_admin_revokes(admin_user, api_client_for):
    m = machine_make("web-04")
    r = api_client_for(admin_user).post(f"/api/v1/machines/{m.uuid}/revoke/")
    assert r.status_code == 200 and r.json()["is_revoked"] is True
    assert Machine.objects.get(pk=m.pk).is_revoked


def test_list_query_budget(api, django_assert_max_num_queries):
    for i in range(30):
        machine_make(f"m{i:02d}", packages=PKGS[: 1 + i % 3])
    with django_assert_max_num_queries(4):  # auth token, count, page
        r = api.get("/api/v1/machines/", {"package": "jq", "stale": "false"})
    assert r.json()["count"] == 20  # 10 of the 30 have only bash


def test_unknown_machine_is_404(api):
    r = api.get("/api/v1/machines/00000000-0000-0000-0000-000000000000/")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
