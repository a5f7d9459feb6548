"""protocol/v1/examples/*.json are the contract: the agent must build exactly those key sets and
read those answers. The server's tests check the same files from the other side."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from uus_agent import dpkg as agent_dpkg
from uus_agent import facts, protocol
from uus_agent.apt import Apt
from uus_agent.jobs import JobRunner
from uus_agent.state import State

from conftest import AGENT_DIR, deb, dpkg

EXAMPLES = AGENT_DIR.parent / "protocol" / "v1" / "examples"


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text())


def same_shape(expected: Any, built: Any, where: str = "$") -> None:
    """Same keys at every level; list items are compared with the example's first item."""
    if isinstance(expected, dict):
        assert isinstance(built, dict), where
        assert set(built) == set(expected), "%s: built %s, example %s" % (
            where,
            sorted(built),
            sorted(expected),
        )
        for k in expected:
            if expected[k] is not None and built[k] is not None:
                same_shape(expected[k], built[k], "%s.%s" % (where, k))
    elif isinstance(expected, list):
        assert isinstance(built, list), where
        if expected:
            for i, item in enumerate(built):
                same_shape(expected[0], item, "%s[%d]" % (where, i))
    else:
        assert type(built) is type(expected) or {type(built), type(expected)} <= {int, float}, (
            "%s: %r vs %r" % (where, built, expected)
        )


@pytest.fixture
def machine(root: Path, state_dir: Path):
    """A root that has seen real changes: a job result with package changes, a real delta."""
    st = State(str(state_dir))
    (root / "etc" / "timezone").write_text(
        "Europe/Paris\n"
    )  # optional fact: present, so its type is checked
    base = agent_dpkg.read_inventory(str(root))
    dpkg(root, "-i", deb("hello_"))
    current = agent_dpkg.read_inventory(str(root))
    runner = JobRunner(st, Apt(str(root), st.path), str(root))
    result = runner.process({"id": "job-1", "type": "reboot", "params": {}})
    assert result is not None
    result["packages"] = agent_dpkg.version_changes(
        agent_dpkg.versions(base), agent_dpkg.versions(current)
    )
    return root, st, base, current, result


def test_envelope_fields() -> None:
    env = protocol.envelope()
    assert env["protocol_version"] == 1 and re.fullmatch(r"[0-9a-f]{32}", env["message_id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", env["sent_at"])
    assert protocol.envelope()["message_id"] != env["message_id"]


def test_register_request_matches_example(machine) -> None:
    root, st, *_ = machine
    same_shape(
        example("register-request.json"),
        protocol.register_request("tok", facts.gather(str(root), st)),
    )


def test_check_in_request_matches_example(machine) -> None:
    root, st, base, current, result = machine
    msg = protocol.check_in_request(
        "xt",
        facts.gather(str(root), st),
        agent_dpkg.inventory_hash(current),
        agent_dpkg.inventory_hash(base),
        [result],
    )
    same_shape(example("check-in-request.json"), msg)
    assert st.outbox()[0].keys() == example("check-in-request.json")["job_results"][0].keys()


def test_inventory_requests_match_examples(machine) -> None:
    root, _st, _base, current, _result = machine
    full = protocol.inventory_full_request(agent_dpkg.inventory_hash(current), current)
    same_shape(example("inventory-full-request.json"), full)
    dpkg(root, "-r", "hello")
    dpkg(root, "-i", deb("sl_"))
    after = agent_dpkg.read_inventory(str(root))
    added, removed = agent_dpkg.compute_delta(current, after)
    assert added and removed
    delta = protocol.inventory_delta_request(
        agent_dpkg.inventory_hash(after), agent_dpkg.inventory_hash(current), added, removed
    )
    same_shape(example("inventory-delta-request.json"), delta)


def test_answers_in_examples_are_read() -> None:
    reg = protocol.parse_register_response(example("register-response.json"))
    assert reg["check_in_interval"] == 3600 and reg["machine"]
    ans = protocol.parse_check_in_response(
        dict(example("check-in-response.json"), unknown_future_field=1)
    )
    assert ans["inventory"] == "delta" and ans["apt"]["key_url"].endswith("/repo/key.asc")
    assert {j["type"] for j in ans["jobs"]} == {
        "apt_upgrade",
        "apt_install",
        "apt_remove",
        "apt_update",
        "reboot",
    }
    for j in ans["jobs"]:
        protocol.parse_time(j["deadline"])
    broken = dict(example("check-in-response.json"), jobs=[{"type": "apt_update"}, "x"])
    assert protocol.parse_check_in_response(broken)["jobs"] == []  # skipped, answer still usable
    idle = protocol.parse_check_in_response(example("check-in-response-idle.json"))
    assert idle["inventory"] == "ok" and idle["apt"] is None and idle["jobs"] == []
    assert protocol.parse_inventory_response(example("inventory-response.json"))["accepted"] is True
    for name in ("error-base-mismatch.json", "error-unauthorized.json", "error-invalid-token.json"):
        err = protocol.parse_error(example(name))
        assert err["code"] in ("base_mismatch", "unauthorized", "invalid_token") and err["message"]


def test_examples_are_a_consistent_hash_vector() -> None:
    full = example("inventory-full-request.json")
    delta = example("inventory-delta-request.json")
    assert agent_dpkg.inventory_hash(full["packages"]) == full["inventory_hash"]
    assert delta["base_hash"] == full["inventory_hash"]
    after = agent_dpkg.apply_delta(full["packages"], delta["added"], delta["removed"])
    assert agent_dpkg.inventory_hash(after) == delta["inventory_hash"]
    assert example("inventory-response.json")["inventory_hash"] == delta["inventory_hash"]
    check_in = example("check-in-request.json")
    assert check_in["previous_inventory_hash"] == full["inventory_hash"]
    assert check_in["inventory_hash"] == delta["inventory_hash"]


def test_every_example_is_covered() -> None:
    here = Path(__file__).read_text()
    for path in EXAMPLES.glob("*.json"):
        assert '"%s"' % path.name in here, "no contract test reads %s" % path.name


def test_timestamps_as_servers_write_them() -> None:
    for text in (
        "2026-11-25T09:30:00Z",
        "2026-11-25T09:30:00.123Z",
        "2026-11-25T09:30:00.123456+00:00",
        "2026-11-25T10:30:00+01:00",
        "2026-11-25T09:30:00",
    ):
        ts = protocol.parse_time(text)
        assert ts is not None and protocol.isoformat(ts) == "2026-11-25T09:30:00Z"
    assert protocol.parse_time(None) is None
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_time("yesterday")


def test_output_is_cut_to_last_64k() -> None:
    text = "é" * 40000 + "the end\n"
    cut = protocol.truncate_output(text)
    assert len(cut.encode()) <= 64 * 1024 and cut.endswith("the end\n")
