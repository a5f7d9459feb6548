"""Logging in with directory accounts (DirectoryBackend), role mapping and OU scopes, on real slapd.

corp.ldif people: alice (uus-admins, nested in it-staff), bob (uus-operators and germany-operators),
carol (uus-auditors), dieter (germany-operators), francois (paris-operators, groupOfUniqueNames),
eve (it-staff only), nopass (no password). Passwords are Name-pass-1.
"""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth import authenticate
from django.test import Client

from uus.accounts.exceptions import LoginThrottled
from uus.accounts.models import LoginAttempt, User
from uus.accounts.services import login_authenticate, user_create
from uus.directory import services
from uus.directory.models import DirectoryAccount
from uus.testing.slapd import CORP_LDIF, SlapdServer

from .factories import C, source_make

pytestmark = [pytest.mark.django_db, pytest.mark.ldap]

G = "ou=Groups,dc=corp,dc=test"
GERMANY = f"ou=Germany,{C}"
PARIS = f"ou=Paris,ou=France,{C}"


def map_corp(source) -> None:
    services.role_mapping_set(source=source, group_dn=f"cn=uus-admins,{G}", role="admin")
    services.role_mapping_set(source=source, group_dn=f"cn=uus-operators,{G}", role="operator")
    services.role_mapping_set(source=source, group_dn=f"cn=uus-auditors,{G}", role="auditor")
    services.role_mapping_set(
        source=source, group_dn=f"CN=Germany-Operators, {G}", role="operator", scope_ou_dn=GERMANY
    )
    services.role_mapping_set(source=source, group_dn=f"cn=paris-operators,{G}", role="operator", scope_ou_dn=PARIS)
    services.role_mapping_set(source=source, group_dn=f"cn=it-staff,{G}", role="auditor")


@pytest.fixture
def corp(slapd_server):
    """The session slapd over ldaps, with its CA, bound as the read-only service account."""
    source = source_make(
        slapd_server,
        url=slapd_server.ldaps_url,
        ca_certificate=slapd_server.ca_cert.read_text(),
        bind_dn="cn=uus-reader,ou=Service Accounts,dc=corp,dc=test",
        bind_password="Reader-pass-1",
    )
    map_corp(source)
    return source


def test_directory_user_logs_in_with_the_role_of_their_group(corp):
    alice = authenticate(None, username="alice", password="Alice-pass-1")
    assert alice is not None and alice.role == "admin" and alice.source == "corp" and alice.is_staff
    assert alice.email == "alice@corp.test" and alice.first_name == "Alice Adler"
    assert not alice.has_usable_password()  # only the directory can let her in
    assert authenticate(None, username="carol", password="Carol-pass-1").role == "auditor"
    assert authenticate(None, username="eve", password="Eve-pass-1").role == "auditor"  # it-staff
    account = DirectoryAccount.objects.get(user=alice)
    assert account.dn == "uid=alice,ou=People,dc=corp,dc=test" and account.scope_ou_dns == []
    assert f"cn=it-staff,{G}" in account.groups  # nested: uus-admins is a member of it-staff


def test_highest_role_wins_and_scopes_follow_the_winning_mappings(corp):
    bob = authenticate(None, username="bob", password="Bob-pass-1")  # operator twice: once unscoped
    assert bob.role == "operator" and bob.directory_account.scope_ou_dns == []
    dieter = authenticate(None, username="Dieter", password="Dieter-pass-1")
    assert dieter.username == "dieter" and dieter.role == "operator"
    assert dieter.directory_account.scope_ou_dns == [GERMANY]
    francois = authenticate(None, username="francois", password="Francois-pass-1")  # uniqueMember
    assert francois.role == "operator" and francois.directory_account.scope_ou_dns == [PARIS]


def test_user_outside_mapped_groups_cannot_log_in(corp):
    services.role_mapping_delete(mapping=corp.role_mappings.get(group_dn=f"cn=it-staff,{G}"))
    assert authenticate(None, username="eve", password="Eve-pass-1") is None
    assert not User.objects.filter(username="eve").exists()


@pytest.mark.parametrize(
    "login,password",
    [("alice", "wrong"), ("alice", ""), ("nopass", ""), ("nopass", "anything"), ("ghost", "Ghost-pass-1"), ("", "x")],
)
def test_wrong_or_empty_credentials_are_refused(corp, login, password):
    assert authenticate(None, username=login, password=password) is None
    assert not User.objects.filter(source="corp").exists()


def test_role_is_reevaluated_on_every_login(corp):
    assert authenticate(None, username="carol", password="Carol-pass-1").role == "auditor"
    services.role_mapping_set(source=corp, group_dn=f"cn=uus-auditors,{G}", role="operator")
    carol = authenticate(None, username="carol", password="Carol-pass-1")
    assert carol.role == "operator" and User.objects.filter(username="carol").count() == 1


def test_local_accounts_keep_working_and_are_not_taken_over(corp):
    local = user_create(username="alice", password="a-local-password-1", role="auditor")
    assert authenticate(None, username="alice", password="Alice-pass-1") is None  # the directory may not
    assert authenticate(None, username="alice", password="a-local-password-1") == local
    local.refresh_from_db()
    assert local.source == "local" and local.role == "auditor"


def test_local_login_works_while_the_directory_is_down(db):
    with SlapdServer(ldif=CORP_LDIF) as server:
        source = source_make(server, is_plaintext_login_allowed=True)
        map_corp(source)
    local = user_create(username="localadmin", password="a-local-password-1", role="admin")
    assert authenticate(None, username="localadmin", password="a-local-password-1") == local
    assert authenticate(None, username="alice", password="Alice-pass-1") is None
    client = Client()  # and through the login page, with the directory still down
    assert client.post("/login/", {"username": "alice", "password": "Alice-pass-1"}).status_code == 401
    assert client.post("/login/", {"username": "localadmin", "password": "a-local-password-1"}).status_code == 302
    assert client.get("/directory/add/").status_code == 200


def test_logins_over_plain_ldap_are_refused_unless_allowed(slapd_server, db):
    source = source_make(slapd_server, name="plain")
    map_corp(source)
    assert authenticate(None, username="alice", password="Alice-pass-1") is None
    services.directory_source_update(source=source, is_plaintext_login_allowed=True)
    assert authenticate(None, username="alice", password="Alice-pass-1").role == "admin"


def test_starttls_login(slapd_server, db):
    source = source_make(slapd_server, start_tls=True, ca_certificate=slapd_server.ca_cert.read_text())
    map_corp(source)
    assert authenticate(None, username="carol", password="Carol-pass-1").role == "auditor"


def test_user_deactivated_in_uus_stays_out(corp):
    alice = authenticate(None, username="alice", password="Alice-pass-1")
    User.objects.filter(pk=alice.pk).update(is_active=False)
    assert authenticate(None, username="alice", password="Alice-pass-1") is None


def test_throttling_covers_directory_logins(corp, settings):
    settings.UUS = {**settings.UUS, "login_max_failures": 2}
    for _ in range(2):
        assert login_authenticate(request=None, username="alice", password="bad") is None
    assert LoginAttempt.objects.filter(username="alice").count() == 2
    with pytest.raises(LoginThrottled):
        login_authenticate(request=None, username="alice", password="Alice-pass-1")


def test_web_login_with_a_directory_account(corp):
    client = Client()
    response = client.post("/login/", {"username": "alice", "password": "Alice-pass-1"})
    assert response.status_code == 302
    assert client.get("/directory/").status_code == 200  # the session's user comes back via get_user
    assert Client().post("/login/", {"username": "alice", "password": "nope"}).status_code == 401


@pytest.mark.parametrize(
    ("login", "role", "can_add_directory"),
    [("alice", "admin", True), ("dieter", "operator", False), ("carol", "auditor", False)],
)
def test_web_login_form_gives_the_role_of_the_group(corp, login, role, can_add_directory):
    """Through the login page (Django's auth, session, get_user): the page an admin only may open."""
    client = Client()
    password = f"{login.capitalize()}-pass-1"
    assert client.post("/login/", {"username": login, "password": password}).status_code == 302
    session_user = User.objects.get(pk=client.session["_auth_user_id"])
    assert session_user.role == role and session_user.source == corp.name
    assert client.get("/directory/add/").status_code == (200 if can_add_directory else 403)


def test_web_login_form_refuses_people_outside_mapped_groups(corp):
    client = Client()
    services.role_mapping_delete(mapping=corp.role_mappings.get(group_dn=f"cn=it-staff,{G}"))
    response = client.post("/login/", {"username": "eve", "password": "Eve-pass-1"})  # only in it-staff
    assert response.status_code == 401 and "_auth_user_id" not in client.session
    assert not User.objects.filter(username="eve").exists()


def test_sync_suspends_people_who_left_their_groups(db, caplog):
    """Role changes and departures reach existing accounts at the next sync, not only at login."""
    caplog.set_level(logging.DEBUG)
    with SlapdServer(ldif=CORP_LDIF) as server:
        source = source_make(server, is_plaintext_login_allowed=True)
        map_corp(source)
        alice = authenticate(None, username="alice", password="Alice-pass-1")
        carol = authenticate(None, username="carol", password="Carol-pass-1")
        services.role_mapping_set(source=source, group_dn=f"cn=uus-auditors,{G}", role="operator")
        server.modify_ldif(
            f"dn: cn=uus-admins,{G}\nchangetype: modify\nreplace: member\nmember: uid=ghost,ou=People,dc=corp,dc=test\n"
        )
        dry = services.directory_sync(source=source, dry_run=True)
        assert dry["accounts"]["suspended"] == ["alice"] and alice.is_active  # a dry run only tells
        result = services.directory_sync(source=source)
        alice.refresh_from_db()
        carol.refresh_from_db()
        # it-staff (mapped to auditor) only nests uus-admins, which no longer has her: no group left
        assert result["accounts"]["suspended"] == ["alice"] and not alice.is_active
        assert carol.role == "operator" and carol.is_active
        assert authenticate(None, username="alice", password="Alice-pass-1") is None
        server.modify_ldif(
            f"dn: cn=uus-admins,{G}\nchangetype: modify\nreplace: member\nmember: uid=alice,ou=People,dc=corp,dc=test\n"
        )
        again = authenticate(None, username="alice", password="Alice-pass-1")
        assert again is not None and again.is_active and again.role == "admin"
    assert "Alice-pass-1" not in caplog.text and "Carol-pass-1" not in caplog.text
