"""A protocol client over Django's test client: it sends the messages protocol/v1 describes, with
data the test chooses (the real agent against a live server is in server/tests/system/)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from uus.inventory import packages as pk
from uus.inventory import services as inventory_services
from uus.inventory.models import (
    EnrollmentToken,
    InventoryChange,
    Machine,
    Package,
    PackageChunk,
    PackageChunkMember,
    PackageSet,
    PackageSetChunk,
)
from uus.inventory.tests.factories import as_json, facts_make

from ..models import AgentMessage

EXAMPLES = Path(__file__).resolve().parents[4] / "protocol" / "v1" / "examples"
BASE = "/api/agent/v1/"


def example(name: str):
    return json.loads((EXAMPLES / name).read_text())


def envelope(**fields) -> dict:
    return {
        "protocol_version": 1,
        "agent_version": "0.1.0",
        "message_id": uuid.uuid4().hex,
        "sent_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **fields,
    }


class AgentClient:
    def __init__(self, client):
        self.client = client
        self.client_id = self.secret = self.exchange_token = None
        self.hostname = None

    def post(self, step: str, body, *, auth: bool = True, raw: bytes | None = None, **extra):
        headers = {}
        if auth and self.client_id:
            headers["HTTP_AUTHORIZATION"] = f"Machine {self.client_id}:{self.secret}"
        headers.update(extra)
        data = raw if raw is not None else json.dumps(body)
        return self.client.post(BASE + step, data=data, content_type="application/json", **headers)

    def register(self, token: str, hostname: str = "web-01", **facts):
        r = self.post("register/", envelope(token=token, facts=facts_make(hostname, **facts)), auth=False)
        if r.status_code == 201:
            d = r.json()
            self.client_id, self.secret, self.exchange_token = d["client_id"], d["secret"], d["exchange_token"]
            self.hostname = hostname
        return r

    def check_in_body(self, inventory_hash: str, previous: str | None = None, job_results=(), **facts) -> dict:
        return envelope(
            exchange_token=self.exchange_token,
            facts=facts_make(self.hostname, **facts),
            inventory_hash=inventory_hash,
            previous_inventory_hash=previous,
            job_results=list(job_results),
        )

    def check_in(self, inventory_hash: str, previous: str | None = None, job_results=(), **facts):
        r = self.post("check-in/", self.check_in_body(inventory_hash, previous, job_results, **facts))
        if r.status_code == 200:
            self.exchange_token = r.json()["next_exchange_token"]
        return r

    def full(self, entries: list[pk.Entry], inventory_hash: str | None = None):
        return self.post(
            "inventory/",
            envelope(
                kind="full", inventory_hash=inventory_hash or pk.inventory_hash(entries), packages=as_json(entries)
            ),
        )

    def delta(
        self,
        base: list[pk.Entry],
        after: list[pk.Entry],
        inventory_hash: str | None = None,
        base_hash: str | None = None,
    ):
        old = {(e[0], e[1]): e for e in base}
        new = {(e[0], e[1]): e for e in after}
        added = [e for k, e in sorted(new.items()) if old.get(k) != e]
        removed = [{"name": k[0], "architecture": k[1]} for k in sorted(old) if k not in new]
        return self.post(
            "inventory/",
            envelope(
                kind="delta",
                inventory_hash=inventory_hash or pk.inventory_hash(after),
                base_hash=base_hash or pk.inventory_hash(base),
                added=as_json(added),
                removed=removed,
            ),
        )

    @property
    def machine(self) -> Machine:
        return Machine.objects.get(client_id=self.client_id)


@pytest.fixture
def agent(client, db):
    return AgentClient(client)


@pytest.fixture
def enroll_key(db):
    return inventory_services.enrollment_token_create(comment="tests")[1]


@pytest.fixture
def registered(agent, enroll_key):
    r = agent.register(enroll_key)
    assert r.status_code == 201, r.content
    return agent


def snapshot() -> dict:
    """Everything an agent request can change: row counts and every machine's and token's columns."""
    models = (
        Machine,
        Package,
        PackageChunk,
        PackageChunkMember,
        PackageSet,
        PackageSetChunk,
        InventoryChange,
        EnrollmentToken,
        AgentMessage,
    )
    return {
        "counts": {m.__name__: m.objects.count() for m in models},
        "machines": list(Machine.objects.order_by("pk").values()),
        "tokens": list(EnrollmentToken.objects.order_by("pk").values()),
    }
