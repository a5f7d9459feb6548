"""The agent's cycle: register once, then check in, upload inventory when asked, run jobs.

The order inside a check-in is part of the contract (protocol/v1/README.md, steps 4-9): the new
exchange token is saved before anything else, acknowledged results are dropped, the apt
configuration is applied, the inventory is uploaded if the server asked, and only then do jobs run.
Results of jobs run in a cycle are reported by a follow-up check-in in the same cycle.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from typing import Any, Dict, List, Optional

from uus_agent import dpkg, facts, protocol
from uus_agent.apt import Apt, in_root
from uus_agent.config import Config
from uus_agent.jobs import JobRunner
from uus_agent.state import State
from uus_agent.transport import ServerError, Transport, TransportError, Unauthorized

log = logging.getLogger(__name__)

MAX_ROUNDS = 5  # check-ins per cycle while the server keeps handing out jobs
MIN_INTERVAL = 10
KEY_REFRESH_SECONDS = 86400


class AgentError(Exception):
    """A failure to show the admin as is (stderr, non-zero exit)."""


class NotRegistered(AgentError):
    pass


class Agent:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.root = config.root
        self.state = State(config.state_dir)
        self.apt = Apt(self.root, self.state.path, config.lock_timeout, config.apt_timeout)
        self.jobs = JobRunner(self.state, self.apt, self.root)
        self.stopping = threading.Event()

    # -- helpers -------------------------------------------------------------------------------
    def _credentials(self) -> Dict[str, Any]:
        creds = self.state.load_credentials()
        if not creds or not creds.get("client_id"):
            raise NotRegistered(
                "not registered: run `uus-agent register --server URL --token TOKEN` first "
                "(state dir %s)" % self.state.path
            )
        return creds

    def _transport(self, server: str, ca: Optional[str]) -> Transport:
        try:
            return Transport(server, ca=ca, timeout=self.config.http_timeout)
        except (ValueError, OSError) as e:  # bad URL, unreadable CA file
            raise AgentError(str(e)) from e

    # -- register ------------------------------------------------------------------------------
    def register(
        self, server: str, token: str, ca: Optional[str], force: bool = False
    ) -> Dict[str, Any]:
        self.state.lock()
        try:
            old = self.state.load_credentials()
            if old and old.get("client_id") and not force:
                raise AgentError(
                    "already registered with %s as machine %s; use --force to register again"
                    % (old.get("server"), old.get("machine"))
                )
            ca = os.path.abspath(ca) if ca else None
            transport = self._transport(server, ca)
            body = protocol.register_request(token, facts.gather(self.root, self.state))
            answer = protocol.parse_register_response(transport.post(protocol.PATH_REGISTER, body))
            creds = dict(answer)
            creds.update(
                {
                    "server": transport.server,
                    "ca": ca,
                    "registered_at": protocol.isoformat(protocol.utc_now()),
                }
            )
            self.state.save_credentials(creds)
            self.state.clear_inventory()  # a new machine record knows no inventory yet
            return creds
        finally:
            self.state.unlock()

    # -- check-in ------------------------------------------------------------------------------
    def check_in(self) -> Dict[str, Any]:
        """One cycle. Returns a summary for the CLI; raises on failure to talk to the server."""
        self.state.lock()
        try:
            self.jobs.recover()
            self.state.prune_job_records()
            summary: Dict[str, Any] = {
                "rounds": 0,
                "jobs_run": 0,
                "acked": 0,
                "inventory": [],
                "errors": [],
            }
            for _ in range(MAX_ROUNDS):
                ran = self._one_round(summary)
                summary["rounds"] += 1
                if not ran or self.stopping.is_set():
                    break
            return summary
        finally:
            self.state.unlock()

    def _one_round(self, summary: Dict[str, Any]) -> int:
        creds = self._credentials()
        transport = self._transport(creds["server"], creds.get("ca"))
        auth = (creds["client_id"], creds["secret"])
        packages = dpkg.read_inventory(self.root)
        current_hash = dpkg.inventory_hash(packages)
        acked_inv = self.state.load_inventory()
        previous_hash = acked_inv.get("inventory_hash") if acked_inv else None
        body = protocol.check_in_request(
            exchange_token=creds.get("exchange_token") or "",
            facts=facts.gather(self.root, self.state),
            inventory_hash=current_hash,
            previous_inventory_hash=previous_hash,
            job_results=self.state.outbox(),
        )
        try:
            raw = transport.post(protocol.PATH_CHECK_IN, body, auth=auth)
        except (TransportError, ServerError) as e:
            self.state.update_state(last_error=str(e), last_error_at=_now())
            raise
        answer = protocol.parse_check_in_response(raw)
        # 1. the exchange token first: losing it would make the next check-in look like a clone.
        self.state.update_credentials(
            exchange_token=answer["next_exchange_token"],
            check_in_interval=answer["check_in_interval"],
        )
        # 2. results the server has stored are done with.
        summary["acked"] += self.state.outbox_ack(answer["acked_job_results"])
        # 3. the repository configuration, before any job runs apt.
        if answer["apt"] is not None:
            self._apply_apt(transport, answer["apt"], summary)
        # 4. inventory, if the server does not know our hash.
        if answer["inventory"] == "ok":
            if previous_hash != current_hash:
                # The server holds this inventory already (an upload whose answer we lost, or
                # another machine's identical one it adopted): it is the base of our next delta.
                self.state.save_inventory(current_hash, packages)
        else:
            try:
                self._send_inventory(
                    transport, auth, answer["inventory"], packages, current_hash, acked_inv, summary
                )
            except Unauthorized:
                raise
            except (TransportError, ServerError, protocol.ProtocolError) as e:
                msg = "inventory upload failed: %s" % e
                log.error("%s", msg)
                summary["errors"].append(msg)
        # 5. jobs, each exactly once.
        ran = 0
        for job in answer["jobs"]:
            if self.stopping.is_set():
                break
            if self.jobs.process(job) is not None:
                ran += 1
        summary["jobs_run"] += ran
        self.state.update_state(last_check_in_at=_now(), last_error=None)
        return ran

    def _send_inventory(
        self,
        transport: Transport,
        auth: Any,
        kind: str,
        packages: List[Dict[str, str]],
        current_hash: str,
        acked_inv: Optional[Dict[str, Any]],
        summary: Dict[str, Any],
    ) -> None:
        base = acked_inv.get("packages") if acked_inv else None
        base_hash = acked_inv.get("inventory_hash") if acked_inv else None
        answer = None
        if kind == "delta" and base is not None and base_hash:
            added, removed = dpkg.compute_delta(base, packages)
            body = protocol.inventory_delta_request(current_hash, base_hash, added, removed)
            try:
                answer = protocol.parse_inventory_response(
                    transport.post(protocol.PATH_INVENTORY, body, auth=auth)
                )
                summary["inventory"].append("delta +%d -%d" % (len(added), len(removed)))
            except Unauthorized:
                raise
            except ServerError as e:
                if e.status != 409:
                    raise
                log.info("server refused the delta (%s); sending the full inventory", e.code)
        if answer is None:
            body = protocol.inventory_full_request(current_hash, packages)
            answer = protocol.parse_inventory_response(
                transport.post(protocol.PATH_INVENTORY, body, auth=auth)
            )
            summary["inventory"].append("full %d packages" % len(packages))
        if answer["inventory_hash"] != current_hash:
            log.warning(
                "server acknowledged inventory hash %s but the agent computed %s",
                answer["inventory_hash"],
                current_hash,
            )
        self.state.save_inventory(answer["inventory_hash"], packages)

    def _apply_apt(
        self, transport: Transport, apt_conf: Dict[str, Any], summary: Dict[str, Any]
    ) -> None:
        """Write uus.list and its key when they changed (or the key is a day old)."""
        st = self.state.load_state()
        applied = st.get("apt") or {}
        list_path = in_root(self.root, "/etc/apt/sources.list.d/uus.list")
        fresh = time.time() - st.get("apt_applied_at", 0) < KEY_REFRESH_SECONDS
        if applied == apt_conf and os.path.exists(list_path) and fresh:
            return
        try:
            key = transport.get_bytes(apt_conf["key_url"]) if apt_conf.get("key_url") else None
            self.apt.write_repo_config(apt_conf["sources"], key)
        except (TransportError, OSError) as e:
            msg = "could not apply the server's apt configuration: %s" % e
            log.error("%s", msg)
            summary["errors"].append(msg)
            return
        self.state.update_state(apt=apt_conf, apt_applied_at=time.time())
        log.info("apt sources for UUS written to %s", list_path)

    # -- service loop ----------------------------------------------------------------------------
    def next_delay(self, failures: int) -> float:
        """Seconds to sleep: the server's interval when healthy, exponential back-off when not."""
        jitter = self.config.jitter
        if failures == 0:
            creds = self.state.load_credentials() or {}
            base = max(MIN_INTERVAL, float(creds.get("check_in_interval") or 3600))
        else:
            base = min(self.config.backoff_max, self.config.backoff_initial * (2 ** (failures - 1)))
        return max(1.0, base * (1 + random.uniform(-jitter, jitter)))

    def run_forever(self) -> None:
        """Until stopped (SIGTERM) or the server revokes us (Unauthorized propagates)."""
        failures = 0
        while not self.stopping.is_set():
            try:
                summary = self.check_in()
                failures = 0
                log.info("check-in done: %s", describe(summary))
            except (Unauthorized, NotRegistered):
                raise
            except (TransportError, ServerError, protocol.ProtocolError, AgentError) as e:
                failures += 1
                log.warning("check-in failed (%d in a row): %s", failures, e)
            except Exception:
                failures += 1
                log.exception("unexpected error in the check-in cycle")
            delay = self.next_delay(failures)
            log.debug("next check-in in %.0f s", delay)
            self.stopping.wait(delay)

    # -- status ----------------------------------------------------------------------------------
    def status(self) -> Dict[str, Any]:
        creds = self.state.load_credentials() or {}
        st = self.state.load_state()
        inv = self.state.load_inventory() or {}
        counts: Dict[str, int] = {}
        for rec in self.state.job_records():
            counts[rec.get("state", "?")] = counts.get(rec.get("state", "?"), 0) + 1
        return {
            "registered": bool(creds.get("client_id")),
            "server": creds.get("server"),
            "ca": creds.get("ca"),
            "machine": creds.get("machine"),
            "client_id": creds.get("client_id"),
            "registered_at": creds.get("registered_at"),
            "check_in_interval": creds.get("check_in_interval"),
            "state_dir": self.state.path,
            "root": self.root,
            "last_check_in_at": st.get("last_check_in_at"),
            "last_error": st.get("last_error"),
            "acknowledged_inventory_hash": inv.get("inventory_hash"),
            "current_inventory_hash": dpkg.inventory_hash(dpkg.read_inventory(self.root)),
            "outbox": [r.get("job_id") for r in self.state.outbox()],
            "jobs": counts,
            "apt": st.get("apt"),
        }


def _now() -> str:
    return protocol.isoformat(protocol.utc_now())


def describe(summary: Dict[str, Any]) -> str:
    parts = ["%d job(s) run" % summary["jobs_run"], "%d result(s) acknowledged" % summary["acked"]]
    parts.append("inventory " + (", ".join(summary["inventory"]) or "up to date"))
    parts += summary["errors"]
    return "; ".join(parts)
