"""The engine's SQL plumbing: feature windows and table names, portable SQL fragments
(PostgreSQL and SQLite), statement execution, session tuning, timed stages, and the table
operations of bulk writes (secondary indexes dropped and rebuilt, key constraints restored)."""
from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection

from accounts.models import Customer

from ..models import CustomerFeatures, Membership, TierChange

DAY = timedelta(days=1)
# Feature windows (days). The column names carry them (orders_30d ...), so they are fixed
# definitions of the features; tier thresholds live in the rules, which staff edit.
WINDOWS = (30, 90, 365)
TREND_WINDOW = 90  # orders_90d against orders_prev_90d (the 90 days before)

FEATURE_TABLE = CustomerFeatures._meta.db_table
EVENT_TABLE = "accounts_event"
FEEDBACK_TABLE = "accounts_feedback"
CUSTOMER_TABLE = Customer._meta.db_table
MEMBERSHIP_TABLE = Membership._meta.db_table
CHANGE_TABLE = TierChange._meta.db_table


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _ts(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)


def _param_ts(name: str) -> str:
    return f"CAST(%({name})s AS timestamptz)" if _pg() else f"%({name})s"


def days_between(later: str, earlier: str) -> str:
    """SQL for floor((later - earlier) / 1 day) as an integer; NULL when earlier is NULL."""
    if _pg():
        # date_part gives double precision; EXTRACT gives numeric (PostgreSQL 14+), several
        # times slower over a million rows, and seconds since 1970 are exact in a double.
        return f"CAST(FLOOR(date_part('epoch', {later} - {earlier}) / 86400) AS integer)"
    return f"CAST(FLOOR(julianday({later}) - julianday({earlier})) AS INTEGER)"


def _least(*args: str) -> str:
    return f"{'LEAST' if _pg() else 'MIN'}({', '.join(args)})"


def _greatest(*args: str) -> str:
    return f"{'GREATEST' if _pg() else 'MAX'}({', '.join(args)})"


def _day(col: str) -> str:
    return f"CAST({col} AS date)" if _pg() else f"substr({col}, 1, 10)"


def _exec(sql: str, params: dict | list | None = None) -> int:
    with connection.cursor() as cur:
        cur.execute(sql, params or {})
        return cur.rowcount


def _drop_temp(*names: str) -> None:
    for name in names:
        _exec(f"DROP TABLE IF EXISTS {name}")


def _session_tuning() -> None:
    """PostgreSQL, for this transaction: enough memory for the aggregation not to spill, and no
    JIT compilation. The statements here are few and run once each, over millions of rows, so
    the planner's cost estimates always cross the JIT thresholds; compiling and optimising
    their wide expressions (a dozen FILTER aggregates, the tier rules' CASE) cost about 5 s
    per statement on the benchmark, more than the compiled code saved.

    Commits here do not wait for the WAL flush (synchronous_commit off). The run's own row is
    marked succeeded afterwards by an ordinary commit, whose flush takes all earlier WAL with
    it; so a crash of the database server either keeps the whole run or leaves it unfinished,
    and the next run starts from the last run that succeeded."""
    if _pg():
        _exec(f"SET LOCAL work_mem = '{settings.SEGMENTATION_WORK_MEM}'")
        _exec("SET LOCAL jit = off")
        _exec("SET LOCAL synchronous_commit = off")


def _subset_tuning() -> None:
    """An incremental run touches a few customers out of many (PostgreSQL, this transaction).

    Look each one up through the per-customer indexes (events, features, memberships)
    rather than hashing whole tables, and skip JIT compilation, which the planner's large
    cost estimates for the big tables would otherwise trigger for a sub-second query.
    """
    if _pg():
        _exec("SET LOCAL enable_hashjoin = off")
        _exec("SET LOCAL enable_mergejoin = off")
        _exec("SET LOCAL jit = off")


@contextmanager
def plan_settings(**gucs: str):
    """PostgreSQL: planner settings for the statements inside, then back to what they were.

    A full run reads whole tables, and two of its statements have a far better plan than the
    one the planner's cost model picks (see build_base and _build_diff); a rule's count is
    another (selectors.audience_count). Elsewhere a no-op.
    """
    if not _pg():
        yield
        return
    with connection.cursor() as cur:
        before = {}
        for name, value in gucs.items():
            cur.execute("SELECT current_setting(%s)", [name])
            before[name] = cur.fetchone()[0]
            cur.execute("SELECT set_config(%s, %s, true)", [name, value])
    yield
    # Not on an error: the settings are local to the transaction (or savepoint) that the error
    # rolls back, which restores them, and an aborted transaction takes no more statements.
    with connection.cursor() as cur:
        for name, value in before.items():
            cur.execute("SELECT set_config(%s, %s, true)", [name, value])


@dataclass
class Stage:
    timings: dict[str, float] = field(default_factory=dict)
    on_stage: Callable[[str, int], None] | None = None

    def run(self, name: str, percent: int, fn: Callable[[], int | None]):
        if self.on_stage:
            self.on_stage(name, percent)
        start = time.perf_counter()
        out = fn()
        self.timings[name] = round(time.perf_counter() - start, 3)
        return out


def _count(table: str) -> int:
    with connection.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        return cur.fetchone()[0]


KEY_CONSTRAINTS = {"p": "PRIMARY KEY", "u": "UNIQUE"}


def _key_constraint_sql(table: str, constraint: str, contype: str, index: str) -> str:
    """The statement that makes `index` the primary key or unique constraint `constraint` again
    (it takes the constraint's name)."""
    return f"ALTER TABLE {table} ADD CONSTRAINT {constraint} {KEY_CONSTRAINTS[contype]} USING INDEX {index}"


def _indexes_of(table: str) -> list[tuple[str, str, str | None, str | None]]:
    """PostgreSQL: (index name, CREATE INDEX statement, constraint name, constraint type 'p' or
    'u' or None) of each index on `table`."""
    with connection.cursor() as cur:
        cur.execute("""SELECT i.relname, pg_get_indexdef(i.oid), c.conname, c.contype
                         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                         LEFT JOIN pg_constraint c ON c.conindid = i.oid AND c.conrelid = x.indrelid
                        WHERE x.indrelid = %s::regclass ORDER BY i.relname""", [table])
        return cur.fetchall()


@contextmanager
def _bulk_load(table: str, rows: int):
    """PostgreSQL: an INSERT of `rows` rows into `table`, when the table holds fewer, with its
    secondary indexes (all but the primary key, whose ids only grow) built after the rows are
    in rather than updated row by row: a first run's four million memberships and as many
    tier changes. Each index is built again as it was (its statement from the catalogue), a
    unique constraint with it. Readers of the table wait for the transaction meanwhile (the
    drop locks it), which only a first run or a change of most customers' tiers does."""
    if not _pg() or not rows:
        yield
        return
    with connection.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} LIMIT %s) x", [rows])
        if cur.fetchone()[0] >= rows:
            yield
            return
    # Plain indexes and unique constraints (other constraints' indexes stay).
    secondary = [ix for ix in _indexes_of(table) if ix[3] in (None, "u")]
    for name, _definition, constraint, _contype in secondary:
        _exec(f"ALTER TABLE {table} DROP CONSTRAINT {constraint}" if constraint else f"DROP INDEX {name}")
    yield
    for name, definition, constraint, contype in secondary:
        _exec(definition)
        if constraint:
            _exec(_key_constraint_sql(table, constraint, contype, name))
