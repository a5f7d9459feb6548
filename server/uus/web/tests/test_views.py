import pytest
from django.test import Client

from uus.testing.fixtures import PASSWORD

pytestmark = pytest.mark.django_db


def _login(user):
    c = Client()
    assert c.login(username=user.username, password=PASSWORD)
    return c


def test_pages_need_login():
    for url in ("/", "/jobs/", "/enrollment/", "/users/"):
        r = Client().get(url)
        assert r.status_code == 302 and r.url.startswith("/login/"), url


def test_login_page_accepts_a_user_and_refuses_a_bad_password(operator_user):
    c = Client()
    r = c.post("/login/", {"username": operator_user.username, "password": "wrong-password"})
    assert r.status_code == 401 and b"Wrong user name or password" in r.content
    r = c.post("/login/", {"username": operator_user.username, "password": PASSWORD})
    assert r.status_code == 302 and r.url == "/"
    assert c.get("/").status_code == 200


def test_login_refuses_an_open_redirect(operator_user):
    r = Client().post("/login/?next=https://evil.example/", {"username": operator_user.username, "password": PASSWORD})
    assert r.status_code == 302 and r.url == "/"


def test_post_without_csrf_token_is_refused_and_changes_nothing(admin_user):
    from uus.inventory.models import EnrollmentToken

    c = Client(enforce_csrf_checks=True)
    c.force_login(admin_user)
    r = c.post("/enrollment/", {"comment": "no csrf"})
    assert r.status_code == 403
    assert not EnrollmentToken.objects.exists()
    r = c.post("/logout/")
    assert r.status_code == 403


def test_dashboard_shows_a_chart_and_recent_jobs(auditor_user):
    from uus.jobs.services import dispatch

    dispatch("uus.jobs.tasks.selftest", kwargs={"steps": 1})
    r = _login(auditor_user).get("/")
    assert r.status_code == 200
    assert b'<svg class="chart"' in r.content and b"Self-test" in r.content


def test_auditor_cannot_create_tokens_or_users_operator_cannot_manage_users(auditor_user, operator_user):
    from uus.accounts.models import User
    from uus.inventory.models import EnrollmentToken

    c = _login(auditor_user)
    assert c.post("/enrollment/", {"comment": "x"}).status_code == 403
    assert c.post("/jobs/selftest/").status_code == 403
    assert not EnrollmentToken.objects.exists()
    c = _login(operator_user)
    n = User.objects.count()
    assert c.get("/users/").status_code == 403
    assert c.post("/users/", {"username": "z", "password": "a-long-password", "role": "admin"}).status_code == 403
    assert User.objects.count() == n


def test_admin_creates_an_enrollment_token_shown_once(admin_user):
    c = _login(admin_user)
    r = c.post("/enrollment/", {"comment": "lab", "expires": "7d", "max_uses": 3})
    assert r.status_code == 200 and b"uusenr_" in r.content
    page = c.get("/enrollment/").content.decode()
    assert "shown once" not in page


@pytest.mark.system
def test_enrollment_page_tells_how_to_install_the_published_agent(auditor_user, settings):
    from uus.repos.agent_package import agent_package_publish

    settings.UUS = {**settings.UUS, "base_url": "https://uus.example.org"}
    c = _login(auditor_user)
    assert "not published yet" in c.get("/enrollment/").content.decode()
    row, created = agent_package_publish()
    assert created and row.name == "uus-agent"
    page = c.get("/enrollment/").content.decode()
    assert f"uus-agent {row.version}" in page
    assert "https://uus.example.org/repo/production uus-local main" in page
    assert "apt-get install uus-agent" in page


def test_job_page_and_its_live_fragment(auditor_user):
    from uus.jobs.services import dispatch

    job = dispatch("uus.jobs.tasks.selftest", kwargs={"steps": 1})
    c = _login(auditor_user)
    assert b"data-poll" in c.get(f"/jobs/{job.pk}/").content
    frag = c.get(f"/jobs/{job.pk}/status/")
    assert frag.status_code == 200 and b"queued" in frag.content
