"""Agent endpoints: the happy path, then every kind of bad request, each asserting nothing changed."""

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from uus.inventory import packages as pk
from uus.inventory import selectors as inventory_selectors
from uus.inventory import services as inventory_services
from uus.inventory.models import Machine
from uus.inventory.tests.factories import as_json, entries, entry

from ..models import AgentMessage
from ..services import agent_messages_prune
from ..views import MAX_BODY_BYTES
from .conftest import envelope, snapshot

pytestmark = pytest.mark.django_db

BASE = entries(
    entry("bash", "5.2.15-2+b8", source_version="5.2.15-2"),
    entry("jq", "1.6-2.1+deb12u2"),
    entry("libjq1", "1.6-2.1+deb12u2", source="jq"),
    entry("sl", "5.02-1+b1"),
)
UPGRADED = entries(
    *[e for e in BASE if e[0] not in ("jq", "sl")], entry("jq", "1.6-2.1+deb12u3"), entry("hello", "2.10-3")
)


def code(r) -> str:
    return r.json()["error"]["code"]


def test_register_check_in_upload_then_delta(registered):
    a = registered
    r = a.check_in(pk.inventory_hash(BASE))
    assert r.json()["inventory"] == "full"
    assert a.full(BASE).json() == {"inventory_hash": pk.inventory_hash(BASE), "accepted": True}
    assert a.check_in(pk.inventory_hash(BASE), pk.inventory_hash(BASE)).json()["inventory"] == "ok"
    assert a.check_in(pk.inventory_hash(UPGRADED), pk.inventory_hash(BASE)).json()["inventory"] == "delta"
    r = a.delta(BASE, UPGRADED)
    assert r.status_code == 200, r.content
    m = a.machine
    assert m.inventory_hash == pk.inventory_hash(UPGRADED) and m.package_count == len(UPGRADED)
    (change,) = inventory_selectors.machine_history(machine=m)
    assert {(c.kind, c.name) for c in inventory_selectors.inventory_change_packages(change)} == {
        ("upgraded", "jq"),
        ("removed", "sl"),
        ("installed", "hello"),
    }


def test_paths_work_without_the_trailing_slash(registered):
    r = registered.post("check-in", registered.check_in_body(pk.inventory_hash(BASE)))
    assert r.status_code == 200


def test_group_of_the_token_is_the_machines_group(agent):
    _, key = inventory_services.enrollment_token_create(group="lab")
    agent.register(key)
    assert agent.machine.enrollment_group == "lab"


# -- registration refused ---------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["unknown", "expired", "used up", "revoked"])
def test_refused_enrollment_tokens(agent, how):
    token, key = inventory_services.enrollment_token_create(
        max_uses=1, expires=timezone.now() - timedelta(minutes=1) if how == "expired" else None
    )
    if how == "used up":
        assert agent.register(key).status_code == 201
    if how == "revoked":
        inventory_services.enrollment_token_revoke(token=token)
    before = snapshot()
    r = agent.register("uusenr_bogus" if how == "unknown" else key, hostname="intruder")
    assert r.status_code == 403 and code(r) == "enrollment_refused"
    assert snapshot() == before


# -- malformed, wrong types, unknown protocol -----------------------------------------------------


def _check_in(a, **changes):
    body = a.check_in_body(pk.inventory_hash(BASE))
    for k, v in changes.items():
        if v is KeyError:
            body.pop(k)
        else:
            body[k] = v
    return body


BAD_CHECK_INS = [
    ("protocol 2", {"protocol_version": 2}, 426, "unsupported_protocol_version"),
    ("protocol as text", {"protocol_version": "1"}, 400, "invalid_request"),
    ("protocol missing", {"protocol_version": KeyError}, 400, "invalid_request"),
    ("message id not a uuid", {"message_id": "abc"}, 400, "invalid_request"),
    ("message id missing", {"message_id": KeyError}, 400, "invalid_request"),
    ("sent_at not a time", {"sent_at": "yesterday"}, 400, "invalid_request"),
    ("sent_at missing", {"sent_at": KeyError}, 400, "invalid_request"),
    ("clock 20 min slow", {"sent_at": (datetime.now(UTC) - timedelta(minutes=20)).isoformat()}, 400, "clock_skew"),
    ("clock 20 min fast", {"sent_at": (datetime.now(UTC) + timedelta(minutes=20)).isoformat()}, 400, "clock_skew"),
    ("facts not an object", {"facts": ["web-01"]}, 400, "invalid_request"),
    ("hostname a number", {"facts": {"hostname": 7}}, 400, "invalid_request"),
    ("reboot_required a string", {"facts": {"hostname": "x", "reboot_required": "yes"}}, 400, "invalid_request"),
    ("apt_sources not strings", {"facts": {"hostname": "x", "apt_sources": [1]}}, 400, "invalid_request"),
    ("hash too short", {"inventory_hash": "abc"}, 400, "invalid_request"),
    ("hash upper case", {"inventory_hash": "A" * 64}, 400, "invalid_request"),
    ("previous hash a number", {"previous_inventory_hash": 5}, 400, "invalid_request"),
    ("exchange token missing", {"exchange_token": KeyError}, 400, "invalid_request"),
    ("job_results an object", {"job_results": {"job_id": "x"}}, 400, "invalid_request"),
]


@pytest.mark.parametrize(
    ("changes", "status", "error"), [b[1:] for b in BAD_CHECK_INS], ids=[b[0] for b in BAD_CHECK_INS]
)
def test_bad_check_ins_change_nothing(registered, changes, status, error):
    body = _check_in(registered, **changes)
    before = snapshot()
    r = registered.post("check-in/", body)
    assert (r.status_code, code(r)) == (status, error), r.content
    assert set(r.json()["error"]) == {"code", "message", "details"} and r.json()["error"]["message"]
    assert snapshot() == before


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"", b"[1, 2]", b'"text"', b"\xff\xfe", b"[" * 100000],
    ids=["truncated", "empty", "array", "string", "not utf-8", "deeply nested"],
)
@pytest.mark.parametrize("step", ["register/", "check-in/", "inventory/"])
def test_malformed_bodies(registered, raw, step):
    before = snapshot()
    r = registered.post(step, None, raw=raw)
    assert r.status_code == 400 and code(r) == "invalid_request", r.content
    assert snapshot() == before


def _pkg(**changes):
    p = {
        "name": "hello",
        "architecture": "amd64",
        "version": "2.10-3",
        "source": "hello",
        "source_version": "2.10-3",
        "status": "installed",
    }
    p.update(changes)
    return p


BAD_PACKAGES = [
    ("uppercase name", _pkg(name="Hello")),
    ("name with slash", _pkg(name="../etc")),
    ("empty name", _pkg(name="")),
    ("version with space", _pkg(version="2.10 3")),
    ("epoch not a number", _pkg(version="a:2.10-3")),
    ("empty revision", _pkg(version="2.10-")),
    ("empty version", _pkg(version="")),
    ("version a number", _pkg(version=2.1)),
    ("source version bad", _pkg(source_version="1:")),
    ("unknown status", _pkg(status="removed")),
    ("missing field", {k: v for k, v in _pkg().items() if k != "source"}),
    ("null architecture", _pkg(architecture=None)),
    ("not an object", "hello"),
]


@pytest.mark.parametrize("bad", [b[1] for b in BAD_PACKAGES], ids=[b[0] for b in BAD_PACKAGES])
def test_invalid_packages_are_refused(registered, bad):
    registered.full(BASE)
    before = snapshot()
    packages = [*as_json(BASE), bad]
    r = registered.post("inventory/", envelope(kind="full", inventory_hash=pk.inventory_hash(BASE), packages=packages))
    assert (r.status_code, code(r)) == (400, "invalid_request"), r.content
    assert "packages[4]" in r.json()["error"]["details"]
    r = registered.post(
        "inventory/",
        envelope(
            kind="delta",
            inventory_hash=pk.inventory_hash(BASE),
            base_hash=pk.inventory_hash(BASE),
            added=[bad],
            removed=[],
        ),
    )
    assert (r.status_code, code(r)) == (400, "invalid_request"), r.content
    assert snapshot() == before


def test_bad_inventory_shapes(registered):
    registered.full(BASE)
    before = snapshot()
    for body in (
        envelope(kind="partial", inventory_hash=pk.inventory_hash(BASE), packages=[]),
        envelope(kind="full", inventory_hash=pk.inventory_hash(BASE), packages={"bash": "5"}),
        envelope(kind="full", inventory_hash="xyz", packages=[]),
        envelope(kind="delta", inventory_hash=pk.inventory_hash(BASE), base_hash=None, added=[], removed=[]),
        envelope(
            kind="delta",
            inventory_hash=pk.inventory_hash(BASE),
            base_hash=pk.inventory_hash(BASE),
            added=[],
            removed=[{"name": "Bad Name", "architecture": "amd64"}],
        ),
        envelope(kind="full", inventory_hash=pk.inventory_hash(BASE), packages=[*as_json(BASE), *as_json(BASE)]),
    ):
        r = registered.post("inventory/", body)
        assert (r.status_code, code(r)) == (400, "invalid_request"), r.content
    assert snapshot() == before


# -- hashes and bases ----------------------------------------------------------------------------------


def test_full_upload_with_the_wrong_hash(registered):
    registered.full(BASE)
    before = snapshot()
    r = registered.full(UPGRADED, inventory_hash=pk.inventory_hash(BASE))
    assert (r.status_code, code(r)) == (400, "hash_mismatch")
    assert r.json()["error"]["details"]["computed"] == pk.inventory_hash(UPGRADED)
    assert snapshot() == before


def test_delta_with_an_unknown_base(registered):
    registered.full(BASE)
    before = snapshot()
    r = registered.delta(UPGRADED, BASE)  # relative to an inventory the server never had
    assert (r.status_code, code(r)) == (409, "base_mismatch")
    assert r.json()["error"]["details"] == {
        "base_hash": pk.inventory_hash(UPGRADED),
        "known_hash": pk.inventory_hash(BASE),
    }
    assert snapshot() == before


def test_delta_that_does_not_give_its_hash(registered):
    registered.full(BASE)
    before = snapshot()
    r = registered.delta(BASE, UPGRADED, inventory_hash=pk.inventory_hash(BASE[:1]))
    assert (r.status_code, code(r)) == (409, "hash_mismatch")  # the agent then sends its full inventory
    assert snapshot() == before


def test_first_delta_without_any_inventory(registered):
    before = snapshot()
    assert code(registered.delta(BASE, UPGRADED)) == "base_mismatch"
    assert snapshot() == before


# -- authentication ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Token abc",
        "Machine ",
        "Machine nocolon",
        "Machine m-123:wrong-secret",
        "Machine unknown:secret",
        "Basic dXNlcjpwYXNz",
    ],
)
@pytest.mark.parametrize("step", ["check-in/", "inventory/"])
def test_bad_credentials_are_401_and_change_nothing(registered, header, step):
    body = (
        registered.check_in_body(pk.inventory_hash(BASE))
        if step == "check-in/"
        else envelope(kind="full", inventory_hash=pk.inventory_hash(BASE), packages=as_json(BASE))
    )
    before = snapshot()
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    registered.client_id, saved = None, registered.client_id
    if header == "Machine m-123:wrong-secret":
        extra["HTTP_AUTHORIZATION"] = f"Machine {saved}:wrong-secret"
    r = registered.post(step, body, **extra)
    assert (r.status_code, code(r)) == (401, "unauthorized"), r.content
    assert snapshot() == before


def test_revoked_machine(registered):
    registered.full(BASE)
    inventory_services.machine_revoke(machine=registered.machine)
    before = snapshot()
    for r in (registered.check_in(pk.inventory_hash(BASE)), registered.full(UPGRADED)):
        assert (r.status_code, code(r)) == (401, "machine_revoked")
    assert snapshot() == before


def test_registration_needs_no_credentials_but_the_others_do(agent):
    r = agent.post("check-in/", envelope(), auth=False)
    assert r.status_code == 401 and code(r) == "unauthorized"


# -- replays, clones, size ---------------------------------------------------------------------------


def test_replayed_message_is_refused(registered):
    body = registered.check_in_body(pk.inventory_hash(BASE))
    assert registered.post("check-in/", body).status_code == 200
    before = snapshot()
    r = registered.post("check-in/", body)
    assert (r.status_code, code(r)) == (409, "replayed")
    assert snapshot() == before


def test_replayed_register_is_refused(agent, enroll_key):
    from uus.inventory.tests.factories import facts_make

    body = envelope(token=enroll_key, facts=facts_make("web-09"))
    assert agent.post("register/", body, auth=False).status_code == 201
    before = snapshot()
    r = agent.post("register/", body, auth=False)
    assert (r.status_code, code(r)) == (409, "replayed")
    assert snapshot() == before


def test_message_ids_are_forgotten_after_the_clock_window(registered):
    registered.check_in(pk.inventory_hash(BASE))
    AgentMessage.objects.update(received=int((timezone.now() - timedelta(hours=2)).timestamp()))
    assert agent_messages_prune() == 2 and not AgentMessage.objects.exists()


def test_clone_is_flagged_and_nothing_else_changes(registered, caplog):
    old_token = registered.exchange_token
    registered.check_in(pk.inventory_hash(BASE))
    registered.check_in(pk.inventory_hash(BASE))  # old_token is now two tokens behind
    before = snapshot()
    clone_body = registered.check_in_body(pk.inventory_hash(UPGRADED))
    clone_body["facts"]["hostname"] = "clone-of-web-01"
    clone_body["exchange_token"] = old_token
    with caplog.at_level(logging.WARNING, logger="uus.inventory"):
        r = registered.post("check-in/", clone_body)
    assert (r.status_code, code(r)) == (409, "clone_suspected")
    after = snapshot()
    flagged = after["machines"][0]
    assert flagged["is_clone_suspected"] and flagged["clone_suspected_at"]
    for key in ("is_clone_suspected", "clone_suspected_at", "updated"):
        flagged.pop(key), before["machines"][0].pop(key)
    assert after == before  # facts, tokens, inventory, message ids: untouched
    assert "clone suspected" in caplog.text
    assert registered.check_in(pk.inventory_hash(BASE)).status_code == 200  # the current holder goes on


def test_oversized_body_is_413(registered):
    before = snapshot()
    big = b'{"x": "' + b"a" * (MAX_BODY_BYTES + 1) + b'"}'
    r = registered.post("inventory/", None, raw=big)
    assert (r.status_code, code(r)) == (413, "request_too_large")
    assert snapshot() == before


def test_get_is_405(client):
    r = client.get("/api/agent/v1/check-in/")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


# -- job results ----------------------------------------------------------------------------------------


def test_well_formed_job_results_are_acknowledged(registered):
    good = {
        "job_id": str(uuid.uuid4()),
        "status": "succeeded",
        "error": None,
        "exit_code": 0,
        "output": "",
        "started_at": None,
        "finished_at": "2026-01-01T00:00:00Z",
        "packages": [],
        "reboot_required": False,
    }
    bad = {"job_id": 12, "status": "succeeded"}
    weird = {"job_id": "j-2", "status": "exploded"}
    r = registered.check_in(pk.inventory_hash(BASE), job_results=[good, bad, weird])
    assert r.json()["acked_job_results"] == [good["job_id"]]


# -- secrets and query budget ---------------------------------------------------------------------------


def test_no_secret_is_logged(agent, enroll_key, caplog):
    with caplog.at_level(logging.DEBUG):
        agent.register(enroll_key)
        agent.check_in(pk.inventory_hash(BASE))
        agent.full(BASE)
        agent.post("check-in/", {"bad": 1})
    for secret in (agent.secret, agent.exchange_token, enroll_key):
        assert secret not in caplog.text


# Tables the check-in hooks (job results, jobs, apt configuration) read and write: other apps' budgets.
HOOK_TABLES = ("deployments_", "approvals_", "repos_")


def test_check_in_query_budget(registered):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    registered.full(BASE)
    registered.check_in(pk.inventory_hash(BASE), pk.inventory_hash(BASE))
    with CaptureQueriesContext(connection) as queries:
        r = registered.check_in(pk.inventory_hash(BASE), pk.inventory_hash(BASE))
    assert r.json()["inventory"] == "ok"
    own = [q["sql"] for q in queries if not any(t in q["sql"] for t in HOOK_TABLES)]
    # auth, lock, message id, update, and the savepoints + releases of the two transactional services
    assert len(own) <= 8, "\n".join(own)
    assert not any("inventory_package" in sql for sql in own)  # an unchanged inventory reads no packages


def test_register_creates_a_machine_per_machine_id(agent, enroll_key, client):
    from .conftest import AgentClient

    assert agent.register(enroll_key, hostname="a").status_code == 201
    other = AgentClient(client)
    assert other.register(enroll_key, hostname="b").status_code == 201
    assert Machine.objects.count() == 2
    assert json.loads(json.dumps(agent.check_in(pk.inventory_hash(BASE)).json()))["inventory"] == "full"
