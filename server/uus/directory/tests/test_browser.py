"""The OU tree page in Debian's chromium: a directory user logs in through the login form, reads the
tree (nesting, machine counts, exposure per OU) and follows an OU to the machines below it."""

from __future__ import annotations

import pytest

from uus.directory import services

from .factories import C, machine_make, source_make, wayland_notice_import, wayland_on
from .test_auth import GERMANY, map_corp

pytestmark = [pytest.mark.browser, pytest.mark.ldap, pytest.mark.django_db(transaction=True)]


def test_ou_tree_page_in_a_browser(live_server, page, slapd_server):
    machines = {h: machine_make(h) for h in ("ber-web01", "muc-app01", "par-web01", "qa-runner01", "lab-01")}
    wayland_on(machines["muc-app01"], "1.20.0-1ubuntu0")  # older than USN-5614-1's fix: exposed
    wayland_notice_import()
    source = source_make(slapd_server, url=slapd_server.ldaps_url, ca_certificate=slapd_server.ca_cert.read_text())
    map_corp(source)
    services.directory_sync(source=source)

    page.goto(live_server.url + "/directory/ous/")  # the login page first, then back to the OU tree
    assert "/login/" in page.url
    page.fill("input[name=username]", "carol")  # uus-auditors in the directory, no local account
    page.fill("input[name=password]", "Carol-pass-1")
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Organizational units')")
    assert page.locator("nav.menu >> text=OUs").count() == 1  # the menu leads here too

    def cells(dn: str) -> dict[str, str]:
        row = page.locator(f'tr[data-dn="{dn}"]')
        return {
            "name": row.locator("td a").inner_text(),
            "machines": row.locator("td.machine-count").inner_text(),
            "exposed": row.locator("td.exposed-count").inner_text(),
            "indent": row.locator("td").first.evaluate("td => getComputedStyle(td).paddingLeft"),
        }

    computers, germany, berlin = cells(C), cells(GERMANY), cells(f"ou=Berlin,{GERMANY}")
    assert (computers["machines"], germany["machines"], berlin["machines"]) == ("4", "2", "1")
    assert (computers["exposed"], germany["exposed"], berlin["exposed"]) == ("1", "1", "0")
    # nesting is shown by indentation: each level further right than its parent
    indents = [float(c["indent"].removesuffix("px")) for c in (computers, germany, berlin)]
    assert indents == sorted(indents) and len(set(indents)) == 3
    assert cells(f"ou=Spain,{C}")["machines"] == "0"  # an OU without machines is listed too

    page.click(f'tr[data-dn="{GERMANY}"] >> td a')  # the OU as a machine filter: Germany and below
    page.wait_for_selector("table.list")
    listed = sorted(page.locator("table.list tbody tr td:first-child a").all_inner_texts())
    assert listed == ["ber-web01", "muc-app01"]
