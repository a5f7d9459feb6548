"""uus.testing.slapd.SlapdServer itself: lifecycle, data loading, quirks' workarounds."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from uus.directory.ldapclient import DirectoryConfig, read_directory
from uus.testing.slapd import CORP_LDIF, SlapdError, SlapdServer, find_slapd

pytestmark = pytest.mark.ldap

SERVER_ROOT = Path(__file__).resolve().parents[3]  # the directory holding the uus package


def _cfg(server):
    return DirectoryConfig(
        url=server.url, base_dn="dc=corp,dc=test", bind_dn=server.root_dn, bind_password=server.root_pw
    )


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); look at its state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_lifecycle_restart_reset_and_cleanup():
    server = SlapdServer(ldif=CORP_LDIF).start()
    pid, port, workdir = server.pid, server.port, server.workdir
    try:
        assert server.running and _alive(pid)
        assert len(read_directory(_cfg(server)).computers) == 15
        server.restart()  # same port, same data
        assert server.port == port and server.pid != pid
        assert len(read_directory(_cfg(server)).computers) == 15
        server.reset("dn: dc=corp,dc=test\nobjectClass: dcObject\nobjectClass: organization\no: Corp\ndc: corp\n")
        assert server.port == port
        assert read_directory(_cfg(server)).computers == []
    finally:
        last_pid = server.pid
        server.stop()
    assert not server.running and not _alive(last_pid) and not _alive(pid)
    assert not workdir.exists()


def test_modify_ldif_moves_a_machine_between_ous():
    with SlapdServer(ldif=CORP_LDIF) as server:
        server.modify_ldif(
            "dn: cn=us-gw01,ou=USA,ou=Computers,dc=corp,dc=test\n"
            "changetype: modrdn\nnewrdn: cn=us-gw01\ndeleteoldrdn: 1\n"
            "newsuperior: ou=Spain,ou=Computers,dc=corp,dc=test\n"
        )
        members = read_directory(_cfg(server)).ou_members()
        assert members["ou=Spain,ou=Computers,dc=corp,dc=test"] == ["us-gw01"]
        assert "us-gw01" not in members["ou=USA,ou=Computers,dc=corp,dc=test"]


def test_bad_ldif_is_a_clear_error():
    with SlapdServer() as server:
        with pytest.raises(SlapdError, match=r"ldapadd -f .* failed .*(No such object|Invalid syntax)"):
            server.load_ldif("dn: cn=orphan,ou=Nowhere,dc=corp,dc=test\nobjectClass: device\ncn: orphan\n")


def test_broken_configuration_is_an_error_with_slapd_output(tmp_path):
    template = tmp_path / "slapd.conf.in"
    template.write_text("include /nonexistent/core.schema\n")
    with pytest.raises(SlapdError, match=r"slapd did not start: .*nonexistent"):
        SlapdServer(config_template=template).start()


def test_private_copy_of_the_binary_works():
    """The AppArmor workaround (profiles attach by path) must give a working server."""
    with SlapdServer(copy_binary=True, ldif=CORP_LDIF) as server:
        assert server._binary == str(server.workdir / "slapd")
        assert len(read_directory(_cfg(server)).ous) == 15


def test_find_slapd_honours_the_environment(monkeypatch):
    monkeypatch.setenv("UUS_SLAPD", "/nonexistent/slapd")
    assert find_slapd() is None
    monkeypatch.delenv("UUS_SLAPD")
    assert find_slapd() is not None


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root and runuser")
def test_works_as_an_unprivileged_user():
    """CI runs as root; developers do not. The helper uses the standard library only."""
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from uus.testing.slapd import SlapdServer, CORP_LDIF\n"
        "with SlapdServer(tls=True, memberof=True, ldif=CORP_LDIF) as s:\n"
        "    print('ok', s.url)\n"
    )
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    r = subprocess.run(
        [shutil.which("runuser"), "-u", "nobody", "--", python, "-c", script, str(SERVER_ROOT)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
    )
    if r.returncode and "Permission denied" in r.stderr and "slapd" not in r.stderr:
        pytest.skip(f"nobody cannot read the checkout: {r.stderr.strip()[-200:]}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok ldap://127.0.0.1:")
