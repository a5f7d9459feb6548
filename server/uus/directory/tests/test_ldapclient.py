"""uus.directory.ldapclient against real OpenLDAP slapd servers (no mocks).

Servers used: the session ``slapd_server`` (corp.ldif, TLS, memberOf overlay), one built from
the acceptance check's own slapd.conf.in and dit.ldif, and one with 1,200 generated computers
and realistic size limits for paging.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import traceback
from pathlib import Path

import ldap3
import pytest
from ldap3.utils.log import EXTENDED, OFF, set_library_log_detail_level

from uus.directory.ldapclient import (
    DirectoryBaseDNError,
    DirectoryBindError,
    DirectoryConfig,
    DirectoryConfigError,
    DirectoryError,
    DirectoryProtocolError,
    DirectorySearchError,
    DirectoryTLSError,
    DirectoryUnreachableError,
    authenticate,
    connect,
    dn_key,
    ou_ancestors,
    read_directory,
    test_connection,
)
from uus.testing.slapd import NOT_LDAP_ANSWERS, NotLdapServer, SlapdServer, slapd_fixture

pytestmark = pytest.mark.ldap

DATA = Path(__file__).parent / "data"
ACCEPTANCE = DATA / "acceptance"
BASE = "dc=corp,dc=test"
ADMIN = "cn=admin,dc=corp,dc=test"
ADMIN_PW = "admin-secret"
READER = "cn=uus-reader,ou=Service Accounts,dc=corp,dc=test"
READER_PW = "Reader-pass-1"
C = "ou=Computers,dc=corp,dc=test"

acceptance_ldap = slapd_fixture(
    name="acceptance_ldap",
    scope="module",
    ldif=ACCEPTANCE / "dit.ldif",
    config_template=ACCEPTANCE / "slapd.conf.in",
)


def cfg_for(server: SlapdServer, **kw) -> DirectoryConfig:
    kw.setdefault("url", server.url)
    kw.setdefault("base_dn", BASE)
    kw.setdefault("bind_dn", ADMIN)
    kw.setdefault("bind_password", ADMIN_PW)
    return DirectoryConfig(**kw)


@pytest.fixture(scope="module")
def corp(slapd_server):
    """The corp directory, read once as the admin."""
    return read_directory(cfg_for(slapd_server))


# ----------------------------------------------------------------- corp.ldif
EXPECTED_CORP = {
    f"ou=Berlin,ou=Germany,{C}": ["ber-db01", "ber-web01", "ber-web02"],
    f"ou=Munich,ou=Germany,{C}": ["muc-app01", "muc-app02"],
    f"ou=Germany,{C}": ["ber-db01", "ber-web01", "ber-web02", "de-vpn01", "muc-app01", "muc-app02"],
    f"ou=Paris,ou=France,{C}": ["mail", "par-web01"],
    f"ou=France,{C}": ["mail", "par-web01"],
    f"ou=QA,ou=Engineering,ou=USA,{C}": ["qa-runner01", "qa-runner02"],
    f"ou=Engineering,ou=USA,{C}": ["eng-build01", "qa-runner01", "qa-runner02"],
    f"ou=Sales,ou=USA,{C}": ["sales-crm01"],
    f"ou=USA,{C}": ["eng-build01", "qa-runner01", "qa-runner02", "sales-crm01", "us-gw01"],
    f"ou=Spain,{C}": [],
    f"ou=Decommissioned,{C}": ["ber-web02"],
    C: sorted(
        [
            "ber-db01",
            "ber-web01",
            "ber-web02",
            "de-vpn01",
            "muc-app01",
            "muc-app02",
            "mail",
            "par-web01",
            "eng-build01",
            "qa-runner01",
            "qa-runner02",
            "sales-crm01",
            "us-gw01",
        ]
    ),
    "ou=People,dc=corp,dc=test": [],
    "ou=Groups,dc=corp,dc=test": [],
    "ou=Service Accounts,dc=corp,dc=test": [],
}


def test_ou_tree(corp):
    ous = {o.dn: o for o in corp.ous}
    assert set(ous) == set(EXPECTED_CORP)
    assert ous[f"ou=Berlin,ou=Germany,{C}"].name == "Berlin"
    assert ous[f"ou=Berlin,ou=Germany,{C}"].parent_dn == f"ou=Germany,{C}"
    assert ous[f"ou=QA,ou=Engineering,ou=USA,{C}"].parent_dn == f"ou=Engineering,ou=USA,{C}"
    assert ous[C].parent_dn is None  # its parent is the suffix, not an OU
    assert ous["ou=Service Accounts,dc=corp,dc=test"].name == "Service Accounts"
    # parents come before children, so a sync can create them in order
    order = [o.dn for o in corp.ous]
    assert all(order.index(o.parent_dn) < order.index(o.dn) for o in corp.ous if o.parent_dn)


def test_computers(corp):
    by_dn = {c.dn: c for c in corp.computers}
    assert len(corp.computers) == 15  # 14 named machines (ber-web02 twice) + legacy-box
    web01 = by_dn[f"cn=BER-WEB01,ou=Berlin,ou=Germany,{C}"]
    assert (web01.hostname, web01.fqdn, web01.ou_dn) == (
        "ber-web01",
        "ber-web01.berlin.corp.test",
        f"ou=Berlin,ou=Germany,{C}",
    )
    db01 = by_dn[f"cn=ber-db01,ou=Berlin,ou=Germany,{C}"]
    assert (db01.hostname, db01.fqdn) == ("ber-db01", "ber-db01.berlin.corp.test")  # lower-cased
    assert by_dn[f"cn=MUC-APP02,ou=Munich,ou=Germany,{C}"].hostname == "muc-app02"
    mail = by_dn[f"cn=mail.paris.corp.test,ou=Paris,ou=France,{C}"]
    assert (mail.hostname, mail.fqdn) == ("mail", "mail.paris.corp.test")
    assert by_dn[f"cn=qa-runner01,ou=QA,ou=Engineering,ou=USA,{C}"].fqdn is None
    legacy = by_dn["cn=legacy-box,dc=corp,dc=test"]
    assert legacy.ou_dn == BASE and corp.computer_ous(legacy) == []
    assert corp.computer_ous(web01) == [f"ou=Berlin,ou=Germany,{C}", f"ou=Germany,{C}", C]


def test_ou_members_include_sub_ous(corp):
    assert corp.ou_members() == EXPECTED_CORP


def test_entries_with_missing_attributes_are_warnings(corp):
    warnings = {w.dn: w.reason for w in corp.warnings}
    printer = f"cn=Printer 2nd floor,ou=Berlin,ou=Germany,{C}"
    assert "no usable host name" in warnings[printer] and "Printer 2nd floor" in warnings[printer]
    assert "no login attribute" in warnings["cn=Temp Contractor,ou=People,dc=corp,dc=test"]
    assert warnings[f"cn=ber-web02,ou=Decommissioned,{C}"] == (
        f"host name ber-web02 is also used by cn=ber-web02,ou=Berlin,ou=Germany,{C}"
    )
    assert warnings[f"cn=ber-web02,ou=Berlin,ou=Germany,{C}"] == (
        f"host name ber-web02 is also used by cn=ber-web02,ou=Decommissioned,{C}"
    )
    assert len(corp.warnings) == 4, [str(w) for w in corp.warnings]
    assert all(c.dn != printer for c in corp.computers)
    assert all(u.dn != "cn=Temp Contractor,ou=People,dc=corp,dc=test" for u in corp.users)


def test_groups(corp):
    groups = {g.name: g for g in corp.groups}
    assert set(groups) == {
        "uus-admins",
        "uus-operators",
        "uus-auditors",
        "germany-operators",
        "paris-operators",
        "it-staff",
        "former-staff",
    }
    # written as "UID=Bob, OU=people, DC=corp, DC=test": same entry as uid=bob,ou=People,...
    keys = {dn_key(m) for m in groups["germany-operators"].members}
    assert keys == {dn_key("uid=dieter,ou=People,dc=corp,dc=test"), dn_key("uid=bob,ou=People,dc=corp,dc=test")}
    assert groups["paris-operators"].members == ("uid=francois,ou=People,dc=corp,dc=test",)  # uniqueMember
    assert groups["former-staff"].members == ("uid=ghost,ou=People,dc=corp,dc=test",)  # dangling is kept
    assert corp.group_members(groups["it-staff"]) == {
        dn_key("uid=alice,ou=People,dc=corp,dc=test"),
        dn_key("uid=eve,ou=People,dc=corp,dc=test"),
    }


def test_users(corp):
    users = {u.login: u for u in corp.users}
    assert set(users) == {"alice", "bob", "carol", "dieter", "francois", "eve", "nopass"}
    assert (users["alice"].display_name, users["alice"].mail) == ("Alice Adler", "alice@corp.test")
    assert (users["carol"].display_name, users["carol"].mail) == ("Carol Auditor", None)
    assert users["dieter"].display_name == "Dieter Müller"
    assert users["francois"].display_name == "François Dupont"
    assert set(users["alice"].group_names) == {"uus-admins", "it-staff"}  # nested
    assert set(users["bob"].group_names) == {"uus-operators", "germany-operators"}
    assert users["francois"].group_names == ("paris-operators",)
    assert users["nopass"].groups == ()


def test_reader_account_over_starttls_sees_the_same(slapd_server, corp):
    cfg = cfg_for(
        slapd_server, bind_dn=READER, bind_password=READER_PW, start_tls=True, ca_cert_path=str(slapd_server.ca_cert)
    )
    snap = read_directory(cfg)
    assert snap.ou_members() == corp.ou_members()
    assert [u.dn for u in snap.users] == [u.dn for u in corp.users]
    conn = connect(cfg)
    try:
        conn.search(
            "uid=bob,ou=People,dc=corp,dc=test",
            "(objectClass=*)",
            search_scope=ldap3.BASE,
            attributes=["userPassword", "uid"],
        )
        attrs = conn.response[0]["attributes"]
        assert attrs["uid"] == ["bob"] and not attrs.get("userPassword")  # ACL: no hashes
    finally:
        conn.unbind()


def test_hostname_attributes_are_configurable(slapd_server):
    snap = read_directory(cfg_for(slapd_server, hostname_attributes=["dNSHostName", "associatedDomain"]))
    assert {c.hostname for c in snap.computers} == {"ber-web01", "ber-db01", "eng-build01"}
    reasons = [w.reason for w in snap.warnings]
    assert reasons.count("no host name attribute (dNSHostName, associatedDomain)") == 13


def test_base_dn_can_be_an_ou(slapd_server):
    snap = read_directory(cfg_for(slapd_server, base_dn=f"OU=Germany, {C}"))
    assert snap.base_dn == f"ou=Germany,{C}"
    assert [o.dn for o in snap.ous] == [f"ou=Germany,{C}", f"ou=Berlin,ou=Germany,{C}", f"ou=Munich,ou=Germany,{C}"]
    assert snap.ou_members()[f"ou=Germany,{C}"] == EXPECTED_CORP[f"ou=Germany,{C}"]
    assert snap.users == [] and snap.groups == []


# -------------------------------------------------------------- acceptance
def test_acceptance_directory_reproduces_expected_ous(acceptance_ldap):
    expected = json.loads((ACCEPTANCE / "expected-ous.json").read_text())
    snap = read_directory(cfg_for(acceptance_ldap))
    assert snap.warnings == []
    assert len(snap.computers) == 46
    # Only machines that exist (are enrolled) are listed by the acceptance check.
    enrolled = {h for hosts in expected.values() for h in hosts}
    members = {dn_key(ou): [h for h in hosts if h in enrolled] for ou, hosts in snap.ou_members().items()}
    for ou, hosts in expected.items():
        assert members[dn_key(ou)] == hosts, ou
    # the same through ou_ancestors alone, as the machines list filter will use it
    by_ou: dict[str, set[str]] = {}
    for c in snap.computers:
        for ou in ou_ancestors(c.dn, BASE):
            by_ou.setdefault(ou, set()).add(c.hostname)
    assert {ou: sorted(by_ou[ou] & enrolled) for ou in expected} == expected


def test_acceptance_login(acceptance_ldap):
    cfg = cfg_for(acceptance_ldap)
    user = authenticate(cfg, "carol", "carol-pass")
    assert user.dn == "uid=carol,ou=People,dc=corp,dc=test" and user.display_name == "Carol Operator"
    assert user.groups == ("cn=uus-operators,ou=Groups,dc=corp,dc=test",)
    assert authenticate(cfg, "carol", "wrong") is None


# ------------------------------------------------------------------ paging
N_COMPUTERS = 1200


def _fleet_ldif() -> str:
    parts = [
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Corp\ndc: corp\n",
        f"dn: ou=Fleet,{BASE}\nobjectClass: organizationalUnit\nou: Fleet\n",
        f"dn: ou=Service Accounts,{BASE}\nobjectClass: organizationalUnit\nou: Service Accounts\n",
        f"dn: {READER}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\n"
        f"cn: uus-reader\nuserPassword: {READER_PW}\n",
        f"dn: cn=stock,{BASE}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\n"
        f"cn: stock\nuserPassword: stock-pass\n",
    ]
    for rack in range(4):
        parts.append(f"dn: ou=Rack{rack},ou=Fleet,{BASE}\nobjectClass: organizationalUnit\nou: Rack{rack}\n")
    members = []
    for i in range(N_COMPUTERS):
        dn = f"cn=node-{i:04d},ou=Rack{i % 4},ou=Fleet,{BASE}"
        members.append(f"member: {dn}")
        parts.append(
            f"dn: {dn}\nobjectClass: device\nobjectClass: ipHost\ncn: node-{i:04d}\n"
            f"ipHostNumber: 10.{i // 250}.{i % 250}.1\n"
        )
    parts.append(f"dn: cn=all-nodes,{BASE}\nobjectClass: groupOfNames\ncn: all-nodes\n" + "\n".join(members) + "\n")
    return "\n".join(parts)


@pytest.fixture(scope="module")
def fleet_ldap():
    """1,200 computers and OpenLDAP's stock size limit of 500 (explicit here). Its paged-search
    total defaults to the hard limit, so only the reader, given ``size.prtotal=unlimited`` as an
    admin must do, can page through everything; cn=stock keeps the stock limits."""
    with SlapdServer(
        sizelimit="size.soft=500 size.hard=500",
        extra_database_config=f'limits dn.exact="{READER}" size.prtotal=unlimited',
        ldif=_fleet_ldif(),
    ) as server:
        yield server


def test_plain_search_is_cut_at_the_size_limit(fleet_ldap):
    """Shows why paging is needed: without it the reader gets 500 of 1,200."""
    conn = ldap3.Connection(ldap3.Server(fleet_ldap.url), READER, READER_PW, auto_bind=True)
    try:
        conn.search(BASE, "(objectClass=device)", attributes=["cn"])
        assert conn.result["description"] == "sizeLimitExceeded" and len(conn.entries) == 500
    finally:
        conn.unbind()


@pytest.mark.parametrize("page_size", [500, 97])
def test_paged_read_gets_everything(fleet_ldap, page_size):
    snap = read_directory(cfg_for(fleet_ldap, bind_dn=READER, bind_password=READER_PW, page_size=page_size))
    assert len(snap.computers) == N_COMPUTERS
    assert len({c.hostname for c in snap.computers}) == N_COMPUTERS
    members = snap.ou_members()
    assert len(members[f"ou=Fleet,{BASE}"]) == N_COMPUTERS
    assert len(members[f"ou=Rack3,ou=Fleet,{BASE}"]) == N_COMPUTERS // 4
    (group,) = snap.groups
    assert len(group.members) == N_COMPUTERS
    assert snap.warnings == []


@pytest.mark.parametrize("page_size", [500, 300])
def test_stock_size_limit_is_a_clear_error_not_a_short_directory(fleet_ldap, page_size):
    """ldap3 ends a paged search quietly at the limit; a sync must not take 500 for all."""
    cfg = cfg_for(fleet_ldap, bind_dn=f"cn=stock,{BASE}", bind_password="stock-pass", page_size=page_size)
    with pytest.raises(DirectorySearchError, match=r"reading computers.*size limit was reached.*cn=stock"):
        read_directory(cfg)


# --------------------------------------------------------------- logging in
@pytest.mark.parametrize(
    "login,password,groups",
    [
        ("alice", "Alice-pass-1", {"uus-admins", "it-staff"}),  # SSHA hash, nested group
        ("ALICE", "Alice-pass-1", {"uus-admins", "it-staff"}),  # uid matches case-insensitively
        ("bob", "Bob-pass-1", {"uus-operators", "germany-operators"}),  # member spelled differently
        ("francois", "Francois-pass-1", {"paris-operators"}),  # groupOfUniqueNames
        ("eve", "Eve-pass-1", {"it-staff"}),
    ],
)
def test_authenticate_ok(slapd_server, login, password, groups):
    user = authenticate(cfg_for(slapd_server, bind_dn=READER, bind_password=READER_PW), login, password)
    assert user is not None
    assert user.login == login.lower() and user.dn == f"uid={login.lower()},ou=People,dc=corp,dc=test"
    assert set(user.group_names) == groups


@pytest.mark.parametrize(
    "login,password",
    [
        ("alice", "wrong"),
        ("alice", ""),  # the unauthenticated-bind trap: never even sent
        ("alice", None),
        ("", "Alice-pass-1"),
        ("mallory", "x"),  # unknown
        ("nopass", "anything"),  # entry without userPassword
        ("Temp Contractor", "x"),  # no uid
        ("*", "Alice-pass-1"),  # filter injection is escaped
        ("al*", "Alice-pass-1"),
        ("alice)(uid=*", "Alice-pass-1"),
    ],
)
def test_authenticate_refused(slapd_server, login, password):
    assert authenticate(cfg_for(slapd_server), login, password) is None


def test_groups_from_member_of_alone(slapd_server):
    """With a group filter that finds nothing, the memberOf overlay still gives the groups."""
    cfg = cfg_for(slapd_server, group_filter="(objectClass=posixGroup)")
    user = authenticate(cfg, "bob", "Bob-pass-1")
    assert set(user.group_names) == {"uus-operators", "germany-operators"}


def test_authenticate_raises_when_the_directory_is_down():
    """An outage must not look like a wrong password."""
    with pytest.raises(DirectoryUnreachableError):
        authenticate(
            DirectoryConfig(
                url=f"ldap://127.0.0.1:{_closed_port()}", base_dn=BASE, bind_dn=ADMIN, bind_password=ADMIN_PW
            ),
            "alice",
            "Alice-pass-1",
        )


def test_authenticate_over_ldaps(slapd_server):
    cfg = cfg_for(slapd_server, url=slapd_server.ldaps_url, ca_cert_path=str(slapd_server.ca_cert))
    assert authenticate(cfg, "carol", "Carol-pass-1").group_names == ("uus-auditors",)


# ------------------------------------------------------------------ errors
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_down():
    port = _closed_port()
    cfg = DirectoryConfig(url=f"ldap://127.0.0.1:{port}", base_dn=BASE, bind_dn=ADMIN, bind_password=ADMIN_PW)
    with pytest.raises(DirectoryUnreachableError) as e:
        read_directory(cfg)
    assert str(e.value) == f"cannot reach ldap://127.0.0.1:{port}: connection refused"
    assert test_connection(cfg) == (False, str(e.value))


def test_server_that_never_answers():
    with socket.socket() as listener:  # accepts TCP (kernel backlog) but never speaks LDAP
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        port = listener.getsockname()[1]
        cfg = DirectoryConfig(
            url=f"ldap://127.0.0.1:{port}", base_dn=BASE, bind_dn=ADMIN, bind_password=ADMIN_PW, timeout=1
        )
        with pytest.raises(DirectoryUnreachableError, match=f"cannot reach ldap://127.0.0.1:{port}: .*timed out"):
            read_directory(cfg)


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        ("http", DirectoryUnreachableError, "connection closed by the server"),
        ("ssh", DirectoryUnreachableError, "connection closed by the server"),
        ("truncated-ldap", DirectoryProtocolError, r"the answer is not LDAP \(.*\); is ldap://.* the directory's"),
    ],
)
def test_garbage_answers_are_clear_errors(answer, error, message):
    with NotLdapServer(NOT_LDAP_ANSWERS[answer]) as garbage:
        cfg = DirectoryConfig(url=garbage.url, base_dn=BASE, bind_dn=ADMIN, bind_password=ADMIN_PW, timeout=2)
        with pytest.raises(error, match=message) as e:
            read_directory(cfg)
        assert ADMIN_PW not in str(e.value)
        assert test_connection(cfg) == (False, str(e.value))
        with pytest.raises(DirectoryError):  # a login attempt against it is an outage, not "wrong password"
            authenticate(cfg, "alice", "Alice-pass-1")


def test_wrong_bind_password(slapd_server):
    cfg = cfg_for(slapd_server, bind_password="not-the-password")
    with pytest.raises(DirectoryBindError) as e:
        read_directory(cfg)
    assert str(e.value) == "bind as cn=admin,dc=corp,dc=test refused: invalid credentials"
    assert test_connection(cfg) == (False, str(e.value))


def test_unknown_bind_dn(slapd_server):
    with pytest.raises(DirectoryBindError, match="bind as cn=nobody,dc=corp,dc=test refused"):
        read_directory(cfg_for(slapd_server, bind_dn="cn=nobody,dc=corp,dc=test"))


def test_bind_dn_without_password_is_refused_before_connecting():
    cfg = DirectoryConfig(url="ldap://127.0.0.1:1", base_dn=BASE, bind_dn=ADMIN, bind_password="")
    with pytest.raises(DirectoryConfigError, match="no bind password"):
        connect(cfg)


@pytest.mark.parametrize(
    "base_dn,message",
    [
        ("ou=Nowhere,dc=corp,dc=test", "base DN ou=Nowhere,dc=corp,dc=test does not exist"),
        ("dc=other,dc=test", "base DN dc=other,dc=test does not exist"),
        ("this is garbage", "base DN 'this is garbage' is not a valid DN"),
        ("ou=x,,dc=test", "base DN 'ou=x,,dc=test' is not a valid DN"),
    ],
)
def test_bad_base_dn(slapd_server, base_dn, message):
    cfg = cfg_for(slapd_server, base_dn=base_dn)
    with pytest.raises(DirectoryBaseDNError) as e:
        read_directory(cfg)
    assert str(e.value).startswith(message)
    ok, text = test_connection(cfg)
    assert not ok and text.startswith(message)


@pytest.mark.parametrize("url", ["http://127.0.0.1", "ldap://", "ldap://127.0.0.1:notaport", "ldapi:///x"])
def test_bad_url(url):
    with pytest.raises(DirectoryConfigError, match="invalid directory URL"):
        connect(DirectoryConfig(url=url, base_dn=BASE))


def test_invalid_filter_is_a_config_error(slapd_server):
    with pytest.raises(DirectoryConfigError, match="invalid filter"):
        read_directory(cfg_for(slapd_server, computer_filter="(objectClass=device"))


def test_test_connection_ok(slapd_server):
    ok, message = test_connection(
        cfg_for(slapd_server, url=slapd_server.ldaps_url, ca_cert_path=str(slapd_server.ca_cert))
    )
    assert ok, message
    assert message == (f"connected to {slapd_server.ldaps_url} (ldaps) as {ADMIN}; base DN {BASE} found")


# --------------------------------------------------------------------- TLS
def test_ldaps_with_the_right_ca(slapd_server):
    cfg = cfg_for(slapd_server, url=slapd_server.ldaps_url, ca_cert_path=str(slapd_server.ca_cert))
    assert read_directory(cfg).ou_members() == EXPECTED_CORP


def test_ldaps_with_ca_given_as_pem_text(slapd_server):
    cfg = cfg_for(slapd_server, url=slapd_server.ldaps_url, ca_cert_data=slapd_server.ca_cert.read_text())
    assert test_connection(cfg)[0]


@pytest.mark.parametrize("start_tls", [False, True])
def test_wrong_ca_is_a_tls_failure(slapd_server, start_tls):
    url = slapd_server.url if start_tls else slapd_server.ldaps_url
    cfg = cfg_for(slapd_server, url=url, start_tls=start_tls, ca_cert_path=str(slapd_server.make_other_ca()))
    with pytest.raises(DirectoryTLSError) as e:
        read_directory(cfg)
    assert str(e.value).startswith("TLS handshake failed: certificate verify failed")
    assert url in str(e.value)


def test_system_trust_store_does_not_trust_a_private_ca(slapd_server):
    with pytest.raises(DirectoryTLSError, match="TLS handshake failed: certificate verify failed"):
        connect(cfg_for(slapd_server, url=slapd_server.ldaps_url))


def test_starttls_with_the_right_ca(slapd_server):
    cfg = cfg_for(slapd_server, start_tls=True, ca_cert_path=str(slapd_server.ca_cert))
    conn = connect(cfg)
    try:
        assert conn.tls_started
    finally:
        conn.unbind()
    ok, message = test_connection(cfg)
    assert ok and "(StartTLS)" in message


def test_starttls_refused_by_a_server_without_tls(acceptance_ldap):
    cfg = cfg_for(acceptance_ldap, start_tls=True, ca_cert_path=None)
    with pytest.raises(DirectoryTLSError, match=f"StartTLS with {acceptance_ldap.url} failed"):
        connect(cfg)


def test_ldaps_and_starttls_together_is_a_config_error(slapd_server):
    with pytest.raises(DirectoryConfigError, match="StartTLS cannot be combined"):
        connect(cfg_for(slapd_server, url=slapd_server.ldaps_url, start_tls=True))


@pytest.fixture(scope="module")
def self_signed_ldap():
    """slapd with a self-signed certificate (openssl req -x509), no CA behind it."""
    with SlapdServer(tls=True, self_signed=True, ldif=DATA / "corp.ldif") as server:
        yield server


@pytest.mark.parametrize("start_tls", [False, True])
def test_self_signed_certificate_is_refused_until_given_as_the_ca(self_signed_ldap, start_tls):
    url = self_signed_ldap.url if start_tls else self_signed_ldap.ldaps_url
    cfg = cfg_for(self_signed_ldap, url=url, start_tls=start_tls)
    with pytest.raises(DirectoryTLSError, match="TLS handshake failed: certificate verify failed: self.signed"):
        read_directory(cfg)
    for trusted in (
        {"ca_cert_path": str(self_signed_ldap.ca_cert)},
        {"ca_cert_data": self_signed_ldap.ca_cert.read_text()},
    ):
        snap = read_directory(cfg_for(self_signed_ldap, url=url, start_tls=start_tls, **trusted))
        assert f"ou=Berlin,ou=Germany,{C}" in {o.dn for o in snap.ous}


def test_certificate_for_another_name_is_refused():
    with SlapdServer(tls=True, tls_names=("DNS:ldap.corp.test",), ldif=DATA / "corp.ldif") as server:
        cfg = cfg_for(server, url=server.ldaps_url, ca_cert_path=str(server.ca_cert))
        with pytest.raises(DirectoryTLSError, match="certificate verify failed: IP address mismatch"):
            connect(cfg)


# ------------------------------------------------- the password stays secret
def test_bind_password_is_never_logged_or_shown(slapd_server, caplog):
    secret_admin = "Sup3r-Secret-Bind-PW"
    secret_user = "Alice-pass-1"
    texts = []
    set_library_log_detail_level(EXTENDED)  # ldap3's own most verbose logging, too
    try:
        with caplog.at_level(logging.DEBUG):
            # right password for the service account, so that everything gets logged...
            good = cfg_for(slapd_server, bind_dn=READER, bind_password=READER_PW)
            read_directory(good)
            assert authenticate(good, "alice", secret_user) is not None
            assert authenticate(good, "alice", secret_user + "x") is None
            conn = connect(good)
            texts.append(repr(conn))
            conn.unbind()
            # ...and a wrong one, in plain LDAP and over TLS, so that failures get logged too
            for cfg in (
                cfg_for(slapd_server, bind_password=secret_admin),
                cfg_for(
                    slapd_server,
                    bind_password=secret_admin,
                    url=slapd_server.ldaps_url,
                    ca_cert_path=str(slapd_server.ca_cert),
                ),
                cfg_for(
                    slapd_server,
                    bind_password=secret_admin,
                    url=slapd_server.ldaps_url,
                    ca_cert_path=str(slapd_server.make_other_ca("yet-another-ca")),
                ),
            ):
                texts.append(repr(cfg))
                with pytest.raises(Exception) as e:
                    read_directory(cfg)
                texts.append(str(e.value))
                texts.append("".join(traceback.format_exception(e.value)))
                texts.append(test_connection(cfg)[1])
    finally:
        set_library_log_detail_level(OFF)
    texts.append(caplog.text)
    everything = "\n".join(texts)
    assert len(caplog.records) > 20  # ldap3 really logged at its most detailed level
    assert "bind as cn=admin,dc=corp,dc=test refused" in everything
    for secret in (secret_admin, READER_PW, secret_user):
        assert secret not in everything


def test_concurrent_logins(slapd_server):
    """The login path is used from several web threads at once."""
    cfg = cfg_for(slapd_server, bind_dn=READER, bind_password=READER_PW)
    results = []

    def worker(login, password):
        results.append(authenticate(cfg, login, password) is not None)

    threads = [
        threading.Thread(target=worker, args=a)
        for a in [("alice", "Alice-pass-1"), ("bob", "Bob-pass-1"), ("carol", "bad")] * 4
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 4 + [True] * 8
