"""OU scopes: what a user limited to an OU may act on (the helpers approvals and deployments call)."""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate

from uus.accounts.services import user_create
from uus.directory import selectors, services
from uus.directory.exceptions import DirectorySourceNotFound
from uus.directory.models import DirectoryAccount
from uus.inventory.models import Machine

from .factories import C, machine_make, source_make
from .test_auth import GERMANY, PARIS, map_corp

pytestmark = [pytest.mark.django_db, pytest.mark.ldap]


@pytest.fixture
def placed(slapd_server):
    """corp.ldif synced over StartTLS, machines in Berlin, Munich, Paris and one in no directory."""
    for host in ("ber-web01", "muc-app01", "par-web01", "qa-runner01", "lab-01"):
        machine_make(host)
    source = source_make(slapd_server, start_tls=True, ca_certificate=slapd_server.ca_cert.read_text())
    map_corp(source)
    services.directory_sync(source=source)
    return {m.hostname: m for m in Machine.objects.all()}


def names(qs) -> list[str]:
    return sorted(qs.values_list("hostname", flat=True))


def test_scoped_operator_acts_only_on_machines_in_their_ou(placed):
    dieter = authenticate(None, username="dieter", password="Dieter-pass-1")
    assert selectors.user_scope(dieter) == [GERMANY]
    assert names(selectors.scope_filter(dieter, Machine.objects.all())) == ["ber-web01", "muc-app01"]
    assert selectors.user_may_act_on(dieter, [placed["ber-web01"], placed["muc-app01"]])
    assert selectors.user_may_act_on(dieter, [placed["ber-web01"].pk])
    assert not selectors.user_may_act_on(dieter, [placed["ber-web01"], placed["par-web01"]])
    assert not selectors.user_may_act_on(dieter, Machine.objects.filter(hostname="lab-01"))
    assert selectors.user_may_act_on(dieter, Machine.objects.filter(hostname__startswith="ber-"))
    francois = authenticate(None, username="francois", password="Francois-pass-1")
    assert names(selectors.scope_filter(francois, Machine.objects.all())) == ["par-web01"]


def test_user_machine_scope_is_the_machines_below_the_ou_or_none(placed):
    """The selector approvals and deployments call: a queryset for scoped users, None for the rest."""
    from django.contrib.auth.models import AnonymousUser

    dieter = authenticate(None, username="dieter", password="Dieter-pass-1")
    assert names(selectors.user_machine_scope(dieter)) == ["ber-web01", "muc-app01"]
    # the scope is the same set as a deployment to the OU reaches (ou=Germany and every OU below it)
    assert names(selectors.user_machine_scope(dieter)) == names(selectors.machines_in_ou(GERMANY))
    alice = authenticate(None, username="alice", password="Alice-pass-1")
    local = user_create(username="local-admin", password="a-local-password-1", role="admin")
    assert selectors.user_machine_scope(alice) is None and selectors.user_machine_scope(local) is None
    assert not selectors.user_machine_scope(AnonymousUser()).exists()
    dieter.is_active = False
    assert not selectors.user_machine_scope(dieter).exists()


def test_deployment_to_a_parent_ou_reaches_exactly_the_machines_below_it(placed):
    """The deployments app resolves ``ou:DN`` targets through machines_in_ou: ou=Germany reaches
    Berlin's and Munich's machines, ou=Computers every placed one, and a scoped operator's scope is
    exactly the target of their own OU."""
    from uus.deployments.selectors import target_machines

    assert names(target_machines(f"ou:{GERMANY}")) == ["ber-web01", "muc-app01"]
    assert names(target_machines(f"ou:{C}")) == ["ber-web01", "muc-app01", "par-web01", "qa-runner01"]
    assert names(target_machines(f"ou:OU=berlin, {GERMANY}")) == ["ber-web01"]
    dieter = authenticate(None, username="dieter", password="Dieter-pass-1")
    assert selectors.user_may_act_on(dieter, target_machines(f"ou:{GERMANY}"))
    assert not selectors.user_may_act_on(dieter, target_machines(f"ou:{PARIS}"))


def test_ou_target_choices_name_every_ou_once_in_tree_order(placed, slapd_server):
    from uus.deployments.selectors import target_machines

    source_b = source_make(slapd_server, name="corp-copy")  # a second directory with the same OUs
    services.directory_sync(source=source_b)
    choices = selectors.ou_target_choices()
    values = [value for value, _label in choices]
    assert len(values) == len(set(values)) == selectors.ou_list(source="corp").count()
    assert values.index(f"ou:{C}") < values.index(f"ou:{GERMANY}") < values.index(f"ou:ou=Berlin,{GERMANY}")
    label = dict(choices)[f"ou:{GERMANY}"]
    assert label.strip().startswith("Germany (") and f"- {GERMANY}" in label
    assert names(target_machines(values[values.index(f"ou:{GERMANY}")])) == ["ber-web01", "muc-app01"]


def test_scope_filter_on_rows_that_point_at_machines(placed):
    from uus.directory.models import MachinePlacement

    dieter = authenticate(None, username="dieter", password="Dieter-pass-1")
    rows = selectors.scope_filter(dieter, MachinePlacement.objects.all(), machine_field="machine")
    assert set(rows.values_list("machine__hostname", flat=True)) == {"ber-web01", "muc-app01"}


def test_unscoped_users_act_on_every_machine(placed):
    alice = authenticate(None, username="alice", password="Alice-pass-1")
    local = user_create(username="local-op", password="a-local-password-1", role="operator")
    for user in (alice, local):
        assert selectors.user_scope(user) is None
        assert selectors.scope_filter(user, Machine.objects.all()).count() == len(placed)
        assert selectors.user_may_act_on(user, Machine.objects.all())


def test_inactive_or_anonymous_users_act_on_nothing(placed):
    from django.contrib.auth.models import AnonymousUser

    dieter = authenticate(None, username="dieter", password="Dieter-pass-1")
    dieter.is_active = False
    assert not selectors.scope_filter(dieter, Machine.objects.all()).exists()
    assert not selectors.user_may_act_on(dieter, [placed["ber-web01"]])
    assert not selectors.user_may_act_on(AnonymousUser(), [placed["ber-web01"]])
    assert not selectors.user_may_act_on(None, [placed["ber-web01"]])


def test_scope_to_an_ou_that_disappeared_allows_nothing(placed):
    dieter = authenticate(None, username="dieter", password="Dieter-pass-1")
    DirectoryAccount.objects.filter(user=dieter).update(scope_ou_dns=["ou=Atlantis,dc=corp,dc=test"])
    dieter.refresh_from_db()
    assert not selectors.scope_filter(dieter, Machine.objects.all()).exists()


def test_machine_ous_and_unmatched(placed):
    ous = list(selectors.machine_ous(placed["ber-web01"]).values_list("dn", flat=True))
    assert ous == [f"ou=Berlin,{GERMANY}", GERMANY, C]
    assert names(selectors.machines_unmatched()) == ["lab-01"]
    assert PARIS in {n.dn for n in selectors.ou_tree(source="corp")}
    with pytest.raises(DirectorySourceNotFound):
        selectors.directory_source_get("nope")


def test_scoped_operator_is_stopped_by_deployments_and_approvals_outside_their_ou(placed):
    """The services enforce the scope: dieter (operator of ou=Germany) deploys to Germany, not to Paris,
    and may not decide for a ring that holds machines outside Germany; an unscoped admin may."""
    from uus.approvals import selectors as rings
    from uus.approvals import services as approvals
    from uus.approvals.models import Approval
    from uus.core.exceptions import PermissionDenied
    from uus.deployments import services as deployments
    from uus.deployments.models import Deployment

    dieter = authenticate(None, username="dieter", password="Dieter-pass-1")
    alice = authenticate(None, username="alice", password="Alice-pass-1")
    dep = deployments.deployment_create(target=f"ou:{GERMANY}", action="remove", packages=["sl"], user=dieter)
    assert sorted(dep.jobs.values_list("machine__hostname", flat=True)) == ["ber-web01", "muc-app01"]
    with pytest.raises(PermissionDenied, match="outside"):
        deployments.deployment_create(target=f"ou:{PARIS}", action="remove", packages=["sl"], user=dieter)
    with pytest.raises(PermissionDenied):
        deployments.deployment_create(target="machine:lab-01", action="remove", packages=["sl"], user=dieter)
    assert Deployment.objects.count() == 1  # the refused ones left nothing

    test_ring = rings.ring_get("test")
    for host in ("ber-web01", "muc-app01"):
        approvals.machine_set_ring(machine=placed[host], ring=test_ring, user=alice)
    approvals.approval_set(ring=test_ring, name="jq", version="1.6-2.1+deb12u3", state="approved", user=dieter)
    with pytest.raises(PermissionDenied):
        approvals.approval_set(
            ring=rings.ring_get("production"), name="jq", version="1.6-2.1+deb12u3", state="approved", user=dieter
        )
    approvals.approval_set(
        ring=rings.ring_get("production"), name="jq", version="1.6-2.1+deb12u3", state="declined", user=alice
    )
    assert dict(Approval.objects.values_list("ring__name", "state")) == {"test": "approved", "production": "declined"}
