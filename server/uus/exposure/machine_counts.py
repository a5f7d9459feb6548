"""Machines per (package set, release, running kernel, ring), kept by the database itself.

Machines of one such group answer every exposure query alike, so result pages and the dashboard count
groups (a few thousand rows) instead of grouping the machine table (hundreds of thousands of index
entries per query: docs/performance.md, "Exposure"). The count lives in `exposure_machinecount` and is
kept by triggers on `inventory_machine` and `approvals_ringmembership`, on SQLite and PostgreSQL alike:
machines change through the agent's plain UPDATE, ORM saves, queryset updates, bulk inserts and
cascades, and a trigger sees every one of them inside the writing transaction, so the count cannot
drift from the rows it counts. A machine is counted when it has an inventory and is not revoked; no
ring membership is ring 0 (the default ring).

- On PostgreSQL, inserts and deletes are counted once per statement (transition tables), so a bulk insert
  costs one change per group; updates are counted per row, because a statement trigger on updates would
  cost every agent check-in (one UPDATE of the machine row) about 50 µs, while the row trigger's WHEN
  clause costs it nothing. The price is a bulk UPDATE that moves many machines of one group in one
  transaction: each move writes a new version of the same count row (50,000 machines: about 40 s).
- On PostgreSQL, a trigger that moves a machine between two groups changes the lower key first, so
  two transactions moving machines in opposite directions wait for each other instead of
  deadlocking; a ring membership change locks its machine row (FOR SHARE) before reading it, so it
  never reads a machine row another transaction is changing.
- Triggers exist only outside migrations: SQLite refuses to rebuild a table (Django's ALTER of a
  field) that another table's trigger names, and PostgreSQL refuses to change the type of a column a
  trigger names. So `migrate` drops them before it applies anything, and installs them again with a
  fresh count afterwards (pre_migrate / post_migrate in apps.py); migration 0003 only makes the table.
- `recount` rebuilds the counts from the machines (`uus exposure rebuild`); the tests check that the
  triggers' counts equal it after every kind of machine change.
"""

from __future__ import annotations

from django.db import connection, transaction

COUNTS = "exposure_machinecount"
MACHINE = "inventory_machine"
MEMBERSHIP = "approvals_ringmembership"
KEY = "package_set_id, release, kernel, ring_id"
TRIGGERS = (
    "exposure_count_machine_insert",
    "exposure_count_machine_update",
    "exposure_count_machine_delete",
    "exposure_count_member_insert",
    "exposure_count_member_update",
    "exposure_count_member_delete",
)
# The columns of a machine that place it in a group (or out of every group).
_GROUP_COLUMNS = ("id", "package_set_id", "release", "kernel", "is_revoked")
_CHANGED = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _GROUP_COLUMNS)


# -- SQLite: row triggers whose statements carry their conditions in WHERE clauses ---------------------


def _sqlite_add(s: str, r: str, k: str, g: str, when: str) -> str:
    return (
        f"INSERT INTO {COUNTS} ({KEY}, machines) SELECT {s}, {r}, {k}, {g}, 1 WHERE {when} "
        f"ON CONFLICT ({KEY}) DO UPDATE SET machines = machines + 1;"
    )


def _sqlite_remove(s: str, r: str, k: str, g: str, when: str) -> str:
    key = f"package_set_id = {s} AND release = {r} AND kernel = {k} AND ring_id = {g}"
    return (
        f"UPDATE {COUNTS} SET machines = machines - 1 WHERE {key} AND ({when});"
        f"DELETE FROM {COUNTS} WHERE {key} AND machines <= 0 AND ({when});"
    )


def _ring(machine_id: str) -> str:
    return f"COALESCE((SELECT ring_id FROM {MEMBERSHIP} WHERE machine_id = {machine_id}), 0)"


def _machine(column: str, machine_id: str) -> str:
    """A column of a counted machine (NULL when it is revoked or has no inventory)."""
    return f"(SELECT {column} FROM {MACHINE} WHERE id = {machine_id} AND package_set_id IS NOT NULL AND NOT is_revoked)"


def _sqlite_old_machine() -> str:
    return _sqlite_remove(
        "OLD.package_set_id",
        "OLD.release",
        "OLD.kernel",
        _ring("OLD.id"),
        "OLD.package_set_id IS NOT NULL AND NOT OLD.is_revoked",
    )


def _sqlite_new_machine() -> str:
    return _sqlite_add(
        "NEW.package_set_id",
        "NEW.release",
        "NEW.kernel",
        _ring("NEW.id"),
        "NEW.package_set_id IS NOT NULL AND NOT NEW.is_revoked",
    )


def _sqlite_member_move(machine_id: str, from_ring: str, to_ring: str) -> str:
    s, r, k = (_machine(c, machine_id) for c in ("package_set_id", "release", "kernel"))
    when = f"{s} IS NOT NULL"
    return _sqlite_remove(s, r, k, from_ring, when) + _sqlite_add(s, r, k, to_ring, when)


SQLITE = [
    f"""CREATE TRIGGER exposure_count_machine_insert AFTER INSERT ON {MACHINE}
        BEGIN {_sqlite_new_machine()} END""",
    f"""CREATE TRIGGER exposure_count_machine_update AFTER UPDATE OF {", ".join(_GROUP_COLUMNS)} ON {MACHINE}
        WHEN {_CHANGED}
        BEGIN {_sqlite_old_machine()} {_sqlite_new_machine()} END""",
    f"""CREATE TRIGGER exposure_count_machine_delete AFTER DELETE ON {MACHINE}
        BEGIN {_sqlite_old_machine()} END""",
    f"""CREATE TRIGGER exposure_count_member_insert AFTER INSERT ON {MEMBERSHIP}
        BEGIN {_sqlite_member_move("NEW.machine_id", "0", "NEW.ring_id")} END""",
    f"""CREATE TRIGGER exposure_count_member_update AFTER UPDATE OF machine_id, ring_id ON {MEMBERSHIP}
        WHEN OLD.machine_id IS NOT NEW.machine_id OR OLD.ring_id IS NOT NEW.ring_id
        BEGIN {_sqlite_member_move("OLD.machine_id", "OLD.ring_id", "0")}
              {_sqlite_member_move("NEW.machine_id", "0", "NEW.ring_id")} END""",
    f"""CREATE TRIGGER exposure_count_member_delete AFTER DELETE ON {MEMBERSHIP}
        BEGIN {_sqlite_member_move("OLD.machine_id", "OLD.ring_id", "0")} END""",
]


# -- PostgreSQL: plpgsql functions ------------------------------------------------------------------

POSTGRESQL = [
    f"""CREATE OR REPLACE FUNCTION exposure_count_add(s bigint, r varchar, k varchar, g bigint, d integer)
        RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            IF d > 0 THEN
                INSERT INTO {COUNTS} ({KEY}, machines) VALUES (s, r, k, g, d)
                ON CONFLICT ({KEY}) DO UPDATE SET machines = {COUNTS}.machines + d;
            ELSE
                UPDATE {COUNTS} SET machines = machines + d
                 WHERE package_set_id = s AND release = r AND kernel = k AND ring_id = g AND machines > -d;
                IF NOT FOUND THEN
                    DELETE FROM {COUNTS} WHERE package_set_id = s AND release = r AND kernel = k AND ring_id = g;
                END IF;
            END IF;
        END $$""",
    # Moves one machine from group o to group n (either may be absent), lower key first: see the docstring.
    """CREATE OR REPLACE FUNCTION exposure_count_move(
            os bigint, o_r varchar, ok varchar, og bigint, ns bigint, nr varchar, nk varchar, ng bigint)
        RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            IF os IS NOT NULL AND ns IS NOT NULL AND ROW(ns, nr, nk, ng) < ROW(os, o_r, ok, og) THEN
                PERFORM exposure_count_add(ns, nr, nk, ng, 1);
                PERFORM exposure_count_add(os, o_r, ok, og, -1);
                RETURN;
            END IF;
            IF os IS NOT NULL THEN
                PERFORM exposure_count_add(os, o_r, ok, og, -1);
            END IF;
            IF ns IS NOT NULL THEN
                PERFORM exposure_count_add(ns, nr, nk, ng, 1);
            END IF;
        END $$""",
    f"""CREATE OR REPLACE FUNCTION exposure_count_machine() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            os bigint; o_r varchar; ok varchar; og bigint;
            ns bigint; nr varchar; nk varchar; ng bigint;
        BEGIN
            IF TG_OP <> 'INSERT' AND OLD.package_set_id IS NOT NULL AND NOT OLD.is_revoked THEN
                os := OLD.package_set_id; o_r := OLD.release; ok := OLD.kernel;
                og := COALESCE((SELECT ring_id FROM {MEMBERSHIP} WHERE machine_id = OLD.id), 0);
            END IF;
            IF TG_OP <> 'DELETE' AND NEW.package_set_id IS NOT NULL AND NOT NEW.is_revoked THEN
                ns := NEW.package_set_id; nr := NEW.release; nk := NEW.kernel;
                ng := COALESCE((SELECT ring_id FROM {MEMBERSHIP} WHERE machine_id = NEW.id), 0);
            END IF;
            PERFORM exposure_count_move(os, o_r, ok, og, ns, nr, nk, ng);
            RETURN NULL;
        END $$""",
    # Inserts and deletes are counted per statement, one change per group in key order: a bulk insert of
    # 50,000 machines of one group cost 0.36 ms a row with a row trigger (each one a new version of the same
    # count row), and the key order keeps concurrent statements from deadlocking.
    f"""CREATE OR REPLACE FUNCTION exposure_count_machines() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE g record; d integer := TG_ARGV[0]::integer;
        BEGIN
            FOR g IN
                SELECT c.package_set_id, c.release, c.kernel, COALESCE(rm.ring_id, 0) AS ring_id, COUNT(*) AS n
                FROM changed c LEFT JOIN {MEMBERSHIP} rm ON rm.machine_id = c.id
                WHERE c.package_set_id IS NOT NULL AND NOT c.is_revoked
                GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
            LOOP
                PERFORM exposure_count_add(g.package_set_id, g.release, g.kernel, g.ring_id, d * g.n::integer);
            END LOOP;
            RETURN NULL;
        END $$""",
    f"""CREATE OR REPLACE FUNCTION exposure_count_member() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE m record;
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                SELECT package_set_id, release, kernel INTO m FROM {MACHINE}
                 WHERE id = OLD.machine_id AND package_set_id IS NOT NULL AND NOT is_revoked FOR SHARE;
                IF FOUND THEN
                    PERFORM exposure_count_move(m.package_set_id, m.release, m.kernel, OLD.ring_id,
                                                m.package_set_id, m.release, m.kernel, 0);
                END IF;
            END IF;
            IF TG_OP <> 'DELETE' THEN
                SELECT package_set_id, release, kernel INTO m FROM {MACHINE}
                 WHERE id = NEW.machine_id AND package_set_id IS NOT NULL AND NOT is_revoked FOR SHARE;
                IF FOUND THEN
                    PERFORM exposure_count_move(m.package_set_id, m.release, m.kernel, 0,
                                                m.package_set_id, m.release, m.kernel, NEW.ring_id);
                END IF;
            END IF;
            RETURN NULL;
        END $$""",
    f"""CREATE TRIGGER exposure_count_machine_insert AFTER INSERT ON {MACHINE}
        REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION exposure_count_machines(1)""",
    f"""CREATE TRIGGER exposure_count_machine_update AFTER UPDATE OF {", ".join(_GROUP_COLUMNS)} ON {MACHINE}
        FOR EACH ROW WHEN ({_CHANGED.replace(" IS NOT ", " IS DISTINCT FROM ")})
        EXECUTE FUNCTION exposure_count_machine()""",
    f"""CREATE TRIGGER exposure_count_machine_delete AFTER DELETE ON {MACHINE}
        REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION exposure_count_machines('-1')""",
    f"""CREATE TRIGGER exposure_count_member_insert AFTER INSERT ON {MEMBERSHIP}
        FOR EACH ROW EXECUTE FUNCTION exposure_count_member()""",
    f"""CREATE TRIGGER exposure_count_member_update AFTER UPDATE OF machine_id, ring_id ON {MEMBERSHIP}
        FOR EACH ROW WHEN (OLD.machine_id IS DISTINCT FROM NEW.machine_id OR OLD.ring_id IS DISTINCT FROM NEW.ring_id)
        EXECUTE FUNCTION exposure_count_member()""",
    f"""CREATE TRIGGER exposure_count_member_delete AFTER DELETE ON {MEMBERSHIP}
        FOR EACH ROW EXECUTE FUNCTION exposure_count_member()""",
]


def _statements(vendor: str) -> list[str]:
    if vendor not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"exposure machine counts need SQLite or PostgreSQL, not {vendor}")
    return SQLITE if vendor == "sqlite" else POSTGRESQL


def installed(conn=connection) -> set[str]:
    """The count triggers present in the database."""
    with conn.cursor() as cur:
        if conn.vendor == "sqlite":
            cur.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'exposure_count_%'")
        else:
            cur.execute(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'exposure_count_%%' "
                "AND tgrelid IN (SELECT to_regclass(t) FROM unnest(%s::text[]) t)",
                [[MACHINE, MEMBERSHIP]],
            )
        return {name for (name,) in cur.fetchall()}


def uninstall(conn=connection) -> None:
    with conn.cursor() as cur:
        if conn.vendor == "sqlite":
            for name in installed(conn):
                cur.execute(f"DROP TRIGGER IF EXISTS {name}")
        elif conn.vendor == "postgresql":
            for name in installed(conn):
                cur.execute(f"DROP TRIGGER IF EXISTS {name} ON {MACHINE if '_machine_' in name else MEMBERSHIP}")


def install(conn=connection) -> None:
    """(Re)create the triggers; the counts are not touched (see recount)."""
    uninstall(conn)
    with conn.cursor() as cur:
        for sql in _statements(conn.vendor):
            cur.execute(sql)


def recount(conn=connection) -> int:
    """Counts from the machines themselves, replacing whatever is stored; returns the groups."""
    with transaction.atomic(using=conn.alias), conn.cursor() as cur:
        if conn.vendor == "postgresql":
            # no machine or membership changes until this transaction ends: their triggers would
            # otherwise change rows between the delete and the insert below
            cur.execute(f"LOCK TABLE {MACHINE}, {MEMBERSHIP} IN SHARE MODE")
        cur.execute(f"DELETE FROM {COUNTS}")
        cur.execute(
            f"""INSERT INTO {COUNTS} ({KEY}, machines)
                SELECT m.package_set_id, m.release, m.kernel, COALESCE(rm.ring_id, 0), COUNT(*)
                FROM {MACHINE} m LEFT JOIN {MEMBERSHIP} rm ON rm.machine_id = m.id
                WHERE m.package_set_id IS NOT NULL AND NOT m.is_revoked
                GROUP BY m.package_set_id, m.release, m.kernel, COALESCE(rm.ring_id, 0)"""
        )
        return max(cur.rowcount, 0)


def ensure(conn=connection) -> bool:
    """Install the triggers and recount when any trigger is missing; True when it had to."""
    if set(TRIGGERS) <= installed(conn):
        return False
    with transaction.atomic(using=conn.alias):
        install(conn)
        recount(conn)
    return True


def _tables_exist(conn) -> bool:
    return {COUNTS, MACHINE, MEMBERSHIP} <= set(conn.introspection.table_names())


def on_pre_migrate(sender, using="default", plan=None, **kwargs) -> None:
    """Before migrations run, the triggers go: a trigger naming another table makes SQLite refuse to
    rebuild that table, and PostgreSQL refuses to change the type of a column a trigger names."""
    from django.db import connections

    if plan:
        uninstall(connections[using])


def on_post_migrate(sender, using="default", **kwargs) -> None:
    """After every migrate (and flush), the triggers are back, with counts recomputed if they were not."""
    from django.db import connections

    conn = connections[using]
    if _tables_exist(conn):
        ensure(conn)
