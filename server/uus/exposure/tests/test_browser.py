"""In Debian's chromium: type a CVE in the search box of any page and see the exposed machine."""

from __future__ import annotations

import pytest

from uus.testing.fixtures import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_search_box_finds_the_machine_exposed_to_a_cve(live_server, page, auditor_user):
    from uus.catalog.services import notices_import
    from uus.exposure.tests.fleet import DATA
    from uus.inventory.tests.factories import machine_make

    notices_import(str(DATA / "usn" / "USN-6859-1.json"))
    ssh = ("openssh-server", "amd64", "1:8.9p1-3ubuntu0.1", "openssh", "1:8.9p1-3ubuntu0.1", "installed")
    machine_make("bastion-01", release="22.04", packages=[ssh])
    fixed = "1:8.9p1-3ubuntu0.10"
    machine_make("bastion-02", release="22.04", packages=[(ssh[0], "amd64", fixed, "openssh", fixed, "installed")])

    page.goto(live_server.url + "/login/")
    page.fill("input[name=username]", auditor_user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Dashboard')")
    assert page.locator("#exposure-tile .big").inner_text() == "1"
    page.fill("form.exposure-search input[name=q]", "cve-2024-6387")
    page.press("form.exposure-search input[name=q]", "Enter")
    page.wait_for_selector("#exposure-machines")
    assert page.locator("#exposed-count").inner_text() == "1"
    table = page.locator("#exposure-machines").inner_text()
    assert "bastion-01" in table and "bastion-02" not in table
    assert "1:8.9p1-3ubuntu0.10" in table and "jammy-security" in table
    # the machine's own page lists the same finding in its exposure section
    page.click("#exposure-machines >> text=bastion-01")
    page.wait_for_selector("#machine-exposure")
    assert "USN-6859-1" in page.locator("#machine-exposure").inner_text()
