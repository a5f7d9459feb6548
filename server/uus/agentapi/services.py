"""The agent protocol's steps: each request is one transaction (nothing half-stored), after checks
that need no database (body, envelope, clock) and a read-only credentials check.

Hooks for later work, called inside the check-in's transaction:
- `job_results_record(machine, results)` stores job results and returns the ids to acknowledge;
- `jobs_for_machine(machine)` lists jobs to deliver;
- `apt_for_machine(machine)` gives the apt configuration to apply, or None.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
import uuid
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from uus.inventory import services as inventory
from uus.inventory.exceptions import CloneSuspected
from uus.inventory.models import Machine

from .exceptions import ClockSkew, Replayed
from .models import AgentMessage
from .v1.serializers import CheckInRequest, Envelope, InventoryRequest, RegisterRequest, job_result_is_well_formed

log = logging.getLogger(__name__)

MAX_CLOCK_SKEW = timedelta(minutes=15)
MESSAGE_MEMORY = 2 * MAX_CLOCK_SKEW + timedelta(minutes=30)  # a replay older than this fails the clock check


# -- hooks (deployments and approvals fill these in) ---------------------------------------------


def job_results_record(machine: Machine, results: list[dict]) -> list[str]:
    """Store job results, idempotently by job id (uus.deployments: the first result wins), and return
    the ids the agent may forget. A malformed result is not acknowledged (the agent keeps it) and is logged."""
    from uus.deployments.services import job_results_record as record

    good = []
    for r in results:
        if job_result_is_well_formed(r):
            good.append(r)
        else:
            log.warning("machine %s sent a malformed job result; it is not acknowledged", machine.hostname)
    return record(machine, good) if good else []


# The two hooks below run at every check-in, a thousand times a second at fleet scale, and most of
# the time they find nothing new: each first asks one plain SQL question, written once per process
# (the ORM's query building cost more than the queries themselves; docs/performance.md, "Fleet").


@functools.cache
def _open_jobs_sql(vendor: str) -> str:
    from uus.deployments.models import MachineJob
    from uus.deployments.services import OPEN_JOB_STATES

    q = connection.ops.quote_name
    opts = MachineJob._meta
    return (
        f"SELECT 1 FROM {q(opts.db_table)} WHERE {q(opts.get_field('machine').column)} = %s "
        f"AND {q(opts.get_field('state').column)} IN ({', '.join(['%s'] * len(OPEN_JOB_STATES))}) LIMIT 1"
    )


def jobs_for_machine(machine: Machine) -> list[dict]:
    """Jobs to deliver: [{id, type, params, deadline}] (uus.deployments)."""
    from uus.deployments.services import OPEN_JOB_STATES
    from uus.deployments.services import jobs_for_machine as deliver

    with connection.cursor() as cur:
        cur.execute(_open_jobs_sql(connection.vendor), [machine.pk, *OPEN_JOB_STATES])
        if cur.fetchone() is None:
            return []
    return deliver(machine)


@functools.cache
def _ring_repository_sql(vendor: str) -> str:
    """The machine's ring (its membership, else the default ring) and what its repository publishes."""
    from uus.approvals.models import Ring, RingMembership
    from uus.repos.models import RingRepository

    q = connection.ops.quote_name
    ring, member, repo = Ring._meta, RingMembership._meta, RingRepository._meta
    return (
        f"SELECT r.{q('name')}, rr.{q('suites')} FROM {q(ring.db_table)} r "
        f"JOIN {q(repo.db_table)} rr ON rr.{q('ring_id')} = r.{q('id')} "
        f"WHERE r.{q('id')} = COALESCE("
        f"(SELECT m.{q('ring_id')} FROM {q(member.db_table)} m WHERE m.{q('machine_id')} = %s), "
        f"(SELECT d.{q('id')} FROM {q(ring.db_table)} d WHERE d.{q('name')} = %s))"
    )


def apt_for_machine(machine: Machine) -> dict | None:
    """{"sources": ..., "key_url": ...} for the machine's ring, or None to leave apt alone (its ring
    has not been published yet). URLs use `base_url`, else the address the agent reached us at.
    A machine without a ring membership is in the default ring (approvals.selectors.ring_of)."""
    from uus.approvals.selectors import DEFAULT_RING
    from uus.repos.services import apt_config, public_base_url

    with connection.cursor() as cur:
        cur.execute(_ring_repository_sql(connection.vendor), [machine.pk, DEFAULT_RING])
        row = cur.fetchone()
    if row is None:
        return None
    name, suites = row
    return apt_config(name, json.loads(suites) if isinstance(suites, str) else suites, public_base_url())


# -- replay and clock -----------------------------------------------------------------------------


def check_clock(env: Envelope) -> None:
    now = timezone.now()
    if abs(now - env.sent_at) > MAX_CLOCK_SKEW:
        raise ClockSkew(
            f"sent_at {env.sent_at.isoformat()} is more than {int(MAX_CLOCK_SKEW.total_seconds() // 60)} minutes "
            f"away from the server's clock ({now.isoformat()}): fix the machine's clock (NTP)",
            details={"server_time": now.isoformat(), "sent_at": env.sent_at.isoformat()},
        )


def message_key(message_id: str) -> int:
    """The AgentMessage key of a message id: 64 bits of its BLAKE2b hash, as a signed integer."""
    digest = hashlib.blake2b(uuid.UUID(message_id).bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def message_remember(env: Envelope) -> None:
    """Record a message id in the current transaction; a second request with it is a replay."""
    q = connection.ops.quote_name
    with connection.cursor() as cur:  # one statement, no savepoint: the primary key decides
        cur.execute(
            f"INSERT INTO {q(AgentMessage._meta.db_table)} ({q('id')}, {q('received')}) VALUES (%s, %s) "
            f"ON CONFLICT ({q('id')}) DO NOTHING",
            [message_key(env.message_id), int(time.time())],
        )
        if cur.rowcount == 0:
            raise Replayed(
                "this message_id was already received: every request needs a fresh one",
                details={"message_id": env.message_id},
            )


def agent_messages_prune(*, older_than: timedelta = MESSAGE_MEMORY) -> int:
    n, _ = AgentMessage.objects.filter(received__lt=int(time.time() - older_than.total_seconds())).delete()
    return n


# -- the three steps ------------------------------------------------------------------------------


def agent_register(req: RegisterRequest) -> dict:
    check_clock(req.envelope)
    with transaction.atomic():
        message_remember(req.envelope)
        creds = inventory.machine_register(token=req.token, facts=req.facts, agent_version=req.envelope.agent_version)
    return {
        "machine": str(creds.machine.uuid),
        "client_id": creds.client_id,
        "secret": creds.secret,
        "exchange_token": creds.exchange_token,
        "check_in_interval": creds.check_in_interval,
    }


def agent_check_in(machine: Machine, req: CheckInRequest) -> dict:
    """`machine` comes from machine_authenticate (read-only); it is locked again inside the transaction."""
    check_clock(req.envelope)
    try:
        with transaction.atomic():
            locked = inventory.machine_lock(machine.pk)
            message_remember(req.envelope)
            outcome = inventory.machine_check_in(
                machine=locked,
                exchange_token=req.exchange_token,
                facts=req.facts,
                inventory_hash=req.inventory_hash,
                previous_inventory_hash=req.previous_inventory_hash,
                agent_version=req.envelope.agent_version,
            )
            acked = job_results_record(locked, req.job_results)
            jobs = jobs_for_machine(locked)
            apt = apt_for_machine(locked)
    except CloneSuspected:
        inventory.machine_flag_clone(machine=Machine.objects.only("id", "hostname", "uuid").get(pk=machine.pk))
        raise
    return {
        "next_exchange_token": outcome.next_exchange_token,
        "check_in_interval": outcome.check_in_interval,
        "inventory": outcome.inventory,
        "jobs": jobs,
        "acked_job_results": acked,
        "apt": apt,
    }


def agent_inventory(machine: Machine, req: InventoryRequest) -> dict:
    check_clock(req.envelope)
    with transaction.atomic():
        locked = inventory.machine_lock(machine.pk)
        message_remember(req.envelope)
        if req.kind == "full":
            inventory.inventory_apply_full(machine=locked, inventory_hash=req.inventory_hash, entries=req.packages)
        else:
            inventory.inventory_apply_delta(
                machine=locked,
                inventory_hash=req.inventory_hash,
                base_hash=req.base_hash or "",
                added=req.packages,
                removed=req.removed or [],
            )
    return {"inventory_hash": locked.inventory_hash, "accepted": True}
