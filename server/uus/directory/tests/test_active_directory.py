"""The default settings against an Active Directory-shaped domain (data/active-directory: AD's object
classes and attribute names with Microsoft's OIDs, on a real slapd over ldaps with a throwaway CA).

A source made with nothing but URL, CA, base DN and bind account, as `uus directory add` makes it,
must read AD's OUs (not its CN= containers), place machines by dNSHostName, fall back to cn where
dNSHostName is missing, find people by sAMAccountName with their memberOf and nested groups, and never
take a computer account (objectClass computer is a subclass of user in AD) for a person."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import authenticate

from uus.directory import ldapclient, selectors, services
from uus.directory.models import DirectorySource
from uus.directory.selectors import directory_config
from uus.testing.slapd import _DEFAULT_SCHEMAS, slapd_fixture

from .factories import machine_make

pytestmark = [pytest.mark.django_db, pytest.mark.ldap]

AD = Path(__file__).parent / "data" / "active-directory"
BASE = "DC=ad,DC=test"
CORP = f"OU=Corp,{BASE}"
GERMANY = f"OU=Germany,{CORP}"
BERLIN = f"OU=Berlin,{GERMANY}"
PARIS = f"OU=Paris,OU=France,{CORP}"
GROUPS = f"OU=Groups,{CORP}"

ad_ldap = slapd_fixture(
    name="ad_ldap",
    scope="module",
    suffix="dc=ad,dc=test",
    tls=True,
    schemas=(*_DEFAULT_SCHEMAS, str(AD / "ad-lite.schema")),
    ldif=AD / "ad.ldif",
)


@pytest.fixture
def ad(ad_ldap) -> DirectorySource:
    source = services.directory_source_create(
        name="ad",
        url=ad_ldap.ldaps_url,
        ca_certificate=ad_ldap.ca_cert.read_text(),
        base_dn=BASE,
        bind_dn=f"CN=svc-uus,CN=Users,{BASE}",
        bind_password="Svc-pass-1",
    )
    services.role_mapping_set(source=source, group_dn=f"CN=UUS Admins,{GROUPS}", role="admin")
    services.role_mapping_set(
        source=source, group_dn=f"CN=UUS Operators Berlin,{GROUPS}", role="operator", scope_ou_dn=BERLIN
    )
    return source


def test_the_defaults_are_the_ones_under_test(ad):
    assert "(objectClass=computer)" in ad.computer_filter and "(!(objectClass=computer))" in ad.user_filter
    assert ad.hostname_attributes[0] == "dNSHostName" and "sAMAccountName" in ad.login_attributes
    assert "(objectClass=group)" in ad.group_filter and "member" in ad.member_attributes


def test_reading_an_ad_domain_with_the_defaults(ad):
    ok, message = services.directory_source_test(source=ad).values()
    assert ok, message
    snap = ldapclient.read_directory(directory_config(ad))
    assert {o.name for o in snap.ous} == {"Corp", "Groups", "People", "Germany", "Berlin", "Munich", "France", "Paris"}
    hosts = {c.hostname: (c.fqdn, c.ou_dn) for c in snap.computers}
    assert hosts["web01"][0] == "web01.ad.test" and ldapclient.dn_key(hosts["web01"][1]) == ldapclient.dn_key(BERLIN)
    assert hosts["kiosk9"][0] is None  # no dNSHostName: the cn is the host name
    assert ldapclient.dn_key(hosts["laptop07"][1]) == ldapclient.dn_key(f"CN=Computers,{BASE}")
    # computer accounts are users in AD's schema; the default user filter leaves them out
    assert {u.login for u in snap.users} == {"anna", "bernd", "carla", "svc-uus"}
    bernd = next(u for u in snap.users if u.login == "bernd")
    assert {ldapclient.rdn_value(g) for g in bernd.groups} == {"Berlin Helpdesk", "UUS Operators Berlin"}
    assert not snap.warnings


def test_sync_places_machines_in_every_ou_above_them(ad):
    for host in ("web01", "web02", "db01", "app01", "kiosk9", "laptop07", "lonely"):
        machine_make(host, f"{host}.ad.test")
    result = services.directory_sync(source=ad)
    assert result["machines"]["matched"] == 6 and result["machines"]["unmatched_examples"] == ["lonely"]

    def hosts_in(dn):
        return sorted(selectors.machines_in_ou(dn).values_list("hostname", flat=True))

    assert hosts_in(GERMANY) == ["db01", "web01", "web02"]
    assert hosts_in("ou=berlin,ou=germany,ou=corp,dc=ad,dc=test") == ["web01", "web02"]  # any spelling
    assert hosts_in(CORP) == ["app01", "db01", "kiosk9", "web01", "web02"]
    # in the CN=Computers container (not an OU): matched, in no OU; "lonely" has no directory object
    assert sorted(selectors.machines_unmatched().values_list("hostname", flat=True)) == ["lonely"]
    laptop = selectors.machines_in_ou(CORP).filter(hostname="laptop07")
    assert not laptop.exists()
    with pytest.raises(Exception, match="no organizational unit"):
        selectors.machines_in_ou(f"CN=Computers,{BASE}")


def test_ad_people_log_in_with_the_role_of_their_groups(ad):
    ad.is_plaintext_login_allowed = False  # ldaps: encrypted, as AD logins must be
    for host in ("web01", "db01"):
        machine_make(host, f"{host}.ad.test")
    services.directory_sync(source=ad)
    anna = authenticate(None, username="anna", password="Anna-pass-1")
    assert anna is not None and anna.role == "admin" and anna.email == "anna@ad.test"
    bernd = authenticate(None, username="BERND", password="Bernd-pass-1")  # sAMAccountName is case-insensitive
    assert bernd is not None and bernd.role == "operator" and bernd.username == "bernd"
    assert bernd.directory_account.scope_ou_dns == [ldapclient.normalize_dn(BERLIN)]  # through the nested group
    web01, db01 = (selectors.machines_in_ou(CORP).get(hostname=h) for h in ("web01", "db01"))
    assert selectors.user_may_act_on(bernd, [web01]) and not selectors.user_may_act_on(bernd, [db01])
    assert authenticate(None, username="carla", password="Carla-pass-1") is None  # in no mapped group
    assert authenticate(None, username="anna", password="wrong") is None
    assert authenticate(None, username="WEB01$", password="Machine-pass-1") is None  # a computer, not a person
