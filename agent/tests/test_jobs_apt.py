"""Jobs run with real apt-get and dpkg against a local repository on loopback."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from uus_agent import dpkg as agent_dpkg
from uus_agent.apt import Apt
from uus_agent.jobs import REBOOT_MARKER, JobRunner
from uus_agent.state import State

from conftest import build_repo, deb, dpkg, dpkg_query


def runner(root: Path, state_dir: Path, lock_timeout: float = 30) -> JobRunner:
    st = State(str(state_dir))
    return JobRunner(
        st, Apt(str(root), st.path, lock_timeout=lock_timeout, apt_timeout=120), str(root)
    )


def versions(root: Path) -> dict:
    return {p["name"]: (p["version"], p["status"]) for p in dpkg_query(root / "var/lib/dpkg")}


def test_apt_install_job_installs_from_local_repo(root: Path, state_dir: Path, http_dir) -> None:
    www, url = http_dir
    build_repo(www, "debian", "stable", [deb("hello_"), deb("sl_")])
    (root / "etc/apt/sources.list.d/local.list").write_text(
        "deb [trusted=yes] %s/debian stable main\n" % url
    )
    r = runner(root, state_dir)
    result = r.process(
        {
            "id": "job-install",
            "type": "apt_install",
            "params": {"packages": ["hello", "sl=5.02-1+b1"]},
            "deadline": None,
        }
    )
    assert result is not None
    assert result["status"] == "succeeded", result["output"]
    assert (result["error"], result["exit_code"]) == (None, 0)
    assert versions(root)["hello"] == ("2.10-3", "installed")
    assert versions(root)["sl"] == ("5.02-1+b1", "installed")
    assert result["packages"] == [
        {"name": "hello", "architecture": "amd64", "before": None, "after": "2.10-3"},
        {"name": "sl", "architecture": "amd64", "before": None, "after": "5.02-1+b1"},
    ]
    assert (
        "$ apt-get update" in result["output"] and "Setting up hello (2.10-3)" in result["output"]
    )
    assert r.state.outbox() == [result]
    # the host's apt configuration (hooks in /etc/apt/apt.conf.d) was not used: apt read ROOT's
    assert (root / "var/log/apt/history.log").exists()

    removal = r.process({"id": "job-remove", "type": "apt_remove", "params": {"packages": ["sl"]}})
    assert removal is not None and removal["status"] == "succeeded", removal["output"]
    assert removal["packages"] == [
        {"name": "sl", "architecture": "amd64", "before": "5.02-1+b1", "after": None}
    ]
    assert "sl" not in versions(root)


def test_apt_upgrade_job_applies_security_update(root: Path, state_dir: Path, http_dir) -> None:
    """The real Debian fix jq 1.6-2.1+deb12u2 -> deb12u3, upgrading only the named packages."""
    www, url = http_dir
    dpkg(root, "-i", deb("libjq1_1.6-2.1+deb12u2"), deb("jq_1.6-2.1+deb12u2"))
    build_repo(
        www,
        "debian",
        "bookworm-security",
        [deb("jq_1.6-2.1+deb12u3"), deb("libjq1_1.6-2.1+deb12u3"), deb("hello_")],
    )
    (root / "etc/apt/sources.list").write_text(
        "deb [trusted=yes] %s/debian bookworm-security main\n" % url
    )
    result = runner(root, state_dir).process(
        {"id": "job-upgrade", "type": "apt_upgrade", "params": {"packages": ["jq", "libjq1"]}}
    )
    assert result is not None and result["status"] == "succeeded", result["output"]
    assert [(p["name"], p["before"], p["after"]) for p in result["packages"]] == [
        ("jq", "1.6-2.1+deb12u2", "1.6-2.1+deb12u3"),
        ("libjq1", "1.6-2.1+deb12u2", "1.6-2.1+deb12u3"),
    ]
    assert "hello" not in versions(root)  # only-upgrade never installs something new


def test_rollback_install_downgrades_only_when_allowed(
    root: Path, state_dir: Path, http_dir
) -> None:
    """A rollback job names the older versions with allow_downgrades; a plain install of an older
    version is refused by apt-get -y and changes nothing."""
    www, url = http_dir
    dpkg(root, "-i", deb("libjq1_1.6-2.1+deb12u3"), deb("jq_1.6-2.1+deb12u3"))
    build_repo(
        www, "debian", "bookworm", [deb("jq_1.6-2.1+deb12u2"), deb("libjq1_1.6-2.1+deb12u2")]
    )
    (root / "etc/apt/sources.list").write_text("deb [trusted=yes] %s/debian bookworm main\n" % url)
    r = runner(root, state_dir)
    older = ["jq=1.6-2.1+deb12u2", "libjq1=1.6-2.1+deb12u2"]
    refused = r.process({"id": "job-plain", "type": "apt_install", "params": {"packages": older}})
    assert (
        refused is not None and refused["status"] == "failed" and refused["error"] == "apt_failed"
    )
    assert refused["packages"] == [] and versions(root)["jq"] == ("1.6-2.1+deb12u3", "installed")
    params = {"packages": older, "allow_downgrades": True}
    result = r.process({"id": "job-rollback", "type": "apt_install", "params": params})
    assert result is not None and result["status"] == "succeeded", result["output"]
    assert "--allow-downgrades" in result["output"]
    assert [(p["name"], p["before"], p["after"]) for p in result["packages"]] == [
        ("jq", "1.6-2.1+deb12u3", "1.6-2.1+deb12u2"),
        ("libjq1", "1.6-2.1+deb12u3", "1.6-2.1+deb12u2"),
    ]


def test_failed_install_reports_apt_failure(root: Path, state_dir: Path, http_dir) -> None:
    www, url = http_dir
    build_repo(www, "debian", "stable", [deb("hello_")])
    (root / "etc/apt/sources.list.d/local.list").write_text(
        "deb [trusted=yes] %s/debian stable main\n" % url
    )
    result = runner(root, state_dir).process(
        {"id": "job-missing", "type": "apt_install", "params": {"packages": ["no-such-package"]}}
    )
    assert result is not None
    assert (result["status"], result["error"], result["exit_code"]) == ("failed", "apt_failed", 100)
    assert "Unable to locate package no-such-package" in result["output"]
    assert result["packages"] == []


def test_dpkg_lock_held_fails_job_clearly(root: Path, state_dir: Path) -> None:
    """Another process holds ROOT's lock-frontend the way apt does (fcntl): wait, then fail."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
            "fcntl.lockf(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(60)\n",
            str(root / "var/lib/dpkg/lock-frontend"),
        ],
        stdout=subprocess.PIPE,
        universal_newlines=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        result = runner(root, state_dir, lock_timeout=1).process(
            {"id": "job-locked", "type": "apt_update"}
        )
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()
    assert result is not None
    assert (result["status"], result["error"]) == ("failed", "dpkg_lock_held")
    assert "dpkg lock held" in result["output"]


def test_expired_unknown_and_bad_jobs_are_not_run(root: Path, state_dir: Path) -> None:
    r = runner(root, state_dir)
    expired = r.process(
        {
            "id": "job-old",
            "type": "apt_install",
            "params": {"packages": ["hello"]},
            "deadline": "2000-01-01T00:00:00Z",
        }
    )
    assert expired is not None
    assert (expired["status"], expired["error"], expired["started_at"]) == (
        "expired",
        "expired",
        None,
    )
    unknown = r.process({"id": "job-what", "type": "format_disk", "params": {}})
    assert unknown is not None and (unknown["status"], unknown["error"]) == (
        "failed",
        "unknown_job_type",
    )
    bad = r.process({"id": "job-bad", "type": "apt_install", "params": {"packages": ["-oDir=/"]}})
    assert bad is not None and (bad["status"], bad["error"]) == ("failed", "bad_params")
    assert {x["job_id"] for x in r.state.outbox()} == {"job-old", "job-what", "job-bad"}


def test_reboot_under_root_only_writes_marker(root: Path, state_dir: Path) -> None:
    result = runner(root, state_dir).process({"id": "job-reboot", "type": "reboot", "params": {}})
    assert result is not None and result["status"] == "succeeded"
    assert (root / REBOOT_MARKER.lstrip("/")).exists()


@pytest.mark.parametrize("armored", [True, False])
def test_repo_config_key_is_dearmored_into_root(
    root: Path, state_dir: Path, signing_key, armored: bool
) -> None:
    _home, armored_key = signing_key
    key = armored_key
    if not armored:
        key = subprocess.run(
            ["gpg", "--dearmor"], input=armored_key, stdout=subprocess.PIPE, check=True
        ).stdout
    apt = Apt(str(root), str(state_dir))
    text = apt.write_repo_config(
        "deb [signed-by=/etc/apt/keyrings/uus.gpg] http://uus.example/repo/test bookworm main", key
    )
    keyring = root / "etc/apt/keyrings/uus.gpg"
    assert "[signed-by=%s]" % keyring in text
    assert keyring.read_bytes()[:1] != b"-" and b"BEGIN PGP" not in keyring.read_bytes()
    written = (root / "etc/apt/sources.list.d/uus.list").read_text()
    assert written.endswith(text)
    assert agent_dpkg.read_inventory(str(root))  # placeholders untouched


def test_real_root_leaves_locking_and_configuration_to_apt(tmp_path: Path) -> None:
    """On "/" the agent must not redirect apt or disable its locks (checked without running apt)."""
    apt = Apt("/", str(tmp_path), lock_timeout=120)
    argv = apt.argv(["install", "hello"], lock_wait=100)
    assert not any(
        a.startswith(("Dir", "Debug::NoLocking", "DPkg::Options::=--root")) for a in argv
    )
    assert "DPkg::Lock::Timeout=100" in argv and argv[-2:] == ["install", "hello"]
    env = apt.env()
    assert "APT_CONFIG" not in env and "DPKG_FRONTEND_LOCKED" not in env
    assert (env["DEBIAN_FRONTEND"], env["LC_ALL"]) == ("noninteractive", "C.UTF-8")
    assert {"Dpkg::Options::=--force-confold", "Dpkg::Options::=--force-confdef"} <= set(argv)
