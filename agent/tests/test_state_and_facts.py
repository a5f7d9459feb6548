"""State files (modes, atomicity, exactly-once bookkeeping), facts from a root, configuration."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from uus_agent import config, facts, jobs
from uus_agent.apt import Apt
from uus_agent.state import State, atomic_write_json


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_credentials_are_0600_in_a_0700_dir(state_dir: Path) -> None:
    old = os.umask(0o022)
    try:
        st = State(str(state_dir))
        st.save_credentials({"client_id": "c", "secret": "s3cret"})
        st.update_credentials(exchange_token="t2")
    finally:
        os.umask(old)
    assert mode(state_dir) == 0o700
    assert mode(state_dir / "credentials.json") == 0o600
    assert st.load_credentials() == {"client_id": "c", "secret": "s3cret", "exchange_token": "t2"}
    assert [n for n in os.listdir(state_dir) if n.startswith(".tmp")] == []


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    atomic_write_json(str(path), {"v": 1})
    with pytest.raises(TypeError):
        atomic_write_json(str(path), {"v": object()})  # not serialisable: nothing written
    assert path.read_text().strip().replace(" ", "").replace("\n", "") == '{"v":1}'
    assert sorted(os.listdir(tmp_path)) == ["x.json"]


def test_outbox_never_rewrites_a_result(state_dir: Path) -> None:
    st = State(str(state_dir))
    assert st.outbox_put({"job_id": "j1", "status": "succeeded"})
    assert not st.outbox_put({"job_id": "j1", "status": "failed"})
    assert st.outbox() == [{"job_id": "j1", "status": "succeeded"}]
    st.save_job_record({"id": "j1", "state": "finished"})
    assert st.outbox_ack(["j1", "unknown", "../evil"]) == 1
    assert st.outbox() == [] and st.job_record("j1")["state"] == "acked"


def test_restart_reports_interrupted_job_once_and_keeps_completed(
    root: Path, state_dir: Path
) -> None:
    """Two crash points: before the result was written (-> interrupted) and after (-> kept)."""
    st = State(str(state_dir))
    before = jobs._pack(jobs._snapshot(str(root)))  # what the job saw: the root plus old hello
    before.append(["hello", "amd64", "2.10-2"])
    st.save_job_record(
        {
            "id": "crashed",
            "type": "apt_install",
            "state": "started",
            "started_at": "2026-11-25T09:00:00Z",
            "before": before,
        }
    )
    st.save_job_record({"id": "completed", "type": "apt_update", "state": "started"})
    st.outbox_put({"job_id": "completed", "status": "succeeded"})
    runner = jobs.JobRunner(st, Apt(str(root), str(state_dir)), str(root))
    assert runner.recover() == 2
    results = {r["job_id"]: r for r in st.outbox()}
    assert results["completed"] == {"job_id": "completed", "status": "succeeded"}
    crashed = results["crashed"]
    assert (crashed["status"], crashed["error"]) == ("failed", "interrupted")
    assert crashed["started_at"] == "2026-11-25T09:00:00Z"
    assert crashed["packages"] == [
        {"name": "hello", "architecture": "amd64", "before": "2.10-2", "after": None}
    ]
    # a second restart changes nothing, and the job is never run again when redelivered
    assert runner.recover() == 0
    assert (
        runner.process({"id": "crashed", "type": "apt_install", "params": {"packages": ["hello"]}})
        is None
    )
    assert {r["job_id"]: r for r in st.outbox()}["crashed"] == crashed


def test_facts_come_from_the_root(tmp_path: Path, root: Path) -> None:
    (root / "etc/hosts").write_text("127.0.1.1 test-01.lab.example.org test-01\n")
    (root / "var/run").mkdir(parents=True)
    (root / "var/run/reboot-required").write_text("*** System restart required ***\n")
    (root / "var/run/reboot-required.pkgs").write_text("linux-image-6.1.0-41-amd64\nlibc6\nlibc6\n")
    (root / "etc/apt/sources.list").write_text(
        "# comment\ndeb http://deb.debian.org/debian bookworm main\n\n"
        "deb-src http://deb.debian.org/debian bookworm main # trailing\n"
    )
    (root / "etc/apt/sources.list.d/extra.list").write_text(
        "deb [arch=amd64] http://x.example/ stable main\n"
    )
    (root / "etc/apt/sources.list.d/debian.sources").write_text(
        "# deb822\nTypes: deb\nURIs: http://deb.debian.org/debian\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\n# inner comment\nURIs: http://security.debian.org/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    st = State(str(tmp_path / "state"))
    f = facts.gather(str(root), st)
    assert f["hostname"] == "test-01" and f["fqdn"] == "test-01.lab.example.org"
    assert f["os"] == {
        "id": "debian",
        "version_id": "12",
        "version_codename": "bookworm",
        "pretty_name": "Debian GNU/Linux 12 (bookworm)",
    }
    assert f["kernel"] == "6.1.0-40-amd64"
    assert f["reboot_required"] is True
    assert f["reboot_required_packages"] == ["linux-image-6.1.0-41-amd64", "libc6"]
    assert f["apt_sources"] == [
        "deb http://deb.debian.org/debian bookworm main",
        "deb-src http://deb.debian.org/debian bookworm main",
        "deb [arch=amd64] http://x.example/ stable main",
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main",
        "Types: deb\nURIs: http://security.debian.org/debian-security\nSuites: bookworm-security\n"
        "Components: main",
    ]
    # no /etc/machine-id in this root: a generated id, stable across runs
    assert (
        len(f["machine_id"]) == 32 and facts.gather(str(root), st)["machine_id"] == f["machine_id"]
    )
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    assert facts.machine_id(str(root), st) == "0123456789abcdef0123456789abcdef"
    (root / "var/lib/dpkg/arch").write_text("arm64\ni386\n")
    assert facts.architecture(str(root)) == "arm64"


def test_config_precedence_cli_over_file_over_defaults(tmp_path: Path) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text("[agent]\nstate_dir = /srv/state\nroot = /srv/root\nhttp_timeout = 5\n")
    cfg = config.load({"state_dir": "/cli/state", "root": None}, str(conf))
    assert cfg.state_dir == "/cli/state"  # CLI wins
    assert cfg.root == "/srv/root" and cfg.http_timeout == 5.0  # file beats defaults
    assert cfg.lock_timeout == 300.0  # default
    conf.write_text("[agent]\nstate_dri = /typo\n")
    with pytest.raises(config.ConfigError, match="state_dri"):
        config.load({}, str(conf))
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.load({}, str(tmp_path / "missing.conf"))


def test_example_config_lists_every_option() -> None:
    example = Path(__file__).resolve().parents[1] / "uus_agent" / "packaging" / "agent.conf"
    raw = config.read_file(str(example), required=True)
    assert set(raw) == set(config.OPTIONS)
    config.load({}, str(example))  # and every value in it parses
