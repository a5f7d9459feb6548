"""Everything the agent keeps between runs, under --state-dir.

Layout (all JSON, every write atomic: temp file + fsync + rename + fsync of the directory, so a
crash or power loss leaves either the old or the new file, never a torn one):

    STATE/                 mode 0700
      credentials.json     0600: server, ca, machine, client_id, secret, exchange_token, interval
      machine-id           generated when ROOT/etc/machine-id is absent, so the id stays stable
      inventory.json       the package list and hash the server last acknowledged (delta base)
      state.json           last check-in time/error, applied apt configuration
      jobs/<id>.json       one record per job ever received: started -> finished -> acked
      outbox/<id>.json     results not yet acknowledged; written once, never rewritten
      agent.lock           fcntl lock: one cycle at a time per state dir
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import tempfile
import time
from typing import Any, Dict, Iterator, List, Optional

SAFE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class StateError(Exception):
    pass


class StateLocked(StateError):
    pass


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str, data: bytes, mode: int = 0o600) -> None:
    """Write via a temp file created with `mode` from the start, so a secret is never readable."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)  # mkstemp creates it 0600
    try:
        if mode != 0o600:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)


def atomic_write_json(path: str, obj: Any, mode: int = 0o600) -> None:
    data = (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8")
    atomic_write_bytes(path, data, mode)


def read_json(path: str, default: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, Any]]:
    """The JSON object stored at `path`, or `default` when there is no such file."""
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except FileNotFoundError:
        return default
    except ValueError as e:
        raise StateError(
            "%s is not valid JSON (%s); move it away to start afresh" % (path, e)
        ) from e
    if not isinstance(value, dict):
        raise StateError("%s does not hold a JSON object; move it away to start afresh" % path)
    return value


class State:
    """The state directory. Paths are properties so tests and `status` can find every file."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self._lock_fd: Optional[int] = None

    # -- layout ---------------------------------------------------------------------------
    @property
    def credentials_path(self) -> str:
        return os.path.join(self.path, "credentials.json")

    @property
    def inventory_path(self) -> str:
        return os.path.join(self.path, "inventory.json")

    @property
    def state_path(self) -> str:
        return os.path.join(self.path, "state.json")

    @property
    def machine_id_path(self) -> str:
        return os.path.join(self.path, "machine-id")

    @property
    def jobs_dir(self) -> str:
        return os.path.join(self.path, "jobs")

    @property
    def outbox_dir(self) -> str:
        return os.path.join(self.path, "outbox")

    def ensure(self) -> None:
        """Create the directories 0700: the state dir holds the machine's secret."""
        for d in (self.path, self.jobs_dir, self.outbox_dir):
            os.makedirs(d, mode=0o700, exist_ok=True)
        os.chmod(self.path, 0o700)

    # -- lock -----------------------------------------------------------------------------
    def lock(self, timeout: float = 30.0) -> None:
        """Serialise cycles: `run` and a manual `check-in` on one state dir must not interleave."""
        self.ensure()
        fd = os.open(os.path.join(self.path, "agent.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._lock_fd = fd
                return
            except OSError as e:
                if e.errno not in (errno.EACCES, errno.EAGAIN):
                    os.close(fd)
                    raise
            if time.monotonic() >= deadline:
                os.close(fd)
                raise StateLocked("another uus-agent is working on %s" % self.path)
            time.sleep(0.2)

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the fcntl lock
            self._lock_fd = None

    # -- credentials ----------------------------------------------------------------------
    def load_credentials(self) -> Optional[Dict[str, Any]]:
        return read_json(self.credentials_path)

    def save_credentials(self, creds: Dict[str, Any]) -> None:
        self.ensure()
        atomic_write_json(self.credentials_path, creds, mode=0o600)

    def update_credentials(self, **changes: Any) -> Dict[str, Any]:
        creds = self.load_credentials() or {}
        creds.update(changes)
        self.save_credentials(creds)
        return creds

    # -- small state ----------------------------------------------------------------------
    def load_state(self) -> Dict[str, Any]:
        return read_json(self.state_path, {}) or {}

    def update_state(self, **changes: Any) -> Dict[str, Any]:
        st = self.load_state()
        st.update(changes)
        self.ensure()
        atomic_write_json(self.state_path, st)
        return st

    def load_inventory(self) -> Optional[Dict[str, Any]]:
        """{"inventory_hash": ..., "packages": [...]} last acknowledged by the server, or None."""
        return read_json(self.inventory_path)

    def save_inventory(self, inventory_hash: str, packages: List[Dict[str, str]]) -> None:
        self.ensure()
        atomic_write_json(
            self.inventory_path, {"inventory_hash": inventory_hash, "packages": packages}
        )

    def clear_inventory(self) -> None:
        try:
            os.unlink(self.inventory_path)
        except FileNotFoundError:
            pass

    # -- jobs and outbox --------------------------------------------------------------------
    def _job_file(self, directory: str, job_id: str) -> str:
        if not SAFE_ID_RE.match(job_id):
            raise StateError("unsafe job id %r" % job_id)
        return os.path.join(directory, job_id + ".json")

    def job_record(self, job_id: str) -> Optional[Dict[str, Any]]:
        return read_json(self._job_file(self.jobs_dir, job_id))

    def save_job_record(self, record: Dict[str, Any]) -> None:
        self.ensure()
        atomic_write_json(self._job_file(self.jobs_dir, record["id"]), record)

    def job_records(self) -> Iterator[Dict[str, Any]]:
        if not os.path.isdir(self.jobs_dir):
            return
        for name in sorted(os.listdir(self.jobs_dir)):
            if name.endswith(".json") and not name.startswith("."):
                rec = read_json(os.path.join(self.jobs_dir, name))
                if rec:
                    yield rec

    def outbox_has(self, job_id: str) -> bool:
        return os.path.exists(self._job_file(self.outbox_dir, job_id))

    def outbox_put(self, result: Dict[str, Any]) -> bool:
        """Store a result once. Returns False (and keeps the old file) if one exists already,
        because the same job id must never be reported with two different contents."""
        self.ensure()
        path = self._job_file(self.outbox_dir, result["job_id"])
        if os.path.exists(path):
            return False
        atomic_write_json(path, result)
        return True

    def outbox(self) -> List[Dict[str, Any]]:
        results = []
        if os.path.isdir(self.outbox_dir):
            for name in sorted(os.listdir(self.outbox_dir)):
                if name.endswith(".json") and not name.startswith("."):
                    res = read_json(os.path.join(self.outbox_dir, name))
                    if res:
                        results.append(res)
        return results

    def outbox_ack(self, job_ids: List[str]) -> int:
        """Drop acknowledged results and remember the ack, so a redelivered job is not rerun."""
        done = 0
        for job_id in job_ids:
            if not isinstance(job_id, str) or not SAFE_ID_RE.match(job_id):
                continue
            path = self._job_file(self.outbox_dir, job_id)
            rec = self.job_record(job_id)
            if rec is not None and rec.get("state") != "acked":
                rec["state"] = "acked"
                rec["acked_at"] = time.time()
                self.save_job_record(rec)
            try:
                os.unlink(path)
                done += 1
            except FileNotFoundError:
                pass
        if done:
            fsync_dir(self.outbox_dir)
        return done

    def prune_job_records(self, max_age_seconds: float = 180 * 86400) -> None:
        """Forget acknowledged jobs after six months; the server stops redelivering long before."""
        now = time.time()
        for rec in list(self.job_records()):
            if rec.get("state") == "acked" and now - rec.get("acked_at", now) > max_age_seconds:
                try:
                    os.unlink(self._job_file(self.jobs_dir, rec["id"]))
                except (OSError, StateError):
                    pass

    # -- machine id -------------------------------------------------------------------------
    def generated_machine_id(self) -> str:
        """A stable id for roots without /etc/machine-id: made once, kept in the state dir."""
        try:
            with open(self.machine_id_path, encoding="ascii") as f:
                value = f.read().strip()
            if value:
                return value
        except FileNotFoundError:
            pass
        import uuid

        value = uuid.uuid4().hex
        self.ensure()
        atomic_write_bytes(self.machine_id_path, (value + "\n").encode("ascii"), mode=0o644)
        return value
