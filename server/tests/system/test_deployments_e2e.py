"""The whole path of an update with a real `uus serve` and `uus worker`, the real agent and real apt:
a signed upstream (bookworm: jq 1.6-2.1+deb12u2; bookworm-security: deb12u3) is synced; approving
the fix for ring `test` republishes that ring's repository, and a deployment installs it on the two
test machines only; a ring that declined it never offers it, not even to `apt-get upgrade` run by
hand; promotion then brings it to `production`; an uploaded private package deployed to a group lands
on exactly that group.

Nothing is mocked: the upstream is a real signed archive on loopback, the repositories are uus.repos'
own publication served by `uus serve`, and the agents run apt-get and dpkg on test roots.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from uus.catalog.tests.loopback import serve_directory
from uus.repos.debfile import inspect_deb
from uus.repos.publish import build_suite
from uus.repos.signing import Signer, export_public_key, signing_agent_stop, signing_key_ensure

from .test_agent_inventory import DEBS, ServeProcess, agent, dpkg, make_root
from .test_deployments_agent import version_of

pytestmark = [pytest.mark.system]

OLD, NEW = "1.6-2.1+deb12u2", "1.6-2.1+deb12u3"
SUITES = {
    "bookworm": [f"jq_{OLD}_amd64", f"libjq1_{OLD}_amd64"],
    "bookworm-security": [f"jq_{NEW}_amd64", f"libjq1_{NEW}_amd64"],
}


def build_upstream(top: Path) -> tuple[Path, Path]:
    """A signed Debian-like archive at top/www/debian; returns (www, binary keyring)."""
    www, home = top / "www", top / "g"
    archive = www / "debian"
    signer_home = signing_key_ensure(home, "Mini Upstream", "upstream@example.invalid") and home
    for suite, names in SUITES.items():
        stanzas = []
        for name in names:
            src = DEBS / f"{name}.deb"
            rel = f"pool/main/j/jq/{src.name}"
            (archive / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, archive / rel)
            stanzas.append(inspect_deb(src, 10**8).index_fields(rel))
        build_suite(archive, suite, "main", ["amd64"], stanzas, Signer(signer_home), valid_days=None)
    keyring = top / "upstream.gpg"
    keyring.write_bytes(export_public_key(home, armored=False))
    return www, keyring


def ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def apt_by_hand(root: Path, state: Path, *args: str, check: bool = True) -> str:
    """apt-get run by an administrator on the machine (through the agent's own apt wrapper, which
    only adds the options a test root needs)."""
    code = (
        "import sys; from uus_agent.apt import Apt; a = Apt(sys.argv[1], sys.argv[2], 30, 300); "
        "r = a.run(sys.argv[3:]); print(r.output); sys.exit(r.exit_code or 0)"
    )
    exe = Path(sys.executable)
    r = subprocess.run(
        [str(exe), "-c", code, str(root), str(state), *args], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0 or not check, r.stdout + r.stderr
    return r.stdout


@pytest.fixture
def server(tmp_path):
    srv = ServeProcess(tmp_path / "srv")
    srv.data_dir.mkdir()
    srv.start()
    worker = subprocess.Popen(
        [*srv_command(), "worker"], env=srv.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    yield srv
    worker.kill()
    worker.wait(10)
    if srv.proc and srv.proc.poll() is None:
        srv.kill()


def srv_command() -> list[str]:
    from uus.testing.fixtures import uus_command

    return uus_command()


def test_approved_update_reaches_test_then_production_and_a_declined_one_never(server, tmp_path):
    up = tmp_path / "up"
    www, keyring = build_upstream(up)
    try:
        with serve_directory(www) as lb:
            ok(
                server.cli(
                    "upstream", "add", "deb", f"{lb.url}/debian", "--suites", "bookworm,bookworm-security",
                    "--components", "main", "--architectures", "amd64", "--keyring", str(keyring),
                )
            )  # fmt: skip
            ok(server.cli("upstream", "sync", "deb"))
            run_scenario(server, tmp_path)
    finally:
        signing_agent_stop(up / "g")


def run_scenario(server: ServeProcess, tmp_path: Path) -> None:
    token = json.loads(ok(server.cli("tokens", "create", "--json")))["token"]
    url = f"http://127.0.0.1:{server.port}"
    machines = {}
    for h in ("t1", "t2", "p1", "x1"):
        root = make_root(tmp_path / "roots" / h, h)
        dpkg(root, "-i", str(DEBS / f"libjq1_{OLD}_amd64.deb"), str(DEBS / f"jq_{OLD}_amd64.deb"))
        state = tmp_path / "state" / h
        ok(agent(state, root, "register", "--server", url, "--token", token))
        ok(agent(state, root, "check-in"))
        machines[h] = (state, root)
    ok(server.cli("rings", "create", "pilot", "--position", "50"))
    for h, ring in (("t1", "test"), ("t2", "test"), ("p1", "production"), ("x1", "pilot")):
        ok(server.cli("machines", "set-ring", h, ring))
    rings = {r["name"]: r for r in json.loads(ok(server.cli("rings", "list", "--json")))}
    assert [rings[n]["machines"] for n in ("test", "pilot", "production")] == [2, 1, 1]

    def cycle(*hosts):
        for h in hosts:
            ok(agent(*machines[h], "check-in"))

    def jq(h):
        return version_of(machines[h][1], "jq")

    # 1. the fix is a pending security update for test (it comes from bookworm-security); approved for
    # test from that list (and declined for pilot), a deployment to ring:test reaches t1 and t2 only
    pending = json.loads(ok(server.cli("updates", "list", "--ring", "test", "--kind", "security", "--json")))
    assert [(u["package"], u["version"], u["pocket"], u["machines"], u["state"]) for u in pending] == [
        ("jq", NEW, "security", 2, "pending"),
        ("libjq1", NEW, "security", 2, "pending"),
    ]
    approved = json.loads(
        ok(server.cli("approvals", "bulk", "test", "approved", "--pending", "--kind", "security", "--json"))
    )
    assert sorted((a["package"], a["version"]) for a in approved) == [("jq", NEW), ("libjq1", NEW)]
    for pkg in ("jq", "libjq1"):
        ok(server.cli("approvals", "set", "pilot", pkg, NEW, "declined", "--comment", "breaks our reports"))
    dep = json.loads(ok(server.cli("deployments", "create", "--target", "ring:test", "--json")))
    end = time.monotonic() + 90
    while time.monotonic() < end and not (jq("t1") == jq("t2") == NEW):
        cycle("t1", "t2", "p1", "x1")
        time.sleep(1)
    shown = json.loads(ok(server.cli("deployments", "show", str(dep["id"]), "--json")))
    assert (jq("t1"), jq("t2"), jq("p1"), jq("x1")) == (NEW, NEW, OLD, OLD), (shown, server.cli("jobs", "list").stdout)
    assert shown["state"] == "completed" and shown["counts"]["succeeded"] == 2

    # 2. declined for pilot: never installed there, by no deployment and not by hand. The pilot
    # repository x1 uses does not list the version: apt-get upgrade run by hand leaves jq as it is,
    # and asking apt for that version by name fails.
    state, root = machines["x1"]
    assert "repo/pilot" in (root / "etc/apt/sources.list.d/uus.list").read_text()
    apt_by_hand(root, state, "update")
    apt_by_hand(root, state, "upgrade")
    assert jq("x1") == OLD
    refused = apt_by_hand(root, state, "install", f"jq={NEW}", check=False)
    assert f"Version '{NEW}' for 'jq' was not found" in refused and jq("x1") == OLD
    r = server.cli("deployments", "create", "--target", "machine:x1", "--action", "install", "--package", f"jq={NEW}")
    assert r.returncode == 1 and "is declined for ring 'pilot' (breaks our reports)" in r.stderr
    pilot = json.loads(ok(server.cli("deployments", "create", "--target", "ring:pilot", "--json")))
    assert [(j["machine"], j["state"]) for j in pilot["jobs"]] == [("x1", "skipped")]

    # 3. promotion: production approves what test approved; a deployment brings it to p1, not x1
    ok(server.cli("rings", "promote", "test", "--to", "production"))
    json.loads(ok(server.cli("deployments", "create", "--target", "ring:production", "--json")))
    end = time.monotonic() + 90
    while time.monotonic() < end and jq("p1") != NEW:
        cycle("p1", "x1")
        time.sleep(1)
    assert (jq("p1"), jq("x1")) == (NEW, OLD)
    # 4. an uploaded private package deployed to a group lands on exactly that group
    ok(server.cli("packages", "upload", str(DEBS / "hello_2.10-3_amd64.deb"), "--json"))
    ok(server.cli("groups", "create", "mixed", "--machine", "t2", "--machine", "x1"))
    ok(server.cli("deployments", "create", "--target", "group:mixed", "--action", "install", "--package", "hello"))
    end = time.monotonic() + 90
    while time.monotonic() < end and not (
        version_of(machines["t2"][1], "hello") and version_of(machines["x1"][1], "hello")
    ):
        cycle("t2", "x1", "t1", "p1")
        time.sleep(1)
    assert [version_of(machines[h][1], "hello") for h in ("t1", "t2", "p1", "x1")] == [None, "2.10-3", None, "2.10-3"]

    events = json.loads(ok(server.cli("audit", "list", "--action", "approval.", "--json")))
    assert {e["action"] for e in events} == {"approval.approved", "approval.declined"}
    declines = [e for e in events if e["action"] == "approval.declined"]
    assert {(e["target"], e["reason"], e["data"]["package"]) for e in declines} == {
        ("ring:pilot", "breaks our reports", "jq"),
        ("ring:pilot", "breaks our reports", "libjq1"),
    }
    assert all(e["actor_name"].startswith("cli:") and e["time"] for e in events)


def test_rollback_returns_the_machines_to_their_previous_versions(server, tmp_path):
    """An approved update is deployed to ring `test`; rolling that deployment back reinstalls the old
    versions (never approved: kept published for the rollback) with apt-get --allow-downgrades."""
    up = tmp_path / "up"
    www, keyring = build_upstream(up)
    try:
        with serve_directory(www) as lb:
            ok(
                server.cli(
                    "upstream", "add", "deb", f"{lb.url}/debian", "--suites", "bookworm,bookworm-security",
                    "--components", "main", "--architectures", "amd64", "--keyring", str(keyring),
                )
            )  # fmt: skip
            ok(server.cli("upstream", "sync", "deb"))
            run_rollback(server, tmp_path)
    finally:
        signing_agent_stop(up / "g")


def run_rollback(server: ServeProcess, tmp_path: Path) -> None:
    token = json.loads(ok(server.cli("tokens", "create", "--json")))["token"]
    url = f"http://127.0.0.1:{server.port}"
    machines = {}
    for h in ("t1", "p1"):
        root = make_root(tmp_path / "roots" / h, h)
        dpkg(root, "-i", str(DEBS / f"libjq1_{OLD}_amd64.deb"), str(DEBS / f"jq_{OLD}_amd64.deb"))
        state = tmp_path / "state" / h
        ok(agent(state, root, "register", "--server", url, "--token", token))
        ok(agent(state, root, "check-in"))
        machines[h] = (state, root)
    ok(server.cli("machines", "set-ring", "t1", "test"))

    def versions(h):
        return version_of(machines[h][1], "jq"), version_of(machines[h][1], "libjq1")

    def run_until(dep_id, done):
        end = time.monotonic() + 90
        while time.monotonic() < end and not done():
            for h in machines:
                ok(agent(*machines[h], "check-in"))
            time.sleep(1)
        return json.loads(ok(server.cli("deployments", "show", str(dep_id), "--json")))

    for pkg in ("jq", "libjq1"):
        ok(server.cli("approvals", "set", "test", pkg, NEW, "approved"))
    dep = json.loads(ok(server.cli("deployments", "create", "--target", "ring:test", "--json")))
    shown = run_until(dep["id"], lambda: versions("t1") == (NEW, NEW))
    assert shown["state"] == "completed" and versions("t1") == (NEW, NEW) and versions("p1") == (OLD, OLD), shown

    back = json.loads(ok(server.cli("deployments", "rollback", str(dep["id"]), "--reason", "regression", "--json")))
    assert back["action"] == "rollback" and back["id"] != dep["id"]
    (job,) = back["jobs"]
    assert job["machine"] == "t1" and job["type"] == "apt_install"
    assert sorted(job["params"]["packages"]) == [f"jq={OLD}", f"libjq1={OLD}"]
    assert job["params"]["allow_downgrades"] is True
    shown = run_until(back["id"], lambda: versions("t1") == (OLD, OLD))
    assert versions("t1") == (OLD, OLD) and versions("p1") == (OLD, OLD), (shown, server.cli("jobs", "list").stdout)

    # the rollback's result is recorded: the job, its package changes and the audit trail
    assert shown["state"] == "completed" and shown["counts"]["succeeded"] == 1, shown
    (job,) = shown["jobs"]
    assert job["state"] == "succeeded" and job["exit_code"] == 0
    assert sorted((c["name"], c["before"], c["after"]) for c in job["package_changes"]) == [
        ("jq", NEW, OLD),
        ("libjq1", NEW, OLD),
    ]
    events = json.loads(ok(server.cli("audit", "list", "--target", "machine:t1", "--json")))
    results = [e for e in events if e["action"] == "job.result" and e["data"]["job"] == job["id"]]
    assert len(results) == 1 and results[0]["data"]["status"] == "succeeded"
    downgrades = {
        (e["data"]["name"], e["data"]["before"], e["data"]["after"])
        for e in events
        if e["action"] == "package.change" and e["data"]["job"] == job["id"]
    }
    assert downgrades == {("jq", NEW, OLD), ("libjq1", NEW, OLD)}
    rolled = json.loads(ok(server.cli("audit", "list", "--action", "deployment.rollback", "--json")))
    assert [(e["target"], e["reason"]) for e in rolled] == [(f"deployment:{dep['id']}", "regression")]
