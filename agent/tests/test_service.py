"""The agent's client logic end to end through its CLI, against the real UUS server.

The server is pytest-django's live server (one per test session) on the test database; its state is
made with its own services (enrollment tokens, revocation, deployments, a published ring repository)
and read back from its models. apt, dpkg and gpg are real, on test roots (conftest.py). The agent
reaches the server through a recording relay (relay.py) that forwards every request unchanged, so
that a test can see what went over the wire and make real trouble happen at a chosen moment: an
answer lost after the server committed it, a stalled download, a server gone. One test kills a real
`uus-agent check-in` process in the middle of a job to prove exactly-once reporting.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from uus.approvals.selectors import ring_get
from uus.audit.models import AuditEvent
from uus.deployments.models import Deployment, MachineJob
from uus.deployments.services import deployment_advance, deployment_create, window_create
from uus.inventory import packages as server_packages
from uus.inventory.exceptions import MachineUnauthorized
from uus.inventory.models import EnrollmentToken, InventoryChange, Machine, PackageSet
from uus.inventory.selectors import inventory_change_packages
from uus.inventory.services import (
    credential_hash,
    enrollment_token_create,
    enrollment_token_revoke,
    inventory_history_prune,
    machine_authenticate,
    machine_revoke,
    package_set_entries,
    package_sets_collect,
)
from uus.repos import services as repos
from uus.repos.signing import signing_agent_stop

from uus_agent import cli
from uus_agent import dpkg as agent_dpkg

from conftest import AGENT_DIR, deb, dpkg, dpkg_query, free_port
from relay import Relay

HOSTNAME = "test-01"  # conftest.make_root's machine


# -- running the agent -----------------------------------------------------------------------------


def global_args(root: Path, state_dir: Path) -> list[str]:
    return ["--state-dir", str(state_dir), "--root", str(root), "--config", os.devnull]


def agent(root: Path, state_dir: Path, *args: str) -> int:
    return cli.main([*global_args(root, state_dir), *args])


def agent_proc(root: Path, state_dir: Path, *args: str, **kw: Any) -> subprocess.Popen:
    """The CLI as a separate process, as systemd or an admin runs it."""
    env = dict(os.environ, PYTHONPATH=str(AGENT_DIR))
    argv = [sys.executable, "-m", "uus_agent", *global_args(root, state_dir), *args]
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, **kw
    )


def processes_mentioning(text: str) -> list[int]:
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


def wait_for_exit(pids: list[int], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    for pid in pids:
        while running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if running(pid):
            os.kill(pid, signal.SIGKILL)


def wait_until(condition, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc is None or proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# -- the server's side -----------------------------------------------------------------------------


@pytest.fixture
def server(live_server):
    """The live server, reached through a relay that records the wire (see the module doc)."""
    with Relay(live_server.url) as relay:
        yield relay


def enrollment_token() -> str:
    _, key = enrollment_token_create(comment="agent service tests")
    return key


def registered(server: Relay, root: Path, state_dir: Path) -> Machine:
    token = enrollment_token()
    assert agent(root, state_dir, "register", "--server", server.url, "--token", token) == 0
    return the_machine()


def the_machine() -> Machine:
    return Machine.objects.get(hostname=HOSTNAME, is_revoked=False)


def stored_packages(machine: Machine) -> list[dict[str, str]]:
    """The inventory the server holds for a machine, in the agent's (and dpkg-query's) shape."""
    assert machine.package_set_id is not None, "the server holds no inventory for %s" % machine
    return [
        dict(zip(agent_dpkg.PACKAGE_FIELDS, e)) for e in package_set_entries(machine.package_set_id)
    ]


def credentials(state_dir: Path) -> dict[str, Any]:
    return json.loads((state_dir / "credentials.json").read_text())


def kinds(server: Relay) -> list[str]:
    return [b["kind"] for b in server.posts("inventory/")]


def installed(root: Path, package: str) -> str | None:
    fmt = "${Version} ${db:Status-Status}"
    r = subprocess.run(
        ["dpkg-query", "--admindir=%s/var/lib/dpkg" % root, "-W", "-f", fmt, package],
        capture_output=True,
        text=True,
    )
    version, _, status = r.stdout.partition(" ")
    return version if r.returncode == 0 and status == "installed" else None


def job_results_sent(server: Relay, job_id: str) -> list[dict[str, Any]]:
    return [r for b in server.posts("check-in/") for r in b["job_results"] if r["job_id"] == job_id]


def result_events(job: MachineJob) -> int:
    return AuditEvent.objects.filter(action="job.result", data__job=str(job.pk)).count()


@pytest.fixture
def ring_repository(settings, tmp_path):
    """Publishes ring `production` (signed with the server's own key) in a data directory of the
    test's own; returns a function that uploads private .debs into it and publishes again."""
    settings.DATA_DIR = tmp_path / "server-data"
    settings.DATA_DIR.mkdir()
    settings.UUS = {**settings.UUS, "base_url": ""}  # apt lines name the address the agent used

    def publish(*debs: str) -> None:
        for path in debs:
            repos.package_upload(path=path, publish=False)
        repos.repo_publish(ring=ring_get("production"))

    yield publish
    signing_agent_stop(repos.gnupg_home())


# -- registration ----------------------------------------------------------------------------------


@pytest.mark.system
def test_register_stores_credentials_privately(server, root, state_dir, capsys) -> None:
    token = enrollment_token()
    assert agent(root, state_dir, "register", "--server", server.url, "--token", token) == 0
    m = the_machine()
    creds = credentials(state_dir)
    assert (creds["client_id"], creds["machine"]) == (m.client_id, str(m.uuid))
    # the server keeps only hashes of what it handed out once
    assert credential_hash(creds["secret"]) == m.secret_hash
    assert credential_hash(creds["exchange_token"]) == m.exchange_token_hash
    assert creds["server"] == server.url and creds["check_in_interval"] == 3600
    assert oct(os.stat(state_dir / "credentials.json").st_mode & 0o777) == "0o600"
    assert oct(os.stat(state_dir).st_mode & 0o777) == "0o700"
    assert (m.hostname, m.os_id, m.os_codename, m.release, m.kernel) == (
        HOSTNAME,
        "debian",
        "bookworm",
        "12",
        "6.1.0-40-amd64",
    )
    assert EnrollmentToken.objects.get().uses == 1
    out = capsys.readouterr()
    assert creds["secret"] not in out.out + out.err and token not in out.out + out.err
    assert str(m.uuid) in out.out

    # registering twice needs --force, and without it nothing reaches the server
    assert agent(root, state_dir, "register", "--server", server.url, "--token", token) == 1
    assert "already registered" in capsys.readouterr().err
    assert len(server.posts("register/")) == 1 and EnrollmentToken.objects.get().uses == 1

    # with --force the same machine (its machine id) keeps its record; the old secret is void
    args = ("register", "--force", "--server", server.url, "--token", token)
    assert agent(root, state_dir, *args) == 0
    again = credentials(state_dir)
    assert Machine.objects.count() == 1 and the_machine().uuid == m.uuid
    assert again["secret"] != creds["secret"]
    assert machine_authenticate(client_id=again["client_id"], secret=again["secret"]).pk == m.pk
    with pytest.raises(MachineUnauthorized):
        machine_authenticate(client_id=creds["client_id"], secret=creds["secret"])


@pytest.mark.system
def test_register_with_bad_token_fails(server, root, state_dir, capsys) -> None:
    token, key = enrollment_token_create()
    enrollment_token_revoke(token=token)
    for bad, why in (("not-a-token", "unknown enrollment token"), (key, "was revoked")):
        assert agent(root, state_dir, "register", "--server", server.url, "--token", bad) == 1
        err = capsys.readouterr().err
        assert "enrollment_refused" in err and why in err and bad not in err
        assert not (state_dir / "credentials.json").exists()
    assert [e.status for e in server.api("register/")] == [403, 403]
    assert not Machine.objects.exists()


# -- inventory -------------------------------------------------------------------------------------


@pytest.mark.system
def test_check_in_sends_full_then_delta_inventory(server, root, state_dir) -> None:
    registered(server, root, state_dir)
    first_token = credentials(state_dir)["exchange_token"]
    assert agent(root, state_dir, "check-in") == 0
    m = the_machine()
    assert kinds(server) == ["full"]
    assert stored_packages(m) == dpkg_query(root / "var/lib/dpkg")
    first = server.posts("check-in/")[0]
    assert first["previous_inventory_hash"] is None and first["exchange_token"] == first_token
    # the token rotated, and the agent kept the one the server now expects
    token = credentials(state_dir)["exchange_token"]
    assert token != first_token and credential_hash(token) == m.exchange_token_hash
    assert server.api("check-in/")[0].answer["inventory"] == "full"

    assert agent(root, state_dir, "check-in") == 0  # nothing changed: no upload
    assert len(server.posts("inventory/")) == 1
    assert server.api("check-in/")[1].answer["inventory"] == "ok"
    assert the_machine().inventory_updated == m.inventory_updated

    dpkg(root, "-i", deb("hello_"))
    assert agent(root, state_dir, "check-in") == 0
    delta = server.posts("inventory/")[-1]
    assert delta["kind"] == "delta" and delta["removed"] == []
    assert delta["base_hash"] == m.inventory_hash
    assert [p["name"] for p in delta["added"]] == ["hello"]
    m = the_machine()
    expected = dpkg_query(root / "var/lib/dpkg")
    assert stored_packages(m) == expected
    stored = json.loads((state_dir / "inventory.json").read_text())
    # both sides hash the same inventory the same way
    assert stored["inventory_hash"] == m.inventory_hash == agent_dpkg.inventory_hash(expected)
    assert m.inventory_hash == server_packages.inventory_hash(package_set_entries(m.package_set_id))
    (change,) = InventoryChange.objects.filter(machine=m)
    assert [(c.kind, c.name, c.new_version) for c in inventory_change_packages(change)] == [
        ("installed", "hello", "2.10-3")
    ]


@pytest.mark.system
def test_inventory_the_server_already_holds_becomes_the_delta_base(
    server, root, state_dir, capsys
) -> None:
    """The answer to an upload was lost (the connection broke after the server's commit): the next
    check-in hears "ok", and the agent takes its current inventory as the base, so the next change
    goes up as a delta."""
    registered(server, root, state_dir)
    server.lose_answer("inventory/")
    assert agent(root, state_dir, "check-in") == 1
    assert "inventory upload failed" in capsys.readouterr().err
    assert [e.status for e in server.api("inventory/")] == [200]  # stored, never heard
    assert stored_packages(the_machine()) == dpkg_query(root / "var/lib/dpkg")
    assert not (state_dir / "inventory.json").exists()

    assert agent(root, state_dir, "check-in") == 0
    assert kinds(server) == ["full"]
    assert server.api("check-in/")[-1].answer["inventory"] == "ok"
    stored = json.loads((state_dir / "inventory.json").read_text())
    assert stored["inventory_hash"] == the_machine().inventory_hash

    dpkg(root, "-i", deb("hello_"))
    assert agent(root, state_dir, "check-in") == 0
    assert kinds(server) == ["full", "delta"]
    assert stored_packages(the_machine()) == dpkg_query(root / "var/lib/dpkg")


@pytest.mark.system
def test_delta_refused_falls_back_to_full(server, root, state_dir) -> None:
    """The server asks for a delta against an inventory it then no longer has: the agent's base is
    an inventory whose successor's answer was lost, and between the check-in and the upload the
    history naming it expired and the collector deleted it. The delta is refused (409
    base_mismatch) and the full inventory follows at once."""
    registered(server, root, state_dir)
    assert agent(root, state_dir, "check-in") == 0
    base = the_machine().inventory_hash

    dpkg(root, "-i", deb("hello_"))
    server.lose_answer("inventory/")
    assert agent(root, state_dir, "check-in") == 1  # the server stored the delta; no answer came
    assert the_machine().inventory_hash != base
    assert json.loads((state_dir / "inventory.json").read_text())["inventory_hash"] == base

    def forget_the_base() -> dict[str, int]:
        inventory_history_prune(older_than=timedelta(0))
        return package_sets_collect(grace=timedelta(0))

    server.before("inventory/", forget_the_base)
    dpkg(root, "-i", deb("sl_"))
    assert agent(root, state_dir, "check-in") == 0
    assert server.api("check-in/")[-1].answer["inventory"] == "delta"
    assert server.step_results[0]["sets"] == 1 and not PackageSet.objects.filter(hash=base).exists()
    assert kinds(server) == ["full", "delta", "delta", "full"]
    refused, full = server.api("inventory/")[2:]
    assert refused.body["base_hash"] == base
    assert (refused.status, refused.answer["error"]["code"]) == (409, "base_mismatch")
    assert full.status == 200
    expected = dpkg_query(root / "var/lib/dpkg")
    assert stored_packages(the_machine()) == expected
    stored = json.loads((state_dir / "inventory.json").read_text())["inventory_hash"]
    assert stored == the_machine().inventory_hash == agent_dpkg.inventory_hash(expected)


# -- credentials and reachability ------------------------------------------------------------------


@pytest.mark.system
def test_revoked_credentials_stop_with_clear_message(server, root, state_dir, capsys) -> None:
    m = registered(server, root, state_dir)
    assert agent(root, state_dir, "check-in") == 0
    machine_revoke(machine=m)
    secret = credentials(state_dir)["secret"]
    capsys.readouterr()
    assert agent(root, state_dir, "check-in") == cli.EXIT_UNAUTHORIZED
    err = capsys.readouterr().err
    assert "machine_revoked" in err and "register again" in err and secret not in err
    assert server.api("check-in/")[-1].status == 401
    # the service loop stops too, instead of retrying credentials that will never work again
    proc = agent_proc(root, state_dir, "run")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == cli.EXIT_UNAUTHORIZED and "register again" in err
    assert secret not in out + err
    assert [e.status for e in server.api("check-in/")][-2:] == [401, 401]


@pytest.mark.system
def test_unregistered_and_unreachable(server, root, state_dir, capsys) -> None:
    assert agent(root, state_dir, "check-in") == cli.EXIT_NOT_REGISTERED
    assert "not registered" in capsys.readouterr().err
    closed = "http://127.0.0.1:%d" % free_port()
    assert agent(root, state_dir, "register", "--server", closed, "--token", "t") == 1
    assert "cannot reach" in capsys.readouterr().err
    assert not (state_dir / "credentials.json").exists()

    # registered, then the server goes away: the check-in fails, the credentials stay
    registered(server, root, state_dir)
    server.close()
    capsys.readouterr()
    assert agent(root, state_dir, "check-in") == 1
    assert "cannot reach %s" % server.url in capsys.readouterr().err
    assert agent(root, state_dir, "status") == 0
    status = json.loads(capsys.readouterr().out)
    assert status["registered"] and "cannot reach" in status["last_error"]
    assert status["last_check_in_at"] is None
    assert credential_hash(credentials(state_dir)["secret"]) == the_machine().secret_hash


# -- jobs ------------------------------------------------------------------------------------------


def job_queued_hours_ago(target: str, action: str, packages: list[str]) -> MachineJob:
    """A job the server queued three hours ago with a one-minute deadline (its deployment's window
    opened then; the periodic advance that would have expired it has not run since), so that it
    reaches the agent after its deadline."""
    now = timezone.now()
    then = (now - timedelta(hours=3)).replace(microsecond=0)
    window = window_create(
        name="three-hours-ago", weekdays=[then.weekday()], start=then.time(), duration_minutes=30
    )
    dep = deployment_create(
        target=target,
        action=action,
        packages=packages,
        at=then,
        window=window,
        job_timeout_minutes=1,
    )
    assert dep.state == "scheduled"  # the window is closed now
    deployment_advance(dep, now=then + timedelta(minutes=1))
    job = MachineJob.objects.get(deployment=dep)
    assert job.state == "queued" and job.deadline < now
    return job


@pytest.mark.system
def test_job_results_reported_once_and_acked(server, root, state_dir, capsys) -> None:
    dpkg(root, "-i", deb("sl_"))
    registered(server, root, state_dir)
    (root / "var/run").mkdir(parents=True, exist_ok=True)
    (root / "var/run/reboot-required").write_text("*** System restart required ***\n")
    assert agent(root, state_dir, "check-in") == 0  # the server learns that a reboot is required
    reboot = MachineJob.objects.get(
        deployment=deployment_create(target="machine:" + HOSTNAME, action="reboot")
    )
    late = job_queued_hours_ago("machine:" + HOSTNAME, "remove", ["sl"])

    assert agent(root, state_dir, "check-in") == 0
    delivered = server.api("check-in/")[1].answer["jobs"]
    assert [(j["id"], j["type"]) for j in delivered] == [
        (str(late.pk), "apt_remove"),
        (str(reboot.pk), "reboot"),
    ]
    assert (root / "var/run/uus-reboot-requested").exists()
    assert installed(root, "sl") == "5.02-1+b1"  # the late job was not run
    reboot.refresh_from_db()
    late.refresh_from_db()
    assert (reboot.state, reboot.exit_code, reboot.is_reboot_required) == ("succeeded", 0, True)
    assert "reboot requested" in reboot.output
    assert (late.state, late.result_status, late.error) == ("expired", "expired", "expired")
    # each result in exactly one check-in (the follow-up of the same cycle), stored once
    sent = [r["job_id"] for b in server.posts("check-in/") for r in b["job_results"]]
    assert sorted(sent) == sorted([str(reboot.pk), str(late.pk)])
    assert sorted(server.api("check-in/")[2].answer["acked_job_results"]) == sorted(sent)
    assert result_events(reboot) == result_events(late) == 1
    assert os.listdir(state_dir / "outbox") == []

    (root / "var/run/uus-reboot-requested").unlink()
    assert agent(root, state_dir, "check-in") == 0
    assert not (root / "var/run/uus-reboot-requested").exists()  # not run again
    assert all(b["job_results"] == [] for b in server.posts("check-in/")[3:])
    assert all(e.answer["jobs"] == [] for e in server.api("check-in/")[2:])
    assert MachineJob.objects.get(pk=reboot.pk).delivery_count == 1
    capsys.readouterr()
    assert agent(root, state_dir, "status") == 0
    status = json.loads(capsys.readouterr().out)
    assert status["jobs"] == {"acked": 2} and status["outbox"] == []
    assert status["acknowledged_inventory_hash"] == status["current_inventory_hash"]
    assert status["acknowledged_inventory_hash"] == the_machine().inventory_hash
    secret = credentials(state_dir)["secret"]
    assert "secret" not in status and secret not in json.dumps(status)


@pytest.mark.system
def test_result_whose_ack_was_lost_is_sent_again_and_stored_once(
    server, root, state_dir, capsys
) -> None:
    """The server stores a result and answers, but the answer (its ack and the next exchange token)
    is lost: the agent keeps the result and sends it again with the previous token, which the
    server accepts once; the result is stored once and the job never runs again."""
    registered(server, root, state_dir)
    (root / "var/run").mkdir(parents=True, exist_ok=True)
    (root / "var/run/reboot-required").write_text("*** System restart required ***\n")
    assert agent(root, state_dir, "check-in") == 0
    job = MachineJob.objects.get(
        deployment=deployment_create(target="machine:" + HOSTNAME, action="reboot")
    )
    server.lose_answer("check-in/", when=lambda e: bool(e.body["job_results"]))
    capsys.readouterr()
    assert agent(root, state_dir, "check-in") == 1
    assert "cannot reach" in capsys.readouterr().err
    job.refresh_from_db()
    received = job.result_received
    assert job.state == "succeeded" and received is not None and result_events(job) == 1
    assert [p.name for p in (state_dir / "outbox").iterdir()] == ["%s.json" % job.pk]
    marker = (root / "var/run/uus-reboot-requested").read_text()

    assert agent(root, state_dir, "check-in") == 0
    first, second = job_results_sent(server, str(job.pk))
    assert first == second  # the same result, not a new run
    assert server.api("check-in/")[-1].answer["acked_job_results"] == [str(job.pk)]
    assert os.listdir(state_dir / "outbox") == []
    job.refresh_from_db()
    assert job.result_received == received and result_events(job) == 1
    assert (root / "var/run/uus-reboot-requested").read_text() == marker
    assert agent(root, state_dir, "check-in") == 0  # the token chain goes on
    assert len(job_results_sent(server, str(job.pk))) == 2
    assert not Machine.objects.get(pk=job.machine_id).is_clone_suspected


@pytest.mark.system
def test_killed_mid_job_reports_interrupted_exactly_once(
    server, root, state_dir, ring_repository
) -> None:
    """SIGKILL a real `uus-agent check-in` while the apt-get update of its job waits for the
    server's repository (the download is held in the relay)."""
    ring_repository(deb("hello_"))
    registered(server, root, state_dir)
    assert agent(root, state_dir, "check-in") == 0  # apt sources for ring production written
    sources = (root / "etc/apt/sources.list.d/uus.list").read_text()
    assert "%s/repo/production" % server.url in sources
    job = MachineJob.objects.get(
        deployment=deployment_create(
            target="machine:" + HOSTNAME, action="install", packages=["hello"]
        )
    )
    release = server.stall("/repo/production/")
    proc = agent_proc(root, state_dir, "check-in", start_new_session=True)
    record = state_dir / "jobs" / ("%s.json" % job.pk)
    wait_until(lambda: record.exists() and server.gets("/repo/production/dists/"), proc)
    assert json.loads(record.read_text())["state"] == "started"
    held = [e for e in server.exchanges if e.path.startswith("/repo/production/dists/")]
    assert held[0].status is None  # killed in the middle of apt-get update
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert MachineJob.objects.get(pk=job.pk).state == "delivered"
    # apt-get runs in its own session (so an interrupted agent never cuts dpkg off mid-way): it
    # outlives the kill. Let it finish against the released repository, and wait until it is gone.
    apt_get = processes_mentioning(str(root))
    assert apt_get
    release.set()
    wait_for_exit(apt_get)
    assert held[0].status == 200 and held[0].delivered
    fetched = server.gets("/repo/production/")

    restarted = agent_proc(root, state_dir, "check-in")
    _out, err = restarted.communicate(timeout=60)
    assert restarted.returncode == 0, err
    job.refresh_from_db()
    assert (job.state, job.error, job.exit_code) == ("failed", "interrupted", None)
    assert "interrupted" in job.output
    assert server.gets("/repo/production/") == fetched  # apt-get update was not run a second time
    assert installed(root, "hello") is None  # nor the install
    assert json.loads(record.read_text())["state"] == "acked"

    assert agent(root, state_dir, "check-in") == 0
    (reported,) = job_results_sent(server, str(job.pk))
    assert (reported["status"], reported["error"]) == ("failed", "interrupted")
    assert result_events(job) == 1 and MachineJob.objects.get(pk=job.pk).delivery_count == 1


@pytest.mark.system
def test_check_in_configures_signed_repo_and_upgrades(
    server, root, state_dir, ring_repository
) -> None:
    """The deployment path: the answer's apt sources and key for the machine's ring, the server's
    own signed repository, and an upgrade deployment carried out with apt-get."""
    new = "1.6-2.1+deb12u3"
    ring_repository(deb("jq_" + new), deb("libjq1_" + new))
    dpkg(root, "-i", deb("libjq1_1.6-2.1+deb12u2"), deb("jq_1.6-2.1+deb12u2"))
    registered(server, root, state_dir)
    dep = deployment_create(target="machine:" + HOSTNAME, action="upgrade")
    job = MachineJob.objects.get(deployment=dep)
    assert agent(root, state_dir, "check-in") == 0
    job.refresh_from_db()
    assert (job.type, job.state, job.exit_code) == ("apt_upgrade", "succeeded", 0), job.output
    assert "NO_PUBKEY" not in job.output and "not signed" not in job.output
    assert {c["name"]: (c["before"], c["after"]) for c in job.package_changes} == {
        "jq": ("1.6-2.1+deb12u2", new),
        "libjq1": ("1.6-2.1+deb12u2", new),
    }
    assert installed(root, "jq") == installed(root, "libjq1") == new
    uus_list = (root / "etc/apt/sources.list.d/uus.list").read_text()
    assert (
        "[signed-by=%s/etc/apt/keyrings/uus.gpg] %s/repo/production uus-local main"
        % (
            root,
            server.url,
        )
        in uus_list
    )
    assert (root / "etc/apt/keyrings/uus.gpg").read_bytes()[:1] != b"-"  # dearmored
    assert Deployment.objects.get(pk=dep.pk).state == "completed"
    # the follow-up check-in in the same cycle sent the new inventory as a delta
    assert stored_packages(the_machine()) == dpkg_query(root / "var/lib/dpkg")
    assert kinds(server) == ["full", "delta"]
    assert server.gets("/repo/key.asc") == 1
    assert agent(root, state_dir, "check-in") == 0
    assert server.gets("/repo/key.asc") == 1  # unchanged config: key not fetched again


# -- the service loop ------------------------------------------------------------------------------


@pytest.mark.system
def test_run_loop_checks_in_and_stops_on_sigterm(server, root, state_dir) -> None:
    registered(server, root, state_dir)
    proc = agent_proc(root, state_dir, "run")
    wait_until(lambda: any(e.delivered for e in server.api("inventory/")), proc, timeout=60)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "signal %d" % signal.SIGTERM in err
    # one cycle, then the server's interval (an hour) until the signal: no busy loop
    assert len(server.posts("check-in/")) == 1
    assert stored_packages(the_machine()) == dpkg_query(root / "var/lib/dpkg")
    assert credentials(state_dir)["secret"] not in out + err


def test_backoff_grows_to_cap_and_interval_has_jitter(root, state_dir) -> None:
    """The computation alone: no server is needed to know how long the loop sleeps."""
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
