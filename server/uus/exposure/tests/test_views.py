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


def test_search_box_is_on_every_page_of_the_menu(fleet, admin_user, client):
    from uus.web.menu import MENU

    assert client.login(username=admin_user.username, password=PASSWORD)
    for item in MENU:
        if item.url_name == "api-docs":
            continue  # the API's own documentation page, not a UI screen
        r = client.get(reverse(item.url_name))
        assert r.status_code == 200, item.url_name
        assert 'class="exposure-search"' in r.content.decode(), f"no search box on {item.url_name}"


@pytest.fixture
def real_fleet(db):
    """The reference fleet of test_rule: real notices, machines from their own versions, kernels."""
    from uus.exposure.tests.fleet import build_fleet

    notices_import(str(DATA))
    fleet = build_fleet(machines_per_release=2)
    return {
        m.hostname: machine_make(m.hostname, packages=m.packages, release=m.release, kernel=m.kernel) for m in fleet
    }


def _bars(html: str, label: str) -> dict[str, str]:
    """{bar label: value} of the SVG bar chart titled `label` (web/_bar_chart.html)."""
    import re

    chart = html[html.index(f'aria-label="{label}"') :]
    chart = chart[: chart.index("</svg>")]
    return dict(re.findall(r"<title>([^<]+?): ([\d,]+)</title>", chart))


def test_result_page_counts_per_priority_and_status_equal_the_full_list(real_fleet, auditor):
    from uus.exposure import selectors
    from uus.exposure.presentation import STATUS_LABELS

    for text in ("USN-7800-1", "CVE-2024-28085", "package:curl"):
        rows = selectors.findings(selectors.parse_query(text))
        want = selectors.summary(rows)
        html = auditor.get(reverse("exposure:search"), {"q": text}).content.decode()
        assert f'id="exposed-count">{want["machines"]}<' in html, text
        by_priority = _bars(html, "Machines by priority")
        assert {p: int(n) for p, n in by_priority.items() if int(n)} == {
            p: n for p, n in want["by_priority"].items() if n
        }, text
        by_status = _bars(html, "Machines by status")
        assert {k: int(v) for k, v in by_status.items() if k != STATUS_LABELS["fixed"]} == {
            STATUS_LABELS[s]: n for s, n in want["by_status"].items()
        }, text
    # a fix only in Ubuntu Pro (USN-7800-1, Ubuntu:Pro:Realtime:24.04:LTS) is shown apart
    html = auditor.get(reverse("exposure:search"), {"q": "USN-7800-1"}).content.decode()
    assert "with a fix that needs Ubuntu Pro" in html and '<span class="badge">Ubuntu Pro</span>' in html


def test_machine_detail_lists_kernels_that_are_not_running_apart(real_fleet, auditor):
    booted = real_fleet["k-oem-booted"]  # runs the fixed kernel; the vulnerable one is still installed
    url = reverse("inventory:machine_detail", args=[booted.uuid])
    html = auditor.get(url).content.decode()
    section = html[html.index('id="machine-exposure"') :]
    assert "No known vulnerability affects" in section and "concern kernels installed but not running" in section
    assert "USN-6650-1" not in section  # not listed until asked for
    section = auditor.get(url, {"kernels": "all"}).content.decode()
    section = section[section.index('id="machine-exposure"') :]
    assert "USN-6650-1" in section
    reboot = real_fleet["k-oem-reboot"]  # runs the vulnerable kernel, the fixed one installed beside it
    section = auditor.get(reverse("inventory:machine_detail", args=[reboot.uuid])).content.decode()
    section = section[section.index('id="machine-exposure"') :]
    assert "findings · fixed, reboot pending: " in section and "fixed_reboot_pending" not in section
