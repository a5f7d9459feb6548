"""The updates page and the deployment page in Debian's chromium: an operator logs in, ticks two
pending security updates, approves them (a real form post with its CSRF token), deploys, and watches
the per-machine table change without reloading the page."""

import pytest

from uus.approvals import selectors as approvals
from uus.approvals import services as approval_services
from uus.approvals.models import Ring
from uus.approvals.tests.factories import JQ_NEW, JQ_OLD, jq_archive, jq_notice, rings_make
from uus.deployments import services
from uus.deployments.models import MachineJob
from uus.inventory.tests.factories import entries, entry, machine_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_approve_in_the_browser_and_watch_the_deployment(live_server, page, make_user):
    jq_archive()
    jq_notice()
    rings_make()
    test = Ring.objects.get(name="test")
    m = machine_make("t1", packages=entries(entry("jq", JQ_OLD, source="jq"), entry("libjq1", JQ_OLD, source="jq")))
    approval_services.machine_set_ring(machine=m, ring=test)
    user = make_user("operator", username="olga")
    user.set_password("Olga-pass-123")
    user.save()

    page.goto(live_server.url + "/updates/?ring=test")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", "Olga-pass-123")
    page.click("button[type=submit]")
    page.wait_for_selector("table#updates")
    assert page.locator("nav.menu >> text=Updates").count() == 1
    page.check(f'input[value="jq {JQ_NEW}"]')
    page.check(f'input[value="libjq1 {JQ_NEW}"]')
    page.click("button[value=approved]")
    page.wait_for_selector("ul.messages >> text=2 updates approved")
    assert approvals.approval_state(test, "jq", JQ_NEW) == "approved"

    d = services.deployment_create(target="ring:test", user=user)
    page.goto(f"{live_server.url}/deployments/{d.pk}/")
    assert page.locator("#jobs td.state").first.inner_text() == "queued"
    MachineJob.objects.filter(deployment=d).update(state="delivered")  # the agent picked it up
    page.wait_for_selector("#jobs td.state:has-text('delivered')")  # the table polls its fragment
