"""Rings, approvals, promotion, groups and the ring's visible set, called directly (no HTTP)."""

import pytest

from uus.approvals import selectors, services
from uus.approvals.exceptions import ApprovalInvalid, GroupInvalid, RingNotFound
from uus.approvals.models import Approval
from uus.audit.models import AuditEvent
from uus.inventory.tests.factories import entries, entry, machine_make

from .factories import JQ_NEW, JQ_OLD, jq_archive, jq_notice, rings_make

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def rings(db):
    rings_make()


JQ_MACHINE = entries(entry("jq", JQ_OLD, source="jq"), entry("libjq1", JQ_OLD, source="jq"))


def visible(ring):
    return sorted((p.name, p.version) for p in selectors.ring_visible_packages(ring))


def test_ring_visible_packages_is_exactly_the_approved_set(admin_user):
    jq_archive()
    test, prod = selectors.ring_get("test"), selectors.ring_get("production")
    assert visible(test) == [] and visible(prod) == []  # nothing approved: nothing visible

    services.approval_set(ring=test, name="jq", version=JQ_NEW, state="approved", user=admin_user)
    services.approval_set(ring=test, name="libjq1", version=JQ_NEW, state="approved", user=admin_user)
    assert visible(test) == [("jq", JQ_NEW), ("libjq1", JQ_NEW)]
    assert visible(prod) == []
    assert selectors.approval_state(test, "jq", JQ_NEW) == "approved"
    assert selectors.approval_state(prod, "jq", JQ_NEW) == "pending"

    # declining takes it out again; held is not visible either
    services.approval_set(ring=test, name="jq", version=JQ_NEW, state="declined", comment="breaks x", user=admin_user)
    services.approval_set(ring=test, name="libjq1", version=JQ_NEW, state="held", user=admin_user)
    assert visible(test) == []
    events = list(AuditEvent.objects.filter(action__startswith="approval.").order_by("id"))
    assert [(e.action, e.data["package"], e.actor_name) for e in events] == [
        ("approval.approved", "jq", admin_user.username),
        ("approval.approved", "libjq1", admin_user.username),
        ("approval.declined", "jq", admin_user.username),
        ("approval.held", "libjq1", admin_user.username),
    ]
    assert events[2].reason == "breaks x" and events[2].data["previous"] == "approved"


def test_declined_never_visible_even_when_retained_for_rollback():
    from datetime import timedelta

    from django.utils import timezone

    jq_archive()
    test = selectors.ring_get("test")
    services.versions_retain(ring=test, versions=[("jq", JQ_OLD)], until=timezone.now() + timedelta(days=1))
    assert visible(test) == [("jq", JQ_OLD)]
    services.approval_set(ring=test, name="jq", version=JQ_OLD, state="declined")
    assert visible(test) == []


def test_bad_input_changes_nothing():
    test = selectors.ring_get("test")
    for name, version, state in (("jq", JQ_NEW, "maybe"), ("Bad Name", JQ_NEW, "approved"), ("jq", "1 .0", "approved")):
        with pytest.raises(ApprovalInvalid):
            services.approval_set(ring=test, name=name, version=version, state=state)
    with pytest.raises(ApprovalInvalid):
        services.approvals_set_bulk(ring=test, items=[("jq", JQ_NEW), ("jq", "not a version")], state="approved")
    with pytest.raises(RingNotFound):
        selectors.ring_get("nope")
    assert not Approval.objects.exists() and not AuditEvent.objects.exists()


def test_promotion_copies_approvals_but_not_over_a_decline():
    jq_archive()
    test, prod = selectors.ring_get("test"), selectors.ring_get("production")
    services.approvals_set_bulk(ring=test, items=[("jq", JQ_NEW), ("libjq1", JQ_NEW)], state="approved")
    services.approval_set(ring=prod, name="libjq1", version=JQ_NEW, state="declined")
    assert selectors.ring_next(test) == prod
    out = services.ring_promote(ring=test, to_ring=prod)
    assert [(a.name, a.version, a.state) for a in out] == [("jq", JQ_NEW, "approved")]
    assert visible(prod) == [("jq", JQ_NEW)]


def test_updates_pending_sorted_by_priority_with_machines_affected():
    jq_archive()
    jq_notice()
    prod = selectors.ring_get("production")
    for i in range(3):
        machine_make(f"p{i}", packages=JQ_MACHINE, release="12", os_id="debian")
    machine_make("p-new", packages=entries(entry("jq", JQ_NEW, source="jq")), release="12", os_id="debian")
    rows = selectors.updates_pending(ring=prod)
    assert [(u.name, u.version, u.machines, u.priority, u.state) for u in rows] == [
        ("jq", JQ_NEW, 3, "high", "pending"),
        ("libjq1", JQ_NEW, 3, "high", "pending"),
    ]
    assert rows[0].notices == ["DSA-TEST-1"]
    services.approval_set(ring=prod, name="jq", version=JQ_NEW, state="approved")
    assert [u.name for u in selectors.updates_pending(ring=prod, state="pending")] == ["libjq1"]


def test_ring_membership_and_groups():
    web1 = machine_make("web-01", release="12", os_id="debian")
    web2 = machine_make("web-02", release="22.04")
    db1 = machine_make("db-01", release="12", os_id="debian")
    test = selectors.ring_get("test")
    services.machine_set_ring(machine=web1, ring=test, user="cli:tester")
    assert selectors.ring_of(web1) == test
    assert selectors.ring_of(web2).name == "production"
    assert set(selectors.ring_machines(test)) == {web1}
    assert set(selectors.ring_machines(selectors.ring_get("production"))) == {web2, db1}

    manual = services.group_create(name="pilots", machines=[web2, db1])
    web = services.group_create(name="web", kind="rule", hostname_pattern="web-*")
    bookworm_web = services.group_create(name="bw", kind="rule", hostname_pattern="WEB-0?", release="12")
    assert set(selectors.group_machines(manual)) == {web2, db1}
    assert set(selectors.group_machines(web)) == {web1, web2}
    assert set(selectors.group_machines(bookworm_web)) == {web1}
    assert {g.name for g in selectors.machine_groups_of(web1)} == {"web", "bw"}
    with pytest.raises(GroupInvalid):
        services.group_create(name="empty-rule", kind="rule")
    with pytest.raises(GroupInvalid):
        services.group_members_set(group=web, add=[db1])


def test_a_pinned_version_keeps_the_ring_at_it():
    jq_archive()
    test = selectors.ring_get("test")
    services.approval_set(ring=test, name="jq", version=JQ_NEW, state="approved")
    services.approval_set(ring=test, name="jq", version=JQ_OLD, state="held", is_pinned=True, comment="app needs it")
    assert visible(test) == [("jq", JQ_OLD)]
    assert selectors.approved_versions(test) == {}
    services.approval_set(ring=test, name="jq", version=JQ_OLD, state="held", is_pinned=False)
    assert visible(test) == [("jq", JQ_NEW)]
    assert [v for _, v in selectors.approved_versions(test)["jq"]] == [JQ_NEW]
