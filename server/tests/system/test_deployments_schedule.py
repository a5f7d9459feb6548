"""Deployments over time, with a real `uus serve` (its in-process worker running), real agents and real
apt/dpkg on test roots:
- a deployment made outside its maintenance window waits for the window, then runs;
- the canary threshold halts a batched deployment once the configured share of finished jobs failed
  (a first success does not halt it, the failure that reaches the share does), and the halt and the
  failed job are sent to a real SMTP server and a real webhook;
- the server killed (SIGKILL) in the middle of a deployment, while an agent is running its job, resumes
  it when it comes back: the agent keeps the result in its outbox until the new server stores it, and
  every job reports exactly one result;
- a reboot deployment reboots only the machines that report they need it (under a test root the agent
  leaves a marker instead of rebooting the host).
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from uus.deployments.tests.peers import smtp_peer, webhook_peer

from .test_agent_inventory import ServeProcess, agent, agent_command, deb, dpkg, make_root
from .test_deployments_agent import version_of

pytestmark = [pytest.mark.system]


class Server(ServeProcess):
    """`uus serve` with its in-process worker (the periodic jobs run), settings from `extra_env`."""

    def __init__(self, data_dir: Path, **extra_env: str):
        super().__init__(data_dir, worker=True)
        self.env.update(extra_env)

    def json(self, *args: str):
        r = self.cli(*args, "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        return json.loads(r.stdout)

    def ok(self, *args: str) -> str:
        r = self.cli(*args)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout


@pytest.fixture
def start_server(tmp_path):
    started = []

    def start(**extra_env) -> Server:
        srv = Server(tmp_path / "srv", **extra_env)
        srv.data_dir.mkdir(exist_ok=True)
        srv.start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        if srv.proc and srv.proc.poll() is None:
            srv.kill()


def enroll(srv: Server, tmp_path: Path, hostnames) -> dict[str, tuple[Path, Path]]:
    token = srv.json("tokens", "create")["token"]
    machines = {}
    for h in hostnames:
        root, state = make_root(tmp_path / "roots" / h, h), tmp_path / "state" / h
        dpkg(root, "-i", deb("hello_2.10-3_amd64"))
        r = agent(state, root, "register", "--server", f"http://127.0.0.1:{srv.port}", "--token", token)
        assert r.returncode == 0, r.stderr
        machines[h] = (state, root)
        check_in(machines, h)
    return machines


def check_in(machines, *hostnames) -> None:
    for h in hostnames:
        r = agent(*machines[h], "check-in")
        assert r.returncode == 0, r.stdout + r.stderr


def hello(machines, h) -> str | None:
    return version_of(machines[h][1], "hello")


def test_a_deployment_outside_its_window_waits_for_it_then_runs(start_server, tmp_path):
    srv = start_server()
    machines = enroll(srv, tmp_path, ("w1", "w2"))
    # a window that opens 20 s from now (UTC) and stays open 30 minutes
    opens = (datetime.now(UTC) + timedelta(seconds=20)).replace(microsecond=0)
    srv.ok(
        "windows", "create", "soon", "--weekdays", str(opens.weekday()), "--start", opens.strftime("%H:%M:%S"),
        "--minutes", "30", "--timezone", "UTC",
    )  # fmt: skip
    (machines["w1"][1] / "var/run").mkdir(parents=True, exist_ok=True)
    (machines["w1"][1] / "var/run/reboot-required").write_text("*** System restart required ***\n")
    dep = srv.json(
        "deployments", "create", "--target", "machine:w1,w2", "--action", "remove", "--package", "hello",
        "--window", "soon",
    )  # fmt: skip
    assert dep["state"] == "scheduled" and dep["counts"]["waiting"] == 2, dep

    while datetime.now(UTC) < opens - timedelta(seconds=3):  # before the window: check-ins bring nothing
        check_in(machines, "w1", "w2")
        time.sleep(2)
    assert (hello(machines, "w1"), hello(machines, "w2")) == ("2.10-3", "2.10-3")
    shown = srv.json("deployments", "show", str(dep["id"]))
    assert shown["state"] == "scheduled" and shown["counts"]["waiting"] == 2, shown

    while datetime.now(UTC) < opens + timedelta(seconds=1):
        time.sleep(0.5)
    check_in(machines, "w1", "w2")
    assert (hello(machines, "w1"), hello(machines, "w2")) == (None, None)
    shown = srv.json("deployments", "show", str(dep["id"]))
    assert shown["state"] == "completed" and shown["counts"]["succeeded"] == 2, shown
    jobs = {j["machine"]: j for j in shown["jobs"]}
    assert min(j["started_at"] for j in jobs.values()) >= opens.isoformat().replace("+00:00", "Z")
    assert (jobs["w1"]["is_reboot_required"], jobs["w2"]["is_reboot_required"]) == (True, False)

    # the agent reboots only on a job's request, and the server asks only the machine that needs it
    reboot = srv.json("deployments", "create", "--target", "machine:w1,w2", "--action", "reboot")
    assert {j["machine"]: j["state"] for j in reboot["jobs"]} == {"w1": "queued", "w2": "skipped"}
    check_in(machines, "w1", "w2")
    marker = "var/run/uus-reboot-requested"
    assert (machines["w1"][1] / marker).exists() and not (machines["w2"][1] / marker).exists()
    shown = srv.json("deployments", "show", str(reboot["id"]))
    assert shown["state"] == "completed" and shown["counts"]["succeeded"] == 1, shown


def test_the_canary_halts_at_the_configured_share_of_failures_and_says_so(start_server, tmp_path):
    with smtp_peer() as box, webhook_peer() as hook:
        srv = start_server(
            UUS_SMTP_HOST=box.host,
            UUS_SMTP_PORT=str(box.port),
            UUS_EMAIL_FROM="uus@example.org",
            UUS_NOTIFY_EMAILS="ops@example.org",
            UUS_NOTIFY_WEBHOOK=hook.url,
        )
        machines = enroll(srv, tmp_path, ("c1", "c2", "c3", "c4"))
        # c2's administrator holds hello: apt-get -y refuses to remove a held package there
        subprocess.run(
            ["dpkg", f"--admindir={machines['c2'][1]}/var/lib/dpkg", "--set-selections"],
            input="hello hold\n",
            text=True,
            check=True,
        )
        dep = srv.json(
            "deployments", "create", "--target", "ring:production", "--action", "remove", "--package", "hello",
            "--batch-size", "1", "--failure-threshold", "50",
        )  # fmt: skip
        assert [j["machine"] for j in dep["jobs"] if j["state"] == "queued"] == ["c1"]
        check_in(machines, "c1")  # succeeds: 0 of 1 failed, the next machine starts
        shown = srv.json("deployments", "show", str(dep["id"]))
        assert shown["state"] == "running" and shown["counts"]["queued"] == 1, shown
        check_in(machines, "c2")  # fails: 1 of 2 = 50 %, the threshold: halted
        shown = srv.json("deployments", "show", str(dep["id"]))
        assert shown["state"] == "halted", shown
        assert shown["halted_reason"] == "1 of 2 finished jobs failed (threshold 50%)"
        c2 = next(j for j in shown["jobs"] if j["machine"] == "c2")
        assert (c2["state"], c2["error"], c2["exit_code"]) == ("failed", "apt_failed", 100)
        check_in(machines, "c3", "c4")
        assert [hello(machines, h) for h in ("c1", "c2", "c3", "c4")] == [None, "2.10-3", "2.10-3", "2.10-3"]
        shown = srv.json("deployments", "show", str(dep["id"]))
        assert shown["counts"]["waiting"] == 2 and shown["state"] == "halted"
        output = srv.json("deployments", "jobs", "--deployment", str(dep["id"]), "--output")
        assert "Held packages were changed" in next(j["output"] for j in output if j["machine"] == "c2")

        posts = hook.wait(2)
        assert sorted(body["event"] for _, _, body in posts) == ["deployment_halted", "job_failed"]
        mails = box.wait(2)
        assert sorted(m["Subject"] for m in mails) == [
            f"[UUS] deployment {dep['id']} halted: 1 of 2 finished jobs failed (threshold 50%)",
            "[UUS] job on c2 failed: apt_failed",
        ]
        assert {m["X-Envelope-To"] for m in mails} == {"ops@example.org"}


def test_a_server_killed_mid_deployment_resumes_it(start_server, tmp_path):
    srv = start_server()
    machines = enroll(srv, tmp_path, ("r1", "r2", "r3"))
    dep = srv.json(
        "deployments", "create", "--target", "ring:production", "--action", "remove", "--package", "hello",
        "--batch-size", "1",
    )  # fmt: skip
    check_in(machines, "r1")
    assert hello(machines, "r1") is None

    # r2 gets its job, then waits for the dpkg lock someone holds; meanwhile the server dies
    state, root = machines["r2"]
    lock = open(root / "var/lib/dpkg/lock-frontend", "a+")
    fcntl.lockf(lock, fcntl.LOCK_EX)
    proc = subprocess.Popen(
        [*agent_command(), "--state-dir", str(state), "--root", str(root), "check-in"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    end = time.monotonic() + 60
    while time.monotonic() < end:
        jobs = {j["machine"]: j["state"] for j in srv.json("deployments", "show", str(dep["id"]))["jobs"]}
        if jobs["r2"] == "delivered":
            break
        time.sleep(0.3)
    assert jobs == {"r1": "succeeded", "r2": "delivered", "r3": "waiting"}
    srv.kill()
    lock.close()  # the job runs now, with no server to report to
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, out
    assert hello(machines, "r2") is None
    status = json.loads(agent(state, root, "status").stdout)
    assert len(status["outbox"]) == 1  # the result waits in the outbox

    srv.start()
    check_in(machines, "r2")  # delivers the result; the deployment goes on to r3
    assert json.loads(agent(state, root, "status").stdout)["outbox"] == []
    check_in(machines, "r3")
    assert [hello(machines, h) for h in ("r1", "r2", "r3")] == [None, None, None]
    shown = srv.json("deployments", "show", str(dep["id"]))
    assert shown["state"] == "completed" and shown["counts"]["succeeded"] == 3, shown
    results = srv.json("audit", "list", "--action", "job.result")
    assert sorted(e["target"] for e in results) == ["machine:r1", "machine:r2", "machine:r3"]
    assert len({e["data"]["job"] for e in results}) == 3
