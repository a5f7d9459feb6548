"""Exposure pages through Django's test client: search result, CSV, machine section, dashboard tiles."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from uus.catalog.services import notices_import
from uus.exposure.models import ExposureSnapshot
from uus.exposure.tests.fleet import DATA
from uus.inventory.tests.factories import machine_make
from uus.jobs import services as jobs
from uus.testing.fixtures import PASSWORD

OLD = "2.37.2-4ubuntu3"


@pytest.fixture
def fleet(db):
    notices_import(str(DATA / "usn"))
    util = ("uuid-runtime", "amd64", OLD, "util-linux", OLD, "installed")
    curl = ("curl", "amd64", "7.81.0-1ubuntu1.16", "curl", "7.81.0-1ubuntu1.16", "installed")
    return [
        machine_make("web-01", release="22.04", packages=[curl, util]),
        machine_make("web-02", release="22.04", packages=[util]),
    ]


@pytest.fixture
def auditor(client, auditor_user):
    assert client.login(username=auditor_user.username, password=PASSWORD)
    return client


def test_search_page_shows_counts_charts_and_machines(fleet, auditor):
    r = auditor.get(reverse("exposure:search"), {"q": "CVE-2024-28085"})
    html = r.content.decode()
    assert r.status_code == 200
    assert 'id="exposed-count">2<' in html
    assert html.count("<svg") >= 2 and "fix available, not approved" in html
    assert "web-01" in html and "web-02" in html and "jammy-security" in html
    r = auditor.get(reverse("exposure:search"), {"q": "package:curl"})
    assert "web-01" in r.content.decode() and "web-02" not in r.content.decode()


def test_csv_export_has_every_finding(fleet, auditor):
    r = auditor.get(reverse("exposure:search"), {"q": "USN-6719-1", "format": "csv"})
    assert r["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert sorted((x["hostname"], x["package"], x["fixed_version"]) for x in rows) == [
        ("web-01", "uuid-runtime", "2.37.2-4ubuntu3.3"),
        ("web-02", "uuid-runtime", "2.37.2-4ubuntu3.3"),
    ]


def test_bad_query_is_a_clear_error_page(fleet, auditor):
    r = auditor.get(reverse("exposure:search"), {"q": "package:Not A Package"})
    assert r.status_code == 400 and "neither a CVE id" in r.content.decode()


def test_search_box_on_every_page_and_machine_section(fleet, auditor):
    r = auditor.get(reverse("inventory:machine_detail", args=[fleet[0].uuid]))
    html = r.content.decode()
    assert 'class="exposure-search"' in html and 'id="machine-exposure"' in html
    # medium (curl, CVE-2024-7264 as its cves_map rates it) comes before unknown (util-linux: no rating)
    assert html.index("USN-6944-1") < html.index("USN-6719-1")


def test_dashboard_tiles_and_trend_from_the_snapshot_job(fleet, auditor):
    from uus.exposure.tasks import exposure_snapshot

    job = jobs.job_run_inline(exposure_snapshot)
    assert job.state == "succeeded", job.error if hasattr(job, "error") else job
    # web-01's worst is medium (curl), web-02's unknown (util-linux's notice rates no CVE): one machine each
    assert dict(ExposureSnapshot.objects.values_list("priority", "machines")) == {"medium": 1, "unknown": 1}
    html = auditor.get(reverse("web:dashboard")).content.decode()
    assert 'id="exposure-tile"' in html and "USN-6719-1" in html
    assert "Exposed machines over time" in html and "The periodic snapshot job has not run yet" not in html
