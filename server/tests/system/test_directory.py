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
