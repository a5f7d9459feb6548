"""Deployments carried out by the real agent (`uus-agent`) with real apt and dpkg on test roots, against
a live server: a removal deployed to a group lands on exactly that group, the canary threshold halts
the rest, an agent killed in the middle of a job reports exactly one result, and a deployment
scheduled before a server restart (SIGKILL) runs after it.

Nothing is mocked: the roots are directories that dpkg and apt-get work on (design.md, "Test roots").
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from uus.audit.models import AuditEvent
from uus.deployments.models import MachineJob

from .test_agent_inventory import ServeProcess, agent, agent_command, deb, dpkg, make_root

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


def version_of(root: Path, package: str) -> str | None:
    r = subprocess.run(
        ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f", "${Version} ${db:Status-Status}", package],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        return None
    version, _, status = r.stdout.partition(" ")
    return version if status == "installed" else None


def machine_root(tmp_path: Path, hostname: str) -> Path:
    root = make_root(tmp_path / "roots" / hostname, hostname)
    dpkg(root, "-i", deb("hello_2.10-3_amd64"), deb("libjq1_1.6-2.1+deb12u2_amd64"), deb("jq_1.6-2.1+deb12u2_amd64"))
    return root


def enroll(server_url: str, token: str, tmp_path: Path, hostnames) -> dict[str, tuple[Path, Path]]:
    machines = {}
    for h in hostnames:
        root, state = machine_root(tmp_path, h), tmp_path / "state" / h
        r = agent(state, root, "register", "--server", server_url, "--token", token)
        assert r.returncode == 0, r.stderr
        r = agent(state, root, "check-in")
        assert r.returncode == 0, r.stdout + r.stderr
        machines[h] = (state, root)
    return machines


def check_in(machines, *hostnames) -> None:
    for h in hostnames:
        state, root = machines[h]
        r = agent(state, root, "check-in")
        assert r.returncode == 0, r.stdout + r.stderr


def cli_json(uus_cli, *args):
    r = uus_cli(*args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def fleet(live_server, uus_cli, tmp_path):
    token = cli_json(uus_cli, "tokens", "create")["token"]
    return enroll(live_server.url, token, tmp_path, ("web-01", "web-02", "db-01"))


def test_removal_deployed_to_a_group_lands_on_exactly_that_group(fleet, uus_cli):
    assert uus_cli("groups", "create", "web", "--hostname-pattern", "web-*").returncode == 0
    dep = cli_json(
        uus_cli, "deployments", "create", "--target", "group:web", "--action", "remove", "--package", "hello"
    )
    assert dep["state"] == "running" and sorted(j["machine"] for j in dep["jobs"]) == ["web-01", "web-02"]
    check_in(fleet, "web-01", "web-02", "db-01")

    assert [version_of(fleet[h][1], "hello") for h in ("web-01", "web-02", "db-01")] == [None, None, "2.10-3"]
    shown = cli_json(uus_cli, "deployments", "show", str(dep["id"]))
    assert shown["state"] == "completed" and shown["counts"]["succeeded"] == 2
    for job in shown["jobs"]:
        assert job["state"] == "succeeded" and job["exit_code"] == 0
        assert job["package_changes"] == [{"name": "hello", "architecture": "amd64", "before": "2.10-3", "after": None}]
    job = MachineJob.objects.get(machine__hostname="web-01")
    assert "apt-get" in job.output and "Removing hello" in job.output
    changes = AuditEvent.objects.filter(action="package.change").values_list("target", flat=True)
    assert sorted(changes) == ["machine:web-01", "machine:web-02"]
    # the next inventory (same cycle) shows the removal to the server too
    m = cli_json(uus_cli, "machines", "packages", "web-01")
    assert "hello" not in {p["name"] for p in m}


def test_canary_threshold_halts_the_rest(fleet, uus_cli):
    dep = cli_json(
        uus_cli,
        "deployments",
        "create",
        "--target",
        "ring:production",
        "--action",
        "install",
        "--package",
        "no-such-package",
        "--batch-size",
        "1",
        "--failure-threshold",
        "50",
    )
    assert dep["counts"]["queued"] == 1 and dep["counts"]["waiting"] == 2
    first = next(j["machine"] for j in dep["jobs"] if j["state"] == "queued")
    check_in(fleet, first)
    shown = cli_json(uus_cli, "deployments", "show", str(dep["id"]))
    assert shown["state"] == "halted", shown
    failed = next(j for j in shown["jobs"] if j["machine"] == first)
    assert (failed["state"], failed["error"], failed["exit_code"]) == ("failed", "apt_failed", 100)
    others = [h for h in fleet if h != first]
    check_in(fleet, *others)
    assert MachineJob.objects.filter(deployment_id=dep["id"], state="waiting").count() == 2  # never started


def test_agent_killed_mid_job_reports_exactly_one_result(fleet, uus_cli, tmp_path):
    state, root = fleet["db-01"]
    dep = cli_json(
        uus_cli, "deployments", "create", "--target", "machine:db-01", "--action", "remove", "--package", "hello"
    )
    # Someone holds the dpkg frontend lock: the agent waits for it inside the job; then it is killed.
    lock = open(root / "var/lib/dpkg/lock-frontend", "a+")
    fcntl.lockf(lock, fcntl.LOCK_EX)
    proc = subprocess.Popen(
        [*agent_command(), "--state-dir", str(state), "--root", str(root), "check-in"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    job = MachineJob.objects.get(deployment_id=dep["id"])
    deadline = time.monotonic() + 60
    while MachineJob.objects.get(pk=job.pk).state != "delivered" and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.5)  # the agent records the job as started, then waits for the lock
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    lock.close()
    assert MachineJob.objects.get(pk=job.pk).result_received is None

    for _ in range(2):  # restarted: the job is reported interrupted once, and never run again
        check_in(fleet, "db-01")
    job.refresh_from_db()
    assert (job.state, job.error) == ("failed", "interrupted")
    assert AuditEvent.objects.filter(action="job.result", data__job=str(job.pk)).count() == 1
    assert version_of(root, "hello") == "2.10-3"


def test_deployment_scheduled_before_a_server_restart_runs_after_it(tmp_path):
    srv = ServeProcess(tmp_path / "srv")
    srv.data_dir.mkdir()
    srv.start()
    try:
        r = srv.cli("tokens", "create", "--json")
        assert r.returncode == 0, r.stderr
        machines = enroll(f"http://127.0.0.1:{srv.port}", json.loads(r.stdout)["token"], tmp_path, ("app-01",))
        at = (datetime.now(UTC) + timedelta(seconds=4)).isoformat()
        r = srv.cli(
            "deployments", "create", "--target", "machine:app-01", "--action", "remove", "--package", "hello",
            "--at", at, "--json",
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        dep = json.loads(r.stdout)
        assert dep["state"] == "scheduled" and dep["counts"]["waiting"] == 1
        srv.kill()
        time.sleep(4)
        srv.start()
        check_in(machines, "app-01")
        assert version_of(machines["app-01"][1], "hello") is None
        r = srv.cli("deployments", "show", str(dep["id"]), "--json")
        shown = json.loads(r.stdout)
        assert shown["state"] == "completed" and shown["jobs"][0]["state"] == "succeeded"
    finally:
        if srv.proc and srv.proc.poll() is None:
            srv.kill()
