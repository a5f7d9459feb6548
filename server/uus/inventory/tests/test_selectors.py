"""Selectors and the MachineFilterSet on a small fleet."""

from datetime import timedelta

import pytest
from django.utils import timezone

from uus.inventory import selectors
from uus.inventory.exceptions import InvalidFilter, MachineNotFound
from uus.inventory.filters import MachineFilterSet
from uus.inventory.models import Machine

from .factories import entries, entry, machine_make

pytestmark = pytest.mark.django_db

OPENSSL_OLD = entry("libssl3", "3.0.2-0ubuntu1.10", source="openssl")
OPENSSL_NEW = entry("libssl3", "3.0.2-0ubuntu1.15", source="openssl")


@pytest.fixture
def fleet():
    common = [entry("bash", "5.1-6ubuntu1"), entry("jq", "1.6-2.1ubuntu3")]
    return {
        "old": machine_make("old", packages=entries(*common, OPENSSL_OLD)),
        "new": machine_make("new", packages=entries(*common, OPENSSL_NEW)),
        "gone": machine_make("gone", packages=entries(*common, (*OPENSSL_OLD[:5], "config-files"))),
        "deb": machine_make(
            "deb",
            release="12",
            os_id="debian",
            packages=entries(entry("libssl3", "3.0.11-1~deb12u2", source="openssl")),
        ),
        "empty": machine_make("empty", group="lab"),
    }


def names(qs):
    return sorted(m.hostname for m in qs)


def test_machines_with_source_below_a_fixed_version(fleet):
    assert names(selectors.machines_with_source(source="openssl")) == ["deb", "new", "old"]
    assert names(selectors.machines_with_source(source="openssl", release="22.04", version_lt="3.0.2-0ubuntu1.12")) == [
        "old"
    ]
    assert names(selectors.machines_with_source(source="openssl", release="22.04")) == ["new", "old"]


def test_machine_source_versions_in_one_query(fleet, django_assert_num_queries):
    with django_assert_num_queries(1):
        rows = list(selectors.machine_source_versions(source="openssl", version_lt="3.0.2-0ubuntu1.12"))
    # dpkg order, not text order: 3.0.11-1~deb12u2 is above 3.0.2-0ubuntu1.12
    assert [(r[2], r[4], r[6], r[7]) for r in rows] == [("old", "libssl3", "3.0.2-0ubuntu1.10", "3.0.2-0ubuntu1.10")]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["deb", "empty", "gone", "new", "old"]),
        ({"release": "12"}, ["deb"]),
        ({"release": "12,22.04"}, ["deb", "empty", "gone", "new", "old"]),
        ({"os": "debian"}, ["deb"]),
        ({"group": "lab"}, ["empty"]),
        ({"q": "ol"}, ["old"]),
        ({"package": "libssl3"}, ["deb", "new", "old"]),
        ({"package": "libssl3", "version_lt": "3.0.2-0ubuntu1.15"}, ["old"]),
        ({"package": "libssl3", "version_gt": "3.0.9"}, ["deb"]),
        ({"package": "libssl3", "version_gte": "3.0.2-0ubuntu1.15", "release": "22.04"}, ["new"]),
        ({"package": "libssl3", "version": "3.0.2-0ubuntu1.10"}, ["old"]),
        ({"source": "openssl", "version_gt": "3.0.2-0ubuntu1.10"}, ["deb", "new"]),
        ({"package": "no-such-package"}, []),
        ({"needs_reboot": "false"}, ["deb", "empty", "gone", "new", "old"]),
        ({"stale": "true"}, []),
        ({"revoked": "no"}, ["deb", "empty", "gone", "new", "old"]),
    ],
)
def test_filterset(fleet, params, expected):
    assert names(MachineFilterSet(params).filter(selectors.machine_list())) == expected


def test_filterset_by_time_and_staleness(fleet):
    Machine.objects.filter(hostname="old").update(last_seen=timezone.now() - timedelta(days=3))
    qs = selectors.machine_list()
    assert names(MachineFilterSet({"stale": "true"}).filter(qs)) == ["old"]
    assert names(MachineFilterSet({"last_seen_before": "2d"}).filter(qs)) == ["old"]
    assert "old" not in names(MachineFilterSet({"last_seen_after": "1d"}).filter(qs))
    cutoff = (timezone.now() - timedelta(days=1)).isoformat()
    assert names(MachineFilterSet({"last_seen_before": cutoff}).filter(qs)) == ["old"]


def test_filterset_needs_reboot_and_a_version_range(fleet):
    Machine.objects.filter(hostname__in=["new", "empty"]).update(is_reboot_required=True)
    qs = selectors.machine_list()
    assert names(MachineFilterSet({"needs_reboot": "true"}).filter(qs)) == ["empty", "new"]
    assert names(MachineFilterSet({"needs_reboot": "false"}).filter(qs)) == ["deb", "gone", "old"]
    # a range, in dpkg order (3.0.11 > 3.0.2): both bounds apply to the same installed package
    in_range = {"package": "libssl3", "version_gte": "3.0.2-0ubuntu1.11", "version_lte": "3.0.10"}
    assert names(MachineFilterSet(in_range).filter(qs)) == ["new"]
    wide = {"package": "libssl3", "version_gt": "3.0.2-0ubuntu1.10", "version_lt": "3.0.12"}
    assert names(MachineFilterSet(wide).filter(qs)) == ["deb", "new"]
    assert names(MachineFilterSet({**wide, "needs_reboot": "true", "group": ""}).filter(qs)) == ["new"]


@pytest.mark.parametrize(
    "params",
    [
        {"needs_reboot": "maybe"},
        {"version_lt": "1.0"},
        {"package": "x", "version_lt": "1.0 beta"},
        {"last_seen_before": "someday"},
        {"ordering": "random"},
    ],
)
def test_filterset_refuses_bad_values(params):
    with pytest.raises(InvalidFilter):
        MachineFilterSet(params)


def test_counts(fleet):
    Machine.objects.filter(hostname="new").update(is_reboot_required=True)
    counts = selectors.machine_counts(selectors.machine_list())
    assert (counts["total"], counts["needs_reboot"], counts["stale"]) == (5, 1, 0)
    assert {(r["os_id"], r["release"], r["n"]) for r in counts["releases"]} == {
        ("debian", "12", 1),
        ("ubuntu", "22.04", 4),
    }


def test_machine_get_by_name_fqdn_or_uuid(fleet):
    m = fleet["old"]
    assert selectors.machine_get(ident="old") == m
    assert selectors.machine_get(ident="old.example.org") == m
    assert selectors.machine_get(ident=str(m.uuid)) == m
    with pytest.raises(MachineNotFound):
        selectors.machine_get(ident="nobody")


def test_machine_packages_and_search(fleet):
    rows = selectors.machine_packages(machine=fleet["old"])
    assert [r.package.name for r in rows] == ["bash", "jq", "libssl3"]
    assert [r.package.name for r in selectors.machine_packages(machine=fleet["old"], search="ssl")] == ["libssl3"]
    assert list(selectors.machine_packages(machine=fleet["empty"])) == []
