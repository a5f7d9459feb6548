"""protocol/v1/examples/*.json from the server's side: it accepts every example request and answers
with exactly the example answers' keys (the agent's tests check the same files from its side)."""

import pytest

from uus.inventory import packages as pk

from .conftest import envelope, example

pytestmark = pytest.mark.django_db


def fresh(msg: dict) -> dict:
    """An example with a new message_id and sent_at (both are checked: replay and clock)."""
    e = envelope()
    return {**msg, "message_id": e["message_id"], "sent_at": e["sent_at"]}


def test_register_example(agent, enroll_key):
    r = agent.post("register/", fresh({**example("register-request.json"), "token": enroll_key}), auth=False)
    assert r.status_code == 201, r.content
    assert set(r.json()) == set(example("register-response.json"))
    assert isinstance(r.json()["check_in_interval"], int) and r.json()["check_in_interval"] > 0


def test_check_in_and_inventory_examples(agent, enroll_key):
    reg = agent.post("register/", fresh({**example("register-request.json"), "token": enroll_key}), auth=False)
    creds = reg.json()
    agent.client_id, agent.secret = creds["client_id"], creds["secret"]

    check_in = fresh(
        {**example("check-in-request.json"), "exchange_token": creds["exchange_token"], "previous_inventory_hash": None}
    )
    r = agent.post("check-in/", check_in)
    assert r.status_code == 200, r.content
    answer = r.json()
    assert set(answer) == set(example("check-in-response.json")) == set(example("check-in-response-idle.json"))
    assert answer["inventory"] == "full" and answer["jobs"] == [] and answer["apt"] is None
    assert answer["acked_job_results"] == [x["job_id"] for x in check_in["job_results"]]

    r = agent.post("inventory/", fresh(example("inventory-full-request.json")))
    assert r.status_code == 200, r.content
    assert set(r.json()) == set(example("inventory-response.json"))
    assert r.json() == {"inventory_hash": example("inventory-full-request.json")["inventory_hash"], "accepted": True}

    check_in = fresh({**example("check-in-request.json"), "exchange_token": answer["next_exchange_token"]})
    r = agent.post("check-in/", check_in)
    assert r.json()["inventory"] == "delta"  # previous_inventory_hash is the full example's hash
    r = agent.post("inventory/", fresh(example("inventory-delta-request.json")))
    assert r.status_code == 200, r.content
    assert r.json() == example("inventory-response.json")


def test_error_examples_have_the_envelope_the_server_uses(registered):
    r = registered.post(
        "inventory/", envelope(kind="delta", inventory_hash="1" * 64, base_hash="2" * 64, added=[], removed=[])
    )
    assert r.status_code == 409
    assert set(r.json()) == set(example("error-base-mismatch.json"))
    assert set(r.json()["error"]) == set(example("error-base-mismatch.json")["error"])
    assert set(r.json()["error"]["details"]) == set(example("error-base-mismatch.json")["error"]["details"])


def test_example_hash_vector_matches_the_server():
    full = example("inventory-full-request.json")
    assert pk.inventory_hash(pk.entries_from_json(full["packages"])) == full["inventory_hash"]
