"""The rules and groups pages: operators create and delete (CSRF enforced), auditors only read, bad
input is shown on the form and changes nothing; both pages are in the menu."""

import re

import pytest
from django.test import Client

from uus.approvals import selectors
from uus.approvals.models import ApprovalRule, MachineGroup
from uus.approvals.services import approval_rule_create, group_create
from uus.approvals.tests.factories import rings_make
from uus.audit.models import AuditEvent
from uus.inventory.tests.factories import machine_make

pytestmark = pytest.mark.django_db


def logged_in(user, csrf=False) -> Client:
    c = Client(enforce_csrf_checks=csrf)
    c.force_login(user)
    return c


def csrf_of(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


@pytest.fixture
def rings():
    rings_make()


def test_operator_creates_and_deletes_rules_with_csrf(rings, operator_user):
    c = logged_in(operator_user, csrf=True)
    page = c.get("/approval-rules/").content.decode()
    assert 'id="rule-form"' in page and "No rules" in page
    assert 'href="/approval-rules/"' in page  # in the menu
    token = csrf_of(page)
    assert c.post("/approval-rules/create/", {"ring": "test", "kind": "auto_approve_security"}).status_code == 403
    r = c.post(
        "/approval-rules/create/",
        {"csrfmiddlewaretoken": token, "ring": "test", "kind": "auto_approve_security", "min_priority": "high"},
    )
    assert r.status_code == 302 and r["Location"] == "/approval-rules/"
    r = c.post(
        "/approval-rules/create/",
        {
            "csrfmiddlewaretoken": token,
            "ring": "production",
            "kind": "auto_promote",
            "from_ring": "test",
            "after_days": 2,
        },
    )
    assert r.status_code == 302
    security, promote = ApprovalRule.objects.order_by("pk")
    assert (security.ring.name, security.min_priority, security.created_by_name) == (
        "test",
        "high",
        operator_user.username,
    )
    assert (promote.ring.name, promote.from_ring.name, promote.after_days) == ("production", "test", 2)
    page = c.get("/approval-rules/").content.decode()
    assert "approve security updates &gt;= high for test" in page
    assert "promote test -&gt; production after 2 days without failures" in page

    r = c.post(f"/approval-rules/{security.pk}/delete/", {"csrfmiddlewaretoken": token})
    assert r.status_code == 302 and list(ApprovalRule.objects.all()) == [promote]
    assert list(
        AuditEvent.objects.filter(action__startswith="rule.").order_by("id").values_list("action", flat=True)
    ) == [
        "rule.create",
        "rule.create",
        "rule.delete",
    ]


def test_a_bad_rule_is_shown_on_the_form_and_nothing_is_created(rings, operator_user):
    c = logged_in(operator_user)
    r = c.post("/approval-rules/create/", {"ring": "test", "kind": "auto_promote", "from_ring": "test"})
    assert r.status_code == 400 and "a promotion rule needs another ring to promote from" in r.content.decode()
    r = c.post("/approval-rules/create/", {"ring": "test", "kind": "auto_approve_security"})
    assert r.status_code == 400 and "min_priority &#x27;&#x27; is not one of" in r.content.decode()
    r = c.post("/approval-rules/create/", {"ring": "nowhere", "kind": "auto_approve_security", "min_priority": "low"})
    assert r.status_code == 400 and "nowhere is not one of the available choices" in r.content.decode()
    assert not ApprovalRule.objects.exists()
    assert c.post("/approval-rules/999/delete/").status_code == 302  # unknown: a message, nothing deleted


def test_auditors_see_rules_and_groups_but_cannot_change_them(rings, auditor_user):
    rule = approval_rule_create(ring=selectors.ring_get("test"), kind="auto_approve_security", min_priority="low")
    group_create(name="web", kind="rule", hostname_pattern="web-*")
    c = logged_in(auditor_user)
    rules_page = c.get("/approval-rules/").content.decode()
    assert f'id="rule-{rule.pk}"' in rules_page and "rule-form" not in rules_page and "Delete" not in rules_page
    groups_page = c.get("/groups/").content.decode()
    assert 'id="group-web"' in groups_page and "group-form" not in groups_page and "Delete" not in groups_page
    assert c.post(f"/approval-rules/{rule.pk}/delete/").status_code == 403
    assert c.post("/approval-rules/create/", {"ring": "test", "kind": "auto_approve_security"}).status_code == 403
    assert c.post("/groups/web/delete/").status_code == 403
    assert c.post("/groups/create/", {"name": "x", "kind": "manual"}).status_code == 403
    assert ApprovalRule.objects.count() == 1 and MachineGroup.objects.count() == 1


def test_operator_creates_manual_rule_and_ou_groups_and_deletes_one(rings, operator_user):
    from uus.directory.models import DirectoryComputer, DirectorySource, MachinePlacement, OrganizationalUnit

    web1 = machine_make("web-01", release="12")
    machine_make("web-02", release="22.04")
    db1 = machine_make("db-01", release="12")
    source = DirectorySource.objects.create(name="corp", url="ldap://127.0.0.1:1", base_dn="dc=corp,dc=test")
    berlin = OrganizationalUnit.objects.create(
        source=source, dn="ou=Berlin,dc=corp,dc=test", dn_key="ou=berlin,dc=corp,dc=test", name="Berlin"
    )
    computer = DirectoryComputer.objects.create(
        source=source, dn="cn=db-01,ou=Berlin,dc=corp,dc=test", dn_key="cn=db-01,ou=berlin,dc=corp,dc=test",
        hostname="db-01", ou=berlin, machine=db1,
    )  # fmt: skip
    MachinePlacement.objects.create(ou=berlin, machine=db1, computer=computer, is_direct=True)

    c = logged_in(operator_user, csrf=True)
    page = c.get("/groups/").content.decode()
    assert 'id="group-form"' in page and 'value="ou:ou=Berlin,dc=corp,dc=test"' in page
    assert 'href="/groups/"' in page  # in the menu
    token = csrf_of(page)
    for body in (
        {"name": "pilots", "kind": "manual", "machines": "web-01 db-01", "description": "first wave"},
        {"name": "debian-web", "kind": "rule", "release": "12", "hostname_pattern": "web-*"},
        {"name": "berlin", "kind": "ou", "ou": "ou:ou=Berlin,dc=corp,dc=test"},
    ):
        r = c.post("/groups/create/", {"csrfmiddlewaretoken": token, **body})
        assert r.status_code == 302, r.content.decode()
    members = {
        g.name: sorted(selectors.group_machines(g).values_list("hostname", flat=True))
        for g in MachineGroup.objects.all()
    }
    assert members == {"pilots": ["db-01", "web-01"], "debian-web": ["web-01"], "berlin": ["db-01"]}
    page = c.get("/groups/").content.decode()
    assert "release 12, hostname web-*" in page and "ou=Berlin,dc=corp,dc=test" in page
    assert re.search(r'id="group-pilots">.*?<td class="count">2</td>', page, re.S)

    r = c.post("/groups/pilots/delete/", {"csrfmiddlewaretoken": token})
    assert r.status_code == 302 and not MachineGroup.objects.filter(name="pilots").exists()
    assert web1.machine_groups.count() == 0
    actions = list(
        AuditEvent.objects.filter(action__startswith="group.").order_by("id").values_list("action", "target")
    )
    assert actions == [
        ("group.create", "group:pilots"),
        ("group.create", "group:debian-web"),
        ("group.create", "group:berlin"),
        ("group.delete", "group:pilots"),
    ]


@pytest.mark.parametrize(
    "body, words",
    [
        ({"name": "g", "kind": "rule"}, "a rule group needs a release or a hostname pattern"),
        ({"name": "g", "kind": "manual", "machines": "ghost-01"}, "no machine named or numbered &#x27;ghost-01&#x27;"),
        ({"name": "g", "kind": "rule", "release": "12", "machines": "web-01"}, "only manual groups list machines"),
        ({"name": "g", "kind": "ou"}, "an OU group needs the OU"),
        ({"name": "existing", "kind": "manual"}, "a group named &#x27;existing&#x27; already exists"),
        ({"name": "no spaces", "kind": "manual"}, "Enter a valid"),
    ],
)
def test_a_bad_group_is_shown_on_the_form_and_nothing_is_created(rings, operator_user, body, words):
    machine_make("web-01")
    group_create(name="existing")
    r = logged_in(operator_user).post("/groups/create/", body)
    assert r.status_code == 400 and words in r.content.decode(), r.content.decode()
    assert list(MachineGroup.objects.values_list("name", flat=True)) == ["existing"]
    assert AuditEvent.objects.filter(action="group.create").count() == 1
