"""The agent's client logic end to end through its CLI, against the small fake of protocol v1.

The fake (fakeserver.py) stands in only for the server; apt, dpkg and gpg are real. One test kills
a real `uus-agent check-in` process in the middle of a job to prove exactly-once reporting.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest

from uus_agent import cli
from uus_agent import dpkg as agent_dpkg

from conftest import AGENT_DIR, build_repo, deb, dpkg, dpkg_query
from fakeserver import FakeServer


def global_args(root: Path, state_dir: Path) -> List[str]:
    return ["--state-dir", str(state_dir), "--root", str(root), "--config", os.devnull]


def agent(root: Path, state_dir: Path, *args: str) -> int:
    return cli.main([*global_args(root, state_dir), *args])


def agent_proc(root: Path, state_dir: Path, *args: str, **kw) -> subprocess.Popen:
    """The CLI as a separate process, as systemd or an admin runs it."""
    env = dict(os.environ, PYTHONPATH=str(AGENT_DIR))
    argv = [sys.executable, "-m", "uus_agent", *global_args(root, state_dir), *args]
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, **kw
    )


def processes_mentioning(text: str) -> List[int]:
    """Pids of processes this test started indirectly (their command line names its temp root)."""
    pids = []
    for pid in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if text.encode() in f.read():
                    pids.append(int(pid))
        except (OSError, ValueError):
            pass
    return pids


def running(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return False


def wait_for_exit(pids: List[int], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    for pid in pids:
        while running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if running(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def server():
    with FakeServer() as s:
        yield s


def registered(server: FakeServer, root: Path, state_dir: Path) -> None:
    assert agent(root, state_dir, "register", "--server", server.url, "--token", "good-token") == 0


def test_register_stores_credentials_privately(server, root, state_dir, capsys) -> None:
    registered(server, root, state_dir)
    m = server.only_machine()
    creds = json.loads((state_dir / "credentials.json").read_text())
    assert (creds["client_id"], creds["secret"], creds["machine"]) == (
        m["client_id"],
        m["secret"],
        m["machine"],
    )
    assert creds["server"] == server.url and creds["exchange_token"] == m["exchange_token"]
    assert oct(os.stat(state_dir / "credentials.json").st_mode & 0o777) == "0o600"
    assert oct(os.stat(state_dir).st_mode & 0o777) == "0o700"
    assert (
        m["facts"]["hostname"] == "test-01" and m["facts"]["os"]["version_codename"] == "bookworm"
    )
    out = capsys.readouterr()
    assert m["secret"] not in out.out + out.err and "good-token" not in out.out + out.err
    # registering twice needs --force
    assert agent(root, state_dir, "register", "--server", server.url, "--token", "good-token") == 1
    assert "already registered" in capsys.readouterr().err


def test_register_with_bad_token_fails(server, root, state_dir, capsys) -> None:
    assert agent(root, state_dir, "register", "--server", server.url, "--token", "not-a-token") == 1
    err = capsys.readouterr().err
    assert "invalid_token" in err and "not-a-token" not in err
    assert not (state_dir / "credentials.json").exists()


def test_check_in_sends_full_then_delta_inventory(server, root, state_dir) -> None:
    registered(server, root, state_dir)
    assert agent(root, state_dir, "check-in") == 0
    m = server.only_machine()
    assert [b["kind"] for b in server.posts("inventory/")] == ["full"]
    assert m["packages"] == dpkg_query(root / "var/lib/dpkg")
    first = server.posts("check-in/")[0]
    assert (
        first["previous_inventory_hash"] is None and first["exchange_token"] != m["exchange_token"]
    )
    assert (
        json.loads((state_dir / "credentials.json").read_text())["exchange_token"]
        == m["exchange_token"]
    )

    assert agent(root, state_dir, "check-in") == 0  # nothing changed: no upload
    assert len(server.posts("inventory/")) == 1

    dpkg(root, "-i", deb("hello_"))
    assert agent(root, state_dir, "check-in") == 0
    delta = server.posts("inventory/")[-1]
    assert delta["kind"] == "delta" and delta["removed"] == []
    assert [p["name"] for p in delta["added"]] == ["hello"]
    assert m["packages"] == dpkg_query(root / "var/lib/dpkg")
    stored = json.loads((state_dir / "inventory.json").read_text())
    assert (
        stored["inventory_hash"] == m["inventory_hash"] == agent_dpkg.inventory_hash(m["packages"])
    )


def test_inventory_the_server_already_holds_becomes_the_delta_base(server, root, state_dir) -> None:
    """The answer to an upload was lost (server killed after its commit): the next check-in
    hears "ok", and the agent takes its current inventory as the base, so the next change goes
    up as a delta."""
    registered(server, root, state_dir)
    assert agent(root, state_dir, "check-in") == 0
    (state_dir / "inventory.json").unlink()
    assert agent(root, state_dir, "check-in") == 0
    assert [b["kind"] for b in server.posts("inventory/")] == ["full"]
    stored = json.loads((state_dir / "inventory.json").read_text())
    assert stored["inventory_hash"] == server.only_machine()["inventory_hash"]
    dpkg(root, "-i", deb("hello_"))
    assert agent(root, state_dir, "check-in") == 0
    assert [b["kind"] for b in server.posts("inventory/")] == ["full", "delta"]
    assert server.only_machine()["packages"] == dpkg_query(root / "var/lib/dpkg")


def test_delta_refused_falls_back_to_full(server, root, state_dir) -> None:
    registered(server, root, state_dir)
    assert agent(root, state_dir, "check-in") == 0
    server.only_machine()["inventory_hash"] = "0" * 64  # the server lost track
    server.force_inventory = "delta"
    dpkg(root, "-i", deb("sl_"))
    assert agent(root, state_dir, "check-in") == 0
    assert [b["kind"] for b in server.posts("inventory/")] == ["full", "delta", "full"]
    assert server.only_machine()["packages"] == dpkg_query(root / "var/lib/dpkg")


def test_revoked_credentials_stop_with_clear_message(server, root, state_dir, capsys) -> None:
    registered(server, root, state_dir)
    server.only_machine()["revoked"] = True
    capsys.readouterr()
    assert agent(root, state_dir, "check-in") == cli.EXIT_UNAUTHORIZED
    err = capsys.readouterr().err
    assert "register again" in err and server.only_machine()["secret"] not in err


def test_unregistered_and_unreachable(root, state_dir, capsys) -> None:
    assert agent(root, state_dir, "check-in") == cli.EXIT_NOT_REGISTERED
    assert "not registered" in capsys.readouterr().err
    assert agent(root, state_dir, "register", "--server", "http://127.0.0.1:9", "--token", "t") == 1
    assert "cannot reach" in capsys.readouterr().err


def test_job_results_reported_once_and_acked(server, root, state_dir, capsys) -> None:
    registered(server, root, state_dir)
    server.jobs = [
        {"id": "job-reboot", "type": "reboot", "params": {}, "deadline": None},
        {"id": "job-late", "type": "apt_update", "params": {}, "deadline": "2001-01-01T00:00:00Z"},
    ]
    server.redeliver_all = True  # a misbehaving server: the agent must still run each job once
    assert agent(root, state_dir, "check-in") == 0
    assert (root / "var/run/uus-reboot-requested").exists()
    assert server.results["job-reboot"]["status"] == "succeeded"
    assert server.results["job-late"]["status"] == "expired"
    sent: List[str] = [r["job_id"] for b in server.posts("check-in/") for r in b["job_results"]]
    assert sorted(sent) == ["job-late", "job-reboot"]  # each reported in exactly one check-in
    assert os.listdir(state_dir / "outbox") == []
    (root / "var/run/uus-reboot-requested").unlink()
    assert agent(root, state_dir, "check-in") == 0
    assert not (root / "var/run/uus-reboot-requested").exists()  # not run again
    assert all(b["job_results"] == [] for b in server.posts("check-in/")[2:])
    capsys.readouterr()
    assert agent(root, state_dir, "status") == 0
    status = json.loads(capsys.readouterr().out)
    assert status["jobs"] == {"acked": 2} and status["outbox"] == []
    assert status["acknowledged_inventory_hash"] == status["current_inventory_hash"]
    assert "secret" not in status and server.only_machine()["secret"] not in json.dumps(status)


def test_killed_mid_job_reports_interrupted_exactly_once(server, root, state_dir) -> None:
    """SIGKILL a real `uus-agent check-in` while apt-get update hangs on the (fake) mirror."""
    registered(server, root, state_dir)
    (root / "etc/apt/sources.list.d/hang.list").write_text(
        "deb [trusted=yes] %s/hang/ stable main\n" % server.url
    )
    server.jobs = [{"id": "job-crash", "type": "apt_update", "params": {}, "deadline": None}]
    proc = agent_proc(root, state_dir, "check-in", start_new_session=True)
    record = state_dir / "jobs" / "job-crash.json"
    deadline = time.monotonic() + 30
    while not (record.exists() and server.gets("/hang/")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    assert json.loads(record.read_text())["state"] == "started"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    # apt-get runs in its own session (so an interrupted agent never cuts dpkg off mid-way): it
    # outlives the kill. Let it finish against the released mirror, and wait until it is gone.
    server.release_hang.set()
    wait_for_exit(processes_mentioning(str(root)))
    hangs = server.gets("/hang/")

    restarted = agent_proc(root, state_dir, "check-in")
    _out, err = restarted.communicate(timeout=60)
    assert restarted.returncode == 0, err
    result = server.results["job-crash"]
    assert (result["status"], result["error"]) == ("failed", "interrupted")
    assert server.gets("/hang/") == hangs  # apt-get update was not run a second time
    assert json.loads(record.read_text())["state"] == "acked"

    assert agent(root, state_dir, "check-in") == 0
    reported = [
        r for b in server.posts("check-in/") for r in b["job_results"] if r["job_id"] == "job-crash"
    ]
    assert reported == [result]


def test_check_in_configures_signed_repo_and_upgrades(
    tmp_path, root, state_dir, signing_key
) -> None:
    """The deployment path: the answer's apt sources and key, a real signed repo, apt_upgrade."""
    home, armored = signing_key
    www = tmp_path / "www"
    build_repo(
        www,
        "repo/test",
        "bookworm",
        [deb("jq_1.6-2.1+deb12u3"), deb("libjq1_1.6-2.1+deb12u3")],
        home,
    )
    (www / "repo" / "key.asc").write_bytes(armored)
    dpkg(root, "-i", deb("libjq1_1.6-2.1+deb12u2"), deb("jq_1.6-2.1+deb12u2"))
    with FakeServer(str(www)) as server:
        registered(server, root, state_dir)
        server.apt = {
            "sources": "deb [signed-by=/etc/apt/keyrings/uus.gpg] %s/repo/test bookworm main\n"
            % server.url,
            "key_url": server.url + "/repo/key.asc",
        }
        server.jobs = [
            {
                "id": "job-up",
                "type": "apt_upgrade",
                "params": {"packages": ["jq", "libjq1"]},
                "deadline": "2100-01-01T00:00:00Z",
            }
        ]
        assert agent(root, state_dir, "check-in") == 0
        result = server.results["job-up"]
        assert result["status"] == "succeeded", result["output"]
        assert "NO_PUBKEY" not in result["output"] and "not signed" not in result["output"]
        assert {p["name"]: p["after"] for p in result["packages"]} == {
            "jq": "1.6-2.1+deb12u3",
            "libjq1": "1.6-2.1+deb12u3",
        }
        uus_list = (root / "etc/apt/sources.list.d/uus.list").read_text()
        assert "signed-by=%s/etc/apt/keyrings/uus.gpg]" % root in uus_list
        # the follow-up check-in in the same cycle sent the new inventory as a delta
        m = server.only_machine()
        assert m["packages"] == dpkg_query(root / "var/lib/dpkg")
        assert [b["kind"] for b in server.posts("inventory/")] == ["full", "delta"]
        assert server.gets("/repo/key.asc") == 1
        assert agent(root, state_dir, "check-in") == 0
        assert server.gets("/repo/key.asc") == 1  # unchanged config: key not fetched again


def test_run_loop_checks_in_and_stops_on_sigterm(server, root, state_dir) -> None:
    registered(server, root, state_dir)
    proc = agent_proc(root, state_dir, "run")
    deadline = time.monotonic() + 20
    while not server.posts("check-in/"):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert server.only_machine()["secret"] not in out + err


def test_backoff_grows_to_cap_and_interval_has_jitter(root, state_dir) -> None:
    from uus_agent import config
    from uus_agent.service import Agent

    cfg = config.load({"state_dir": str(state_dir), "root": str(root)}, os.devnull)
    a = Agent(cfg)
    a.state.save_credentials({"client_id": "c", "check_in_interval": 600})
    delays = [a.next_delay(n) for n in range(1, 12)]
    assert 27 <= delays[0] <= 33 and 54 <= delays[1] <= 66
    assert max(delays) <= 3600 * 1.1 and delays[-1] >= 3600 * 0.9
    healthy = {round(a.next_delay(0)) for _ in range(20)}
    assert all(540 <= d <= 660 for d in healthy) and len(healthy) > 1
