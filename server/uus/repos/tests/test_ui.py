"""The repository pages in Debian's chromium: drag a .deb onto the upload page, see the repositories."""

from __future__ import annotations

import base64

import pytest

from uus.repos.models import PrivatePackage
from uus.testing.fixtures import PASSWORD

from .debs import HELLO, SL

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DROP = """([name, b64]) => {
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], name, {type: "application/vnd.debian.binary-package"}));
  const zone = document.getElementById("drop-zone");
  zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: dt, bubbles: true, cancelable: true}));
  zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
}"""


@pytest.fixture
def data_dir(settings, tmp_path):
    from uus.approvals.models import Ring

    # transactional tests start from an emptied database: the rings the migration makes come back
    Ring.objects.get_or_create(name="test", defaults={"position": 10})
    Ring.objects.get_or_create(name="production", defaults={"position": 100})
    settings.DATA_DIR = tmp_path / "d"
    settings.DATA_DIR.mkdir()
    yield settings.DATA_DIR
    from uus.repos import services
    from uus.repos.signing import signing_agent_stop

    if (settings.DATA_DIR / "gnupg").exists():
        signing_agent_stop(services.gnupg_home())


def login(page, url, user):
    page.goto(url + "/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Dashboard')")


def test_drag_and_drop_upload_then_repositories_page(live_server, page, operator_user, data_dir):
    login(page, live_server.url, operator_user)
    page.click("nav.menu >> text=Packages")
    page.wait_for_selector("h1:has-text('Private packages')")
    page.evaluate(DROP, ["hello_2.10-3_amd64.deb", base64.b64encode(HELLO.read_bytes()).decode()])
    page.wait_for_selector("tr[data-package=hello]")
    assert "uploaded hello 2.10-3 (amd64)" in page.locator(".messages").inner_text()
    assert PrivatePackage.objects.get(name="hello").uploaded_by_name == operator_user.username

    # a broken file dropped the same way is refused with dpkg's reason, and nothing is added
    page.evaluate(DROP, ["sl.deb", base64.b64encode(SL.read_bytes()[:9000]).decode()])
    page.wait_for_selector(".messages .error")
    assert "truncated" in page.locator(".messages .error").inner_text()
    assert PrivatePackage.objects.count() == 1

    page.click("nav.menu >> text=Repositories")
    page.wait_for_selector("h1:has-text('Repositories')")
    fingerprint = page.locator("#key-fingerprint").inner_text()
    assert len(fingerprint) == 40
    assert page.locator("tr[data-ring=production]").count() == 1
    assert "Hits" in page.locator("#cache-stats").inner_text()
