"""The database itself refuses to change or delete an audit event, on SQLite and PostgreSQL alike.

Migration 0002 installs the triggers. Two writes stay possible on purpose:
- `actor_id` set to NULL and nothing else: Django's SET_NULL when a user is deleted (the event keeps
  `actor_name`, so it still reads correctly);
- emptying the whole database (`flush`, as the test suite does between transactional tests):
  PostgreSQL's flush is a TRUNCATE, which row triggers do not see; SQLite's flush is a DELETE, so
  the SQLite delete trigger asks `uus_audit_flushing()`, true only inside Django's flush on that
  connection. Opened by any other program (the sqlite3 shell), that function does not exist and
  the delete fails as well.
"""

from __future__ import annotations

import contextlib

MESSAGE = "audit events are append-only"

_SAME_ROW = " AND ".join(
    f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in ("id", "time", "actor_name", "action", "target", "reason", "data")
)
_ONLY_ACTOR_CLEARED = f"NEW.actor_id IS NULL AND {_SAME_ROW}"

SQLITE = [
    f"""CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_auditevent
        WHEN NOT ({_ONLY_ACTOR_CLEARED.replace("IS NOT DISTINCT FROM", "IS")})
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_auditevent
        WHEN NOT uus_audit_flushing()
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
]
SQLITE_REVERSE = ["DROP TRIGGER IF EXISTS audit_event_no_update", "DROP TRIGGER IF EXISTS audit_event_no_delete"]

POSTGRESQL = [
    f"""CREATE FUNCTION audit_event_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND {_ONLY_ACTOR_CLEARED} THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'restrict_violation';
        END $$""",
    """CREATE TRIGGER audit_event_refuse BEFORE UPDATE OR DELETE ON audit_auditevent
        FOR EACH ROW EXECUTE FUNCTION audit_event_refuse()""",
]
POSTGRESQL_REVERSE = [
    "DROP TRIGGER IF EXISTS audit_event_refuse ON audit_auditevent",
    "DROP FUNCTION IF EXISTS audit_event_refuse()",
]


def install(schema_editor) -> None:
    for sql in {"sqlite": SQLITE, "postgresql": POSTGRESQL}.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)


def uninstall(schema_editor) -> None:
    for sql in {"sqlite": SQLITE_REVERSE, "postgresql": POSTGRESQL_REVERSE}.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)


def on_connection_created(sender, connection, **kwargs) -> None:
    """Give each SQLite connection the function the delete trigger asks, true only during a flush."""
    if connection.vendor != "sqlite":
        return
    connection.uus_audit_flushing = False
    connection.connection.create_function(
        "uus_audit_flushing", 0, lambda: int(connection.uus_audit_flushing), deterministic=False
    )
    ops = connection.ops
    if getattr(ops.execute_sql_flush, "uus_audit_wrapped", False):
        return
    flush = ops.execute_sql_flush

    def execute_sql_flush(sql_list):
        with _flushing(connection):
            return flush(sql_list)

    execute_sql_flush.uus_audit_wrapped = True
    ops.execute_sql_flush = execute_sql_flush


@contextlib.contextmanager
def _flushing(connection):
    connection.uus_audit_flushing = True
    try:
        yield
    finally:
        connection.uus_audit_flushing = False
