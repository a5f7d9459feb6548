"""The web UI in Debian's chromium: log in, see the dashboard, follow a job live on its page."""

import pytest
from uus.testing.fixtures import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_login_dashboard_and_a_live_job_page(live_server, page, admin_user):
    from uus.jobs import services
    from uus.jobs.worker import start_inprocess_worker

    worker = start_inprocess_worker()
    try:
        page.goto(live_server.url + "/")
        assert "/login/" in page.url
        page.fill("input[name=username]", admin_user.username)
        page.fill("input[name=password]", "not-the-password")
        page.click("button[type=submit]")
        assert page.locator(".error").inner_text().startswith("Wrong user name")
        page.fill("input[name=username]", admin_user.username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("h1:has-text('Dashboard')")
        assert page.locator("svg.chart").count() >= 1
        page.click("nav.menu >> text=Jobs")
        page.click("text=Run a self-test job")
        page.wait_for_selector(".job-status[data-state=succeeded]", timeout=30000)
        assert "step 10 of 10" in page.locator("#job-log").inner_text()
        assert page.locator(".progress div").get_attribute("style").replace(" ", "").rstrip(";") == "width:100%"
    finally:
        worker.stop.set()
        worker.wake.set()
        services.wake_event = None


def test_usable_on_a_laptop_screen(live_server, browser, auditor_user):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.goto(live_server.url + "/login/")
    page.fill("input[name=username]", auditor_user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Dashboard')")
    # nothing wider than the viewport: no horizontal scrolling at 1280px
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert page.locator("text=Users").count() == 0  # auditors don't see the admin menu
    context.close()
