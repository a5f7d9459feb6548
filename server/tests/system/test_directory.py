"""`uus directory add|sync` and `uus machines list --ou` as real processes against a real slapd loaded
with the acceptance check's own configuration and directory (as `check_directory` does)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from uus.testing.slapd import slapd_fixture

pytestmark = [pytest.mark.system, pytest.mark.ldap]

ACCEPTANCE = Path(__file__).resolve().parents[2] / "uus/directory/tests/data/acceptance"
PASSWORD = "admin-secret"

acceptance_ldap = slapd_fixture(
    name="acceptance_ldap",
    scope="function",
    ldif=ACCEPTANCE / "dit.ldif",
    config_template=ACCEPTANCE / "slapd.conf.in",
)


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"  # child processes get it too (uus.testing.fixtures.child_env)
    settings.DATA_DIR.mkdir()
    return settings.DATA_DIR


def test_add_sync_and_list_machines_by_ou(acceptance_ldap, data_dir, uus_cli, tmp_path):
    from uus.inventory.models import Machine
    from uus.jobs.models import Job

    expected = json.loads((ACCEPTANCE / "expected-ous.json").read_text())
    for host in sorted({h for hosts in expected.values() for h in hosts} | {"lab-01"}):
        Machine.objects.create(hostname=host, fqdn=host, client_id="m-" + secrets.token_hex(8), secret_hash="x")
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    outputs = []

    def run(*args, ok=True):
        r = uus_cli(*args)
        outputs.append(r.stdout + r.stderr)
        assert (r.returncode == 0) == ok, (args, r.returncode, r.stderr[-2000:])
        return r

    run(
        "directory",
        "add",
        "corp",
        acceptance_ldap.url,
        "--base-dn",
        "dc=corp,dc=test",
        "--bind-dn",
        "cn=admin,dc=corp,dc=test",
        "--password-file",
        str(pw),
    )
    assert "connection test ok" in outputs[-1]
    dry = json.loads(run("directory", "sync", "corp", "--dry-run", "--json").stdout)["corp"]
    assert dry["dry_run"] and dry["machines"]["unmatched_examples"] == ["lab-01"]
    sync = run("directory", "sync", "corp")
    assert "machines placed" in sync.stdout and "1 without a directory object" in sync.stdout
    for ou, want in expected.items():
        rows = json.loads(run("machines", "list", "--json", "--ou", ou).stdout)
        rows = rows.get("results", rows) if isinstance(rows, dict) else rows
        assert sorted(r["hostname"] for r in rows) == want, ou
    shown = json.loads(run("directory", "show", "corp", "--json").stdout)
    assert shown["has_bind_password"] and shown["last_counts"]["machines_unmatched"] == 1
    run("directory", "list")
    run("directory", "ous")
    bad = run("machines", "list", "--json", "--ou", "ou=Atlantis,dc=corp,dc=test", ok=False)
    assert "no organizational unit" in bad.stderr
    acceptance_ldap.stop()
    down = run("directory", "sync", "corp", ok=False)
    assert "connection refused" in down.stderr and "last good state is kept" in down.stderr
    run("directory", "test", "corp", ok=False)
    rows = json.loads(run("machines", "list", "--json", "--ou", "ou=Hosts,dc=corp,dc=test").stdout)
    assert len(rows.get("results", rows) if isinstance(rows, dict) else rows) == len(
        expected["ou=Hosts,dc=corp,dc=test"]
    )

    for text in outputs:
        assert PASSWORD not in text
    for job in Job.objects.all():
        assert PASSWORD not in job.log and PASSWORD not in json.dumps(job.result) and PASSWORD not in job.error


corp_ldap = slapd_fixture(name="corp_ldap", scope="module", tls=True, memberof=True)  # CA and cert made by openssl


@pytest.mark.parametrize("tls", ["ldaps", "starttls"])
def test_tls_with_the_ca_file_option(corp_ldap, data_dir, uus_cli, tmp_path, tls):
    """The test CA is not in the system's trust store: without --ca-file TLS fails with a clear error
    and nothing is stored; with it, the same directory syncs."""
    from uus.directory.models import OrganizationalUnit

    pw = tmp_path / "pw"
    pw.write_text("Reader-pass-1")
    url = corp_ldap.ldaps_url if tls == "ldaps" else corp_ldap.url
    add = ["directory", "add", "corp", url, "--base-dn", "dc=corp,dc=test", "--password-file", str(pw)]
    add += ["--bind-dn", "cn=uus-reader,ou=Service Accounts,dc=corp,dc=test"]
    if tls == "starttls":
        add.append("--start-tls")
    first = uus_cli(*add)
    assert first.returncode == 0 and "connection test FAILED: TLS handshake failed" in first.stderr
    assert "certificate verify failed" in first.stderr
    failed = uus_cli("directory", "sync", "corp")
    assert failed.returncode != 0 and "TLS handshake failed" in failed.stderr
    assert not OrganizationalUnit.objects.exists()
    again = uus_cli(*add, "--replace", "--ca-file", str(corp_ldap.ca_cert))
    assert again.returncode == 0 and "connection test ok" in again.stderr, again.stderr
    synced = uus_cli("directory", "sync", "corp", "--json")
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["corp"]["ous"]["total"] == OrganizationalUnit.objects.count() > 0
    for r in (first, failed, again, synced):
        assert "Reader-pass-1" not in r.stdout + r.stderr
