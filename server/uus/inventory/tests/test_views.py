"""The machines pages render with the same filters as the API."""

import pytest
from django.urls import reverse

from uus.inventory.models import Machine
from uus.inventory.tests.factories import entries, entry, machine_make
from uus.testing.fixtures import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, auditor_user):
    client.login(username=auditor_user.username, password=PASSWORD)
    return client


def test_machine_list_with_filters_and_counts(logged_in, django_assert_max_num_queries):
    machine_make("db-01", packages=entries(entry("postgresql-15", "15.8-0+deb12u1")), release="12", os_id="debian")
    machine_make("web-01", packages=entries(entry("nginx", "1.22.1-9")), reboot_required=True)
    r = logged_in.get(reverse("inventory:machine_list"))
    assert r.status_code == 200
    body = r.content.decode()
    assert "db-01" in body and "web-01" in body and "1 need a reboot" in body
    r = logged_in.get(reverse("inventory:machine_list"), {"package": "nginx"})
    assert "web-01" in r.content.decode() and "db-01" not in r.content.decode()
    with django_assert_max_num_queries(12):
        logged_in.get(reverse("inventory:machine_list"), {"release": "12"})


def test_bad_filter_shows_a_message(logged_in):
    r = logged_in.get(reverse("inventory:machine_list"), {"version_lt": "1.0"})
    assert r.status_code == 400 and b"version filters need package" in r.content


def test_machine_detail_shows_facts_packages_history(logged_in):
    m = machine_make("web-02", packages=entries(entry("jq", "1.6-2.1+deb12u2")))
    r = logged_in.get(reverse("inventory:machine_detail", args=[m.uuid]))
    assert r.status_code == 200
    assert b"web-02" in r.content and b"1.6-2.1+deb12u2" in r.content and b"No changes since" in r.content


def test_only_admins_revoke(logged_in, client, admin_user):
    m = machine_make("web-03")
    r = logged_in.post(reverse("inventory:machine_revoke", args=[m.uuid]))
    assert r.status_code == 403 and not Machine.objects.get(pk=m.pk).is_revoked
    client.login(username=admin_user.username, password=PASSWORD)
    r = client.post(reverse("inventory:machine_revoke", args=[m.uuid]))
    assert r.status_code == 302 and Machine.objects.get(pk=m.pk).is_revoked
