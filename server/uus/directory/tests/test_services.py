"""Directory services against real slapd servers: sources, sync, placement, failures, dry runs."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from django.db import connection

from uus.directory import selectors, services
from uus.directory.exceptions import (
    DirectorySourceExists,
    DirectorySourceInvalid,
    DirectorySyncFailed,
    OrganizationalUnitNotFound,
)
from uus.directory.models import (
    DirectoryComputer,
    DirectoryGroup,
    DirectorySource,
    MachinePlacement,
    OrganizationalUnit,
)
from uus.testing.slapd import NOT_LDAP_ANSWERS, NotLdapServer

from .factories import ADMIN_PW, BASE, C, acceptance_hostnames, expected_ous, machine_make, source_make

pytestmark = [pytest.mark.django_db, pytest.mark.ldap]

HOSTS = "ou=Hosts,dc=corp,dc=test"
LONDON = f"ou=London,ou=EMEA,{HOSTS}"


def hostnames(qs) -> list[str]:
    return sorted(qs.values_list("hostname", flat=True))


@pytest.fixture
def fleet(db):
    """Every machine of the acceptance fleet, plus two that no directory knows."""
    machines = {h: machine_make(h) for h in acceptance_hostnames()}
    machines["lab-01"] = machine_make("lab-01")
    machines["lab-02"] = machine_make("lab-02", "lab-02.lab.example")
    return machines


@pytest.fixture
def synced(acceptance_ldap, fleet):
    source = source_make(acceptance_ldap)
    result = services.directory_sync(source=source)
    source.refresh_from_db()
    return source, result


# ------------------------------------------------------------------------------------ sources
def test_source_password_is_in_a_0600_file_not_in_the_database(acceptance_ldap, settings):
    source = source_make(acceptance_ldap)
    path = Path(source.bind_password_file)
    assert path.parent == Path(settings.DATA_DIR) / "secrets"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_text() == ADMIN_PW
    with connection.cursor() as cur:
        cur.execute("SELECT * FROM directory_directorysource")
        assert ADMIN_PW not in repr(cur.fetchall())


def test_source_update_replaces_the_password_file(acceptance_ldap, django_capture_on_commit_callbacks):
    source = source_make(acceptance_ldap)
    old = Path(source.bind_password_file)
    with django_capture_on_commit_callbacks(execute=True):
        services.directory_source_update(source=source, bind_password="another-one")
    assert not old.exists()
    assert Path(source.bind_password_file).read_text() == "another-one"
    services.directory_source_update(source=source, page_size=50)  # None keeps the password
    assert Path(source.bind_password_file).read_text() == "another-one"
    with django_capture_on_commit_callbacks(execute=True):
        services.directory_source_delete(source=source)
    assert not Path(source.bind_password_file).exists()


@pytest.mark.parametrize(
    "kw,message",
    [
        ({"url": "http://x"}, "ldap://"),
        ({"url": "ldaps://x", "start_tls": True}, "StartTLS cannot be combined"),
        ({"url": "ldap://x:99999"}, "invalid directory URL"),
        ({"base_dn": "not a dn"}, "not a valid DN"),
        ({"bind_password": ""}, "bind password is needed"),
        ({"bind_dn": ""}, "without a bind DN"),
        ({"ou_filter": "objectClass=x"}, "not an LDAP filter"),
        ({"hostname_attributes": ["cn", "bad attr"]}, "not an attribute"),
        ({"ca_certificate": "hello"}, "PEM"),
        ({"name": "add"}, "reserved"),
        ({"name": "a b"}, "invalid directory name"),
    ],
)
def test_source_create_refuses_bad_settings(kw, message, db):
    args = {
        "name": "corp",
        "url": "ldap://127.0.0.1:1",
        "base_dn": BASE,
        "bind_dn": "cn=admin,dc=corp,dc=test",
        "bind_password": "pw-123",
        **kw,
    }
    with pytest.raises(DirectorySourceInvalid, match=message):
        services.directory_source_create(**args)
    assert not DirectorySource.objects.exists()


def test_source_names_are_unique(acceptance_ldap):
    source_make(acceptance_ldap)
    with pytest.raises(DirectorySourceExists):
        source_make(acceptance_ldap)


def test_source_test_connection(acceptance_ldap):
    source = source_make(acceptance_ldap)
    assert services.directory_source_test(source=source) == {
        "ok": True,
        "message": f"connected to {acceptance_ldap.url} (no TLS) as cn=admin,dc=corp,dc=test; base DN {BASE} found",
    }
    services.directory_source_update(source=source, bind_password="wrong-password")
    result = services.directory_source_test(source=source)
    assert not result["ok"] and "invalid credentials" in result["message"]


# ---------------------------------------------------------------------------------------- sync
def test_sync_places_each_machine_in_every_ou_above_it(synced):
    source, result = synced
    for ou, want in expected_ous().items():
        assert hostnames(selectors.machines_in_ou(ou)) == want, ou
    ous = set(OrganizationalUnit.objects.filter(source=source).values_list("dn", flat=True))
    assert result["ous"]["total"] == len(ous) and set(expected_ous()) < ous  # also ou=People, ou=Groups
    assert source.last_success and not source.last_error
    assert source.last_counts["machines_matched"] == len(acceptance_hostnames())


def test_parent_ou_lists_machines_of_child_ous_in_one_query(synced, django_assert_num_queries):
    london = set(hostnames(selectors.machines_in_ou(LONDON)))
    with django_assert_num_queries(2):  # the OU lookup, then one indexed query for the machines
        hosts = set(hostnames(selectors.machines_in_ou(HOSTS)))
    assert london and london < hosts
    assert hosts == set(acceptance_hostnames())


def test_ou_dns_match_in_any_spelling(synced):
    assert hostnames(selectors.machines_in_ou("OU=london, ou=emea ,OU=HOSTS,DC=Corp,DC=Test")) == expected_ous()[LONDON]
    with pytest.raises(OrganizationalUnitNotFound, match="no organizational unit"):
        selectors.machines_in_ou("ou=Atlantis,dc=corp,dc=test")
    with pytest.raises(DirectorySourceInvalid, match="not a valid DN"):
        selectors.machines_in_ou("Atlantis")


def test_machines_in_ou_narrows_a_given_queryset(synced, fleet):
    from uus.inventory.models import Machine

    some = Machine.objects.filter(hostname__in=[*expected_ous()[LONDON][:2], "lab-01"])
    assert hostnames(selectors.machines_in_ou(HOSTS, queryset=some)) == sorted(expected_ous()[LONDON][:2])


def test_unmatched_machines_are_listed(synced):
    source, result = synced
    assert hostnames(selectors.machines_unmatched()) == ["lab-01", "lab-02"]
    assert result["machines"]["unmatched_examples"] == ["lab-01", "lab-02"]
    assert result["computers_without_machine"] == selectors.computers_unmatched(source=source).count() == 0


def test_ou_tree_counts_machines_below_each_ou(synced):
    tree = {n.dn: n for n in selectors.ou_tree()}
    for ou, want in expected_ous().items():
        assert tree[ou].machine_count == len(want) and tree[ou].computer_count == len(want)
    hosts = tree[HOSTS]
    assert hosts.depth == 0 and tree[LONDON].depth == 2 and tree[LONDON].parent_id == tree[f"ou=EMEA,{HOSTS}"].id
    order = [n.dn for n in selectors.ou_tree(source="corp")]
    tokyo = f"ou=Tokyo,ou=APAC,{HOSTS}"  # depth first: APAC and its OUs, then EMEA and its OUs
    assert order.index(HOSTS) < order.index(tokyo) < order.index(f"ou=EMEA,{HOSTS}") < order.index(LONDON)


def test_ou_tree_extra_hook_gets_placements(synced):
    from django.db.models import Count

    def extra(placements):
        rows = placements.filter(machine__hostname__endswith="00").values("ou_id").annotate(n=Count("machine_id"))
        return {r["ou_id"]: {"ending_00": r["n"]} for r in rows}

    tree = {n.dn: n for n in selectors.ou_tree(extra=extra)}
    assert tree[HOSTS].extra["ending_00"] == sum(1 for h in acceptance_hostnames() if h.endswith("00"))


def test_resync_changes_nothing(synced):
    source, _ = synced
    again = services.directory_sync(source=source)
    for kind in ("ous", "computers", "groups", "placements"):
        assert (again[kind]["added"], again[kind]["changed"], again[kind]["removed"]) == (0, 0, 0), kind
    assert again["machines"]["placement_changed"] == 0


def test_dry_run_writes_nothing(acceptance_ldap, fleet):
    source = source_make(acceptance_ldap)
    result = services.directory_sync(source=source, dry_run=True)
    assert result["dry_run"] and result["ous"]["added"] == len(expected_ous()) + 2  # and People, Groups
    assert result["placements"]["added"] == sum(len(v) for v in expected_ous().values())
    assert LONDON in result["ous"]["examples"]["added"]
    assert not OrganizationalUnit.objects.exists() and not DirectoryComputer.objects.exists()
    assert not MachinePlacement.objects.exists() and not DirectoryGroup.objects.exists()
    source.refresh_from_db()
    assert source.last_sync_started is None and source.last_success is None


def test_sync_follows_the_directory(fresh_ldap, fleet):
    """A machine moved to another OU, a computer deleted, an OU added: the next sync follows."""
    source = source_make(fresh_ldap)
    services.directory_sync(source=source)
    mover = expected_ous()[LONDON][0]
    gone = expected_ous()[LONDON][1]
    fresh_ldap.modify_ldif(
        f"dn: cn={mover},{LONDON}\nchangetype: modrdn\nnewrdn: cn={mover}\ndeleteoldrdn: 1\n"
        f"newsuperior: ou=Tokyo,ou=APAC,{HOSTS}\n\n"
        f"dn: cn={gone},{LONDON}\nchangetype: delete\n\n"
        f"dn: ou=Leeds,ou=EMEA,{HOSTS}\nchangetype: add\nobjectClass: organizationalUnit\nou: Leeds\n"
    )
    dry = services.directory_sync(source=source, dry_run=True)
    assert dry["machines"]["placement_changed_examples"] == sorted([mover, gone])
    assert hostnames(selectors.machines_in_ou(LONDON)) == expected_ous()[LONDON]  # untouched by the dry run
    result = services.directory_sync(source=source)
    # a computer's DN is its identity: the moved one is removed at its old DN and added at the new one
    assert result["ous"]["added"] == 1
    assert (result["computers"]["added"], result["computers"]["removed"]) == (1, 2)
    london = hostnames(selectors.machines_in_ou(LONDON))
    assert mover not in london and gone not in london
    assert mover in hostnames(selectors.machines_in_ou(f"ou=Tokyo,ou=APAC,{HOSTS}"))
    assert mover in hostnames(selectors.machines_in_ou(HOSTS)) and gone not in hostnames(
        selectors.machines_in_ou(HOSTS)
    )
    assert gone in hostnames(selectors.machines_unmatched())
    assert hostnames(selectors.machines_in_ou(f"ou=Leeds,ou=EMEA,{HOSTS}")) == []


def test_removed_intermediate_ou_keeps_the_ous_below(fresh_ldap, fleet):
    """An OU that stops matching the OU filter: OUs below it get their nearest OU above as parent."""
    source = source_make(fresh_ldap)
    services.directory_sync(source=source)
    services.directory_source_update(source=source, ou_filter="(&(objectClass=organizationalUnit)(!(ou=EMEA)))")
    services.directory_sync(source=source)
    london = OrganizationalUnit.objects.get(source=source, dn=LONDON)
    assert london.parent.dn == HOSTS and london.depth == 1
    assert hostnames(selectors.machines_in_ou(LONDON)) == expected_ous()[LONDON]
    with pytest.raises(OrganizationalUnitNotFound):
        selectors.machines_in_ou(f"ou=EMEA,{HOSTS}")


def test_matching_by_fqdn_and_short_name(slapd_server, db):
    """corp.ldif: cn in upper case, FQDNs in associatedDomain or cn, a printer with no host name."""
    machine_make("ber-web01", "ber-web01.berlin.corp.test")  # FQDN match
    machine_make("BER-DB01")  # short name, other case
    machine_make("mail", "mail.paris.corp.test")  # FQDN as the computer's cn
    machine_make("muc-app02.munich.corp.test")  # FQDN as hostname against a short cn
    machine_make("eng-build01", "eng-build01.elsewhere.example")  # another domain than the directory says
    source = source_make(slapd_server, url=slapd_server.url)
    result = services.directory_sync(source=source)
    assert hostnames(selectors.machines_in_ou(f"ou=Berlin,ou=Germany,{C}")) == ["BER-DB01", "ber-web01"]
    assert hostnames(selectors.machines_in_ou(f"ou=Paris,ou=France,{C}")) == ["mail"]
    assert hostnames(selectors.machines_in_ou(f"ou=Germany,{C}")) == [
        "BER-DB01",
        "ber-web01",
        "muc-app02.munich.corp.test",
    ]
    assert hostnames(selectors.machines_unmatched()) == ["eng-build01"]
    assert any("Printer 2nd floor" in w for w in result["warning_examples"])  # no usable host name
    source.refresh_from_db()
    assert any("Printer 2nd floor" in w for w in source.last_warnings)


def test_ambiguous_short_names_are_not_placed(slapd_server, db):
    machine_make("de-vpn01", "de-vpn01.a.example")
    machine_make("de-vpn01", "de-vpn01.b.example")
    result = services.directory_sync(source=source_make(slapd_server))
    assert hostnames(selectors.machines_in_ou(f"ou=Germany,{C}")) == []
    assert any("matches several machines" in w for w in result["warning_examples"])


# --------------------------------------------------------------------------- failures keep state
def _placements():
    return sorted(MachinePlacement.objects.values_list("ou__dn", "machine__hostname"))


def test_directory_down_keeps_the_last_good_state(fresh_ldap, fleet):
    source = source_make(fresh_ldap)
    services.directory_sync(source=source)
    before, success = _placements(), DirectorySource.objects.get().last_success
    fresh_ldap.stop()
    with pytest.raises(DirectorySyncFailed, match="connection refused.*last good state is kept"):
        services.directory_sync(source=source)
    source.refresh_from_db()
    assert "connection refused" in source.last_error and source.last_error_at
    assert source.last_success == success and _placements() == before


@pytest.mark.parametrize("answer", sorted(NOT_LDAP_ANSWERS))
def test_garbage_answers_keep_the_last_good_state(synced, answer):
    source, _ = synced
    before = _placements()
    with NotLdapServer(NOT_LDAP_ANSWERS[answer]) as garbage:
        services.directory_source_update(source=source, url=garbage.url, timeout_seconds=2)
        with pytest.raises(DirectorySyncFailed, match="last good state is kept") as failed:
            services.directory_sync(source=source)
    source.refresh_from_db()
    assert source.last_error and source.last_error in str(failed.value)
    assert garbage.url in source.last_error and ADMIN_PW not in source.last_error
    assert _placements() == before and OrganizationalUnit.objects.filter(source=source).exists()


def test_entries_with_missing_attributes_keep_their_last_good_state(fresh_ldap, fleet):
    """Computer objects still in the directory whose host name attribute is now missing keep where
    the last good sync put them (with a warning each); an entry deleted from the directory goes."""
    source = source_make(fresh_ldap, hostname_attributes=["cn"])
    services.directory_sync(source=source)
    before, computers = _placements(), DirectoryComputer.objects.count()
    gone = expected_ous()[LONDON][1]
    fresh_ldap.modify_ldif(f"dn: cn={gone},{LONDON}\nchangetype: delete\n")
    # the entries have no description: as if an AD's dNSHostName had been emptied on every computer
    services.directory_source_update(source=source, hostname_attributes=["description"])
    result = services.directory_sync(source=source)
    assert result["computers"]["removed"] == 1 and result["computers"]["examples"]["removed"]
    kept = [w for w in result["warning_examples"] if "kept as last read" in w]
    assert len(kept) == computers - 1 == DirectoryComputer.objects.count()
    assert sum("no host name attribute (description)" in w for w in result["warning_examples"]) == computers - 1
    assert _placements() == [p for p in before if p[1] != gone]
    source.refresh_from_db()
    assert source.last_error == "" and any("kept as last read" in w for w in source.last_warnings)


def test_wrong_password_keeps_the_last_good_state(synced):
    source, _ = synced
    before = _placements()
    services.directory_source_update(source=source, bind_password="not-the-password")
    with pytest.raises(DirectorySyncFailed, match="invalid credentials"):
        services.directory_sync(source=source)
    source.refresh_from_db()
    assert "bind as cn=admin,dc=corp,dc=test refused: invalid credentials" in source.last_error
    assert _placements() == before
    services.directory_source_update(source=source, bind_password=ADMIN_PW)
    services.directory_sync(source=source)
    source.refresh_from_db()
    assert source.last_error == "" and _placements() == before


def test_tls_failure_is_recorded(slapd_server, db):
    source = source_make(slapd_server, url=slapd_server.ldaps_url)  # no CA: the test CA is not trusted
    with pytest.raises(DirectorySyncFailed, match="TLS handshake failed"):
        services.directory_sync(source=source)
    source.refresh_from_db()
    assert "certificate verify failed" in source.last_error
    services.directory_source_update(source=source, ca_certificate=slapd_server.ca_cert.read_text())
    assert services.directory_sync(source=source)["ous"]["total"] > 0


def test_tls_failure_keeps_the_last_good_state(slapd_server, db):
    """Synced over ldaps with the right CA; then the certificate no longer checks out (the CA was
    replaced by another one): the sync is refused with the TLS reason and nothing is lost."""
    for host in ("ber-web01", "ber-web02", "de-vpn01"):
        machine_make(host)
    source = source_make(slapd_server, url=slapd_server.ldaps_url, ca_certificate=slapd_server.ca_cert.read_text())
    services.directory_sync(source=source)
    source.refresh_from_db()
    before, success = _placements(), source.last_success
    assert len(before) >= 6
    services.directory_source_update(source=source, ca_certificate=slapd_server.make_other_ca().read_text())
    with pytest.raises(DirectorySyncFailed, match="TLS handshake failed.*last good state is kept"):
        services.directory_sync(source=source)
    source.refresh_from_db()
    assert "certificate verify failed" in source.last_error and source.last_success == success
    assert _placements() == before
    with pytest.raises(DirectorySyncFailed, match="TLS"):  # StartTLS on the plain port: the same check
        services.directory_sync(
            source=services.directory_source_update(source=source, url=slapd_server.url, start_tls=True)
        )
    assert _placements() == before


def test_starttls_sync(slapd_server, db):
    source = source_make(slapd_server, start_tls=True, ca_certificate=slapd_server.ca_cert.read_text())
    assert services.directory_sync(source=source)["computers"]["total"] > 0


def test_missing_password_file_is_a_clear_error(synced):
    source, _ = synced
    os.unlink(source.bind_password_file)
    with pytest.raises(DirectorySyncFailed, match="bind password is missing"):
        services.directory_sync(source=source)
    source.refresh_from_db()
    assert "set the password again" in source.last_error


def test_an_empty_answer_does_not_wipe_the_tree(synced):
    source, _ = synced
    before = _placements()
    services.directory_source_update(
        source=source, ou_filter="(objectClass=nothingHere)", computer_filter="(objectClass=nothingHere)"
    )
    with pytest.raises(DirectorySyncFailed, match="returned no OUs and no computers"):
        services.directory_sync(source=source)
    assert _placements() == before
    services.directory_sync(source=source, allow_empty=True)
    assert _placements() == [] and not OrganizationalUnit.objects.exists()


def test_password_never_in_logs(fresh_ldap, fleet, caplog):
    caplog.set_level(logging.DEBUG)
    source = source_make(fresh_ldap)
    services.directory_source_test(source=source)
    services.directory_sync(source=source)
    services.directory_sync(source=source, dry_run=True)
    services.directory_source_update(source=source, bind_password="Wrong-Secret-42")
    with pytest.raises(DirectorySyncFailed) as failed:
        services.directory_sync(source=source)
    fresh_ldap.stop()
    with pytest.raises(DirectorySyncFailed):
        services.directory_sync(source=source)
    source.refresh_from_db()
    for text in (caplog.text, str(failed.value), source.last_error):
        assert ADMIN_PW not in text and "Wrong-Secret-42" not in text
    assert "connecting to" in caplog.text  # DEBUG records were captured
