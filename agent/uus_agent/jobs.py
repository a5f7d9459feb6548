"""Run each job the server delivers exactly once and keep its result until it is acknowledged.

A job's life in STATE (see state.py): record "started" (fsynced) -> handler runs -> result written
to outbox/<id>.json (once, atomically) -> record "finished" -> server acks -> record "acked",
outbox file deleted. A restart finds any "started" record: if its result reached the outbox the job
completed, otherwise it is reported failed with error "interrupted" -- never run a second time.

One handler per job type, in HANDLERS keyed by the message's "type" (protocol/v1/README.md).
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

from uus_agent import dpkg, facts, protocol
from uus_agent.apt import Apt, AptResult, in_root, is_real_root
from uus_agent.state import SAFE_ID_RE, State

log = logging.getLogger(__name__)

REBOOT_MARKER = "/var/run/uus-reboot-requested"


class Outcome:
    """What a handler did: exit_code of the last command, the combined output, an error code."""

    def __init__(self, exit_code: Optional[int] = 0, output: str = "", error: Optional[str] = None):
        self.exit_code = exit_code
        self.output = output
        self.error = error

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.exit_code in (0, None)


class JobContext:
    def __init__(self, root: str, apt: Apt, state: State) -> None:
        self.root = root
        self.apt = apt
        self.state = state


Handler = Callable[[JobContext, Dict[str, Any]], Outcome]
HANDLERS: Dict[str, Handler] = {}


def handler(job_type: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[job_type] = fn
        return fn

    return register


def _shown(result: AptResult) -> str:
    """The command as an admin would type it: the root options only add noise to the output."""
    args = result.argv[1:]
    shown: List[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "-o":
            skip = True
            continue
        if a in ("-y", "-q"):
            continue
        shown.append(a)
    return "$ apt-get " + " ".join(shown) + "\n"


def _combine(results: List[AptResult]) -> Outcome:
    output = "".join(_shown(r) + r.output for r in results)
    last = results[-1]
    error = None
    for r in results:
        if r.error:
            error = r.error
    if error is None and last.exit_code != 0:
        error = "apt_failed"
    return Outcome(last.exit_code, output, error)


def _packages(params: Dict[str, Any], required: bool = True) -> Optional[List[str]]:
    pkgs = params.get("packages")
    if pkgs is None and not required:
        return None
    if not isinstance(pkgs, list) or not pkgs or not all(isinstance(p, str) for p in pkgs):
        raise ValueError("params.packages must be a non-empty list of package names")
    return pkgs


def _with_update(ctx: JobContext, params: Dict[str, Any], step: Callable[[], AptResult]) -> Outcome:
    """Refresh the lists first (default), so the newly approved versions are visible to apt."""
    results: List[AptResult] = []
    if params.get("update", True):
        upd = ctx.apt.update()
        results.append(upd)
        if upd.error in ("dpkg_lock_held", "timeout", "not_found"):
            return _combine(results)
    results.append(step())
    return _combine(results)


@handler("apt_update")
def apt_update(ctx: JobContext, params: Dict[str, Any]) -> Outcome:
    return _combine([ctx.apt.update()])


@handler("apt_install")
def apt_install(ctx: JobContext, params: Dict[str, Any]) -> Outcome:
    pkgs = _packages(params)
    assert pkgs is not None
    downgrade = params.get("allow_downgrades", False) is True
    return _with_update(ctx, params, lambda: ctx.apt.install(pkgs, allow_downgrades=downgrade))


@handler("apt_remove")
def apt_remove(ctx: JobContext, params: Dict[str, Any]) -> Outcome:
    pkgs = _packages(params)
    assert pkgs is not None
    return _combine([ctx.apt.remove(pkgs, purge=bool(params.get("purge", False)))])


@handler("apt_upgrade")
def apt_upgrade(ctx: JobContext, params: Dict[str, Any]) -> Outcome:
    pkgs = _packages(params, required=False)
    return _with_update(ctx, params, lambda: ctx.apt.upgrade(pkgs))


@handler("reboot")
def reboot(ctx: JobContext, params: Dict[str, Any]) -> Outcome:
    """Only ever on request. Under a test root, leave a marker instead of rebooting the host.

    On a real machine the reboot is scheduled a minute ahead, so the result can still be sent.
    """
    if not is_real_root(ctx.root):
        marker = in_root(ctx.root, REBOOT_MARKER)
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        with open(marker, "w", encoding="utf-8") as f:
            f.write("reboot requested by UUS at %s\n" % protocol.isoformat(protocol.utc_now()))
        return Outcome(0, "reboot requested: wrote %s (test root, not rebooting)\n" % marker)
    delay = params.get("delay_minutes", 1)
    if not isinstance(delay, int) or delay < 0:
        raise ValueError("params.delay_minutes must be a whole number >= 0")
    argv = ["shutdown", "-r", "+%d" % delay, "UUS requested a reboot"]
    try:
        proc = subprocess.run(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, text=True
        )
    except (OSError, subprocess.SubprocessError) as e:
        return Outcome(None, "cannot run shutdown: %s\n" % e, "reboot_failed")
    out = "$ %s\n%s" % (" ".join(argv), proc.stdout)
    return Outcome(proc.returncode, out, None if proc.returncode == 0 else "reboot_failed")


def _snapshot(root: str) -> Dict[dpkg.Key, Optional[str]]:
    return dpkg.versions(dpkg.read_inventory(root))


def _pack(snapshot: Dict[dpkg.Key, Optional[str]]) -> List[List[Optional[str]]]:
    return [[k[0], k[1], v] for k, v in sorted(snapshot.items())]


def _unpack(rows: List[List[Optional[str]]]) -> Dict[dpkg.Key, Optional[str]]:
    return {(str(r[0]), str(r[1])): r[2] for r in rows}


class JobRunner:
    def __init__(self, state: State, apt: Apt, root: str) -> None:
        self.state = state
        self.apt = apt
        self.root = root

    def recover(self) -> int:
        """At start-up: close the records of jobs a crash or kill left "started". Returns count."""
        n = 0
        for rec in list(self.state.job_records()):
            if rec.get("state") != "started":
                continue
            job_id = rec["id"]
            if not self.state.outbox_has(job_id):
                before = rec.get("before")
                after = _snapshot(self.root)
                result = protocol.job_result(
                    job_id=job_id,
                    status="failed",
                    exit_code=None,
                    output="interrupted: the agent stopped while this job was running; "
                    "it was not run again. Check the machine's apt and dpkg logs.\n",
                    started_at=rec.get("started_at"),
                    finished_at=protocol.isoformat(protocol.utc_now()),
                    packages=dpkg.version_changes(_unpack(before), after)
                    if before is not None
                    else [],
                    reboot_required=facts.reboot_required(self.root),
                    error="interrupted",
                )
                self.state.outbox_put(result)
                log.warning("job %s was interrupted by a restart; reporting it failed", job_id)
            rec["state"] = "finished"
            rec["finished_at"] = time.time()
            self.state.save_job_record(rec)
            n += 1
        return n

    def process(self, job: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """Run one delivered job unless this agent has seen its id before. Returns the result."""
        job_id = job["id"]
        if not SAFE_ID_RE.match(job_id):
            log.error("ignoring job with an unusable id %r", job_id)
            return None
        if self.state.job_record(job_id) is not None:
            log.debug("job %s was already run; not running it again", job_id)
            return None
        received = protocol.utc_now()
        now_iso = protocol.isoformat(received)
        deadline = None
        deadline_error = None
        try:
            deadline = protocol.parse_time(job.get("deadline"))
        except protocol.ProtocolError as e:
            deadline_error = str(e)

        before = _snapshot(self.root)
        record = {
            "id": job_id,
            "type": job.get("type"),
            "state": "started",
            "started_at": now_iso,
            "received_at": time.time(),
            "before": _pack(before),
        }
        self.state.save_job_record(record)  # from here on, this job is never run again

        if deadline is not None and received > deadline:
            result = protocol.job_result(
                job_id,
                "expired",
                None,
                "not run: the deadline %s had passed when the job arrived\n" % job.get("deadline"),
                None,
                now_iso,
                [],
                facts.reboot_required(self.root),
                error="expired",
            )
            return self._finish(record, result)

        fn = HANDLERS.get(job.get("type") or "")
        log.info("running job %s (%s)", job_id, job.get("type"))
        if deadline_error:
            outcome = Outcome(None, deadline_error + "\n", "bad_params")
        elif fn is None:
            outcome = Outcome(None, "unknown job type %r\n" % job.get("type"), "unknown_job_type")
        else:
            try:
                outcome = fn(JobContext(self.root, self.apt, self.state), job.get("params") or {})
            except ValueError as e:
                outcome = Outcome(None, "bad parameters: %s\n" % e, "bad_params")
            except Exception:
                log.exception("job %s failed inside the agent", job_id)
                outcome = Outcome(None, traceback.format_exc(), "agent_error")
        after = _snapshot(self.root)
        result = protocol.job_result(
            job_id=job_id,
            status="succeeded" if outcome.succeeded else "failed",
            exit_code=outcome.exit_code,
            output=outcome.output,
            started_at=now_iso,
            finished_at=protocol.isoformat(protocol.utc_now()),
            packages=dpkg.version_changes(before, after),
            reboot_required=facts.reboot_required(self.root),
            error=outcome.error,
        )
        return self._finish(record, result)

    def _finish(self, record: Dict[str, Any], result: Dict[str, Any]) -> Dict[str, Any]:
        self.state.outbox_put(result)
        record["state"] = "finished"
        record["finished_at"] = time.time()
        record.pop("before", None)
        self.state.save_job_record(record)
        log.info("job %s %s", result["job_id"], result["status"])
        return result
