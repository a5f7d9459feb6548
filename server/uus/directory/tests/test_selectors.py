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
    assert selectors.user_can_act_on(dieter, [placed["ber-web01"], placed["muc-app01"]])
    assert selectors.user_can_act_on(dieter, [placed["ber-web01"].pk])
    assert not selectors.user_can_act_on(dieter, [placed["ber-web01"], placed["par-web01"]])
    assert not selectors.user_can_act_on(dieter, Machine.objects.filter(hostname="lab-01"))
    assert selectors.user_can_act_on(dieter, Machine.objects.filter(hostname__startswith="ber-"))
    francois = authenticate(None, username="francois", password="Francois-pass-1")
    assert names(selectors.scope_filter(francois, Machine.objects.all())) == ["par-web01"]


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
        assert selectors.user_can_act_on(user, Machine.objects.all())


def test_inactive_or_anonymous_users_act_on_nothing(placed):
    from django.contrib.auth.models import AnonymousUser

    dieter = authenticate(None, username="dieter", password="Dieter-pass-1")
    dieter.is_active = False
    assert not selectors.scope_filter(dieter, Machine.objects.all()).exists()
    assert not selectors.user_can_act_on(dieter, [placed["ber-web01"]])
    assert not selectors.user_can_act_on(AnonymousUser(), [placed["ber-web01"]])
    assert not selectors.user_can_act_on(None, [placed["ber-web01"]])


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
