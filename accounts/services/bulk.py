"""Set-based writes of customers, items and events, shared by the ingest API, the importers
and the demo generator.

Everything here works on whole batches: a handful of statements per batch, never a query
per event. Dedup is the database's job: events carry a unique event_id and are inserted
with ON CONFLICT DO NOTHING ... RETURNING, so a replayed batch stores nothing and every
replayed event is counted as a duplicate.

PostgreSQL (the production path) takes a batch in five statements whatever its size:
customers and items are each upserted and looked up in one statement (a data-modifying
CTE); events are streamed with COPY into a per-session temporary table, then moved with
one INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING that also widens the customers'
first_seen_at/last_seen_at. COPY is about three times faster than a multi-row INSERT from
Python. SQLite (the embedded default) uses multi-row VALUES statements (3.35+ for RETURNING).
"""
from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import OperationalError, connection, transaction
from django.dispatch import Signal
from django.utils import timezone

from recommendations.models import Item

from ..models import Customer, Event

logger = logging.getLogger(__name__)

# SQLite caps bound parameters per statement (32,766 since 3.32); stay below with 10 per event.
_SQLITE_ROWS_PER_STATEMENT = 3000
_IN_CHUNK = 900
_DEADLOCK_RETRIES = 3

#: Sent once per stored batch, after commit, with `customers`: the external ids of the customers
#: whose events were accepted. Receivers must be cheap; recommendations drops those customers'
#: cached recommendations (recommendations/apps.py).
events_stored = Signal()


@dataclass(slots=True)
class EventRow:
    """One validated event, ready to store. `customer` and `item` are external ids.

    `properties_json` may carry `properties` already serialized (the ingest API measures
    the size that way), so the store does not serialize it a second time.
    """

    event_id: str
    customer: str
    type: str
    occurred_at: datetime
    item: str | None = None
    amount: Decimal | None = None
    quantity: int | None = None
    platform: str = ""
    properties: dict = field(default_factory=dict)
    properties_json: str | None = None


@dataclass(slots=True)
class StoreResult:
    accepted: set[str]
    duplicates: int
    customers_created: int = 0
    items_created: int = 0


def _chunks(seq: list, size: int) -> Iterable[list]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


# --- customers and items ---------------------------------------------------------------------

def _ids_by_external_id(model, external_ids: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(external_ids, _IN_CHUNK):
        found.update(model.objects.filter(external_id__in=chunk).values_list("external_id", "id"))
    return found


def _constant_columns(instance, skip: tuple[str, ...] = ()) -> tuple[list[str], list[str], list]:
    """Columns, cast placeholders and values of a new row, except external_id.

    Built from the model (defaults, auto_now fields), so a column added to Customer or Item
    later is filled the way Model.save() would fill it.
    """
    columns, placeholders, values = [], [], []
    for f in instance._meta.concrete_fields:
        if f.primary_key or f.attname == "external_id" or f.attname in skip:
            continue
        columns.append(connection.ops.quote_name(f.column))
        placeholders.append(f"%s::{f.cast_db_type(connection)}")
        values.append(f.get_db_prep_save(f.pre_save(instance, True), connection))
    return columns, placeholders, values


def _ensure_postgres(model, wanted: list[str], template,
                     seen: dict[str, tuple[datetime, datetime]] | None = None) -> tuple[dict[str, int], list[int]]:
    """Insert the missing rows and map every external id to its pk, in one statement.

    Returns (ids by external id, pks created). Each id is looked up through the unique index
    (the LATERAL ... OFFSET 0 keeps the planner from hashing the whole table, which it does
    when its statistics lag a growing table). The INSERT and the look-up share one snapshot,
    so `found` holds exactly the rows that existed before and the INSERT returns exactly those
    it created. Rows are inserted in external_id order so that concurrent batches wait on each
    other in the same order (no deadlock). A row another batch committed meanwhile is found by
    a second look-up. With `seen` (customers only), new rows get their first/last seen times
    as they are inserted, which spares each new customer a second write in the same batch.
    """
    table = connection.ops.quote_name(model._meta.db_table)
    if seen is None:
        columns, placeholders, values = _constant_columns(template)
        source = "unnest(%s::text[]) AS w(x)"
        source_params: list = [wanted]
    else:
        columns, placeholders, values = _constant_columns(template, skip=("first_seen_at", "last_seen_at"))
        columns = ["first_seen_at", "last_seen_at", *columns]
        placeholders = ["w.f", "w.l", *placeholders]
        source = "unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) AS w(x, f, l)"
        source_params = [wanted, [seen[x][0] for x in wanted], [seen[x][1] for x in wanted]]
    sql = f"""
        WITH found AS MATERIALIZED (
            SELECT w.x, f.id FROM unnest(%s::text[]) AS w(x)
            CROSS JOIN LATERAL (SELECT t.id FROM {table} t WHERE t.external_id = w.x OFFSET 0) f
        ), ins AS (
            INSERT INTO {table} (external_id, {", ".join(columns)})
            SELECT w.x, {", ".join(placeholders)}
            FROM {source}
            WHERE NOT EXISTS (SELECT 1 FROM found WHERE found.x = w.x)
            ORDER BY w.x
            ON CONFLICT (external_id) DO NOTHING
            RETURNING external_id, id
        )
        SELECT external_id, id, true FROM ins
        UNION ALL
        SELECT x, id, false FROM found"""
    with connection.cursor() as cur:
        cur.execute(sql, [wanted, *values, *source_params])
        rows = cur.fetchall()
    found = {x: pk for x, pk, _ in rows}
    created = [pk for _, pk, new in rows if new]
    if len(found) < len(wanted):  # created by a concurrent batch after our snapshot
        found.update(_ids_by_external_id(model, [x for x in wanted if x not in found]))
    return found, created


def _ensure_sqlite(model, wanted: list[str], template) -> tuple[dict[str, int], int]:
    """Insert the missing rows, then map every external id to its pk: two statements, the ids
    passed as one JSON array (json_each) whatever their number."""
    table = connection.ops.quote_name(model._meta.db_table)
    columns, _, values = _constant_columns(template)
    ids = json.dumps(wanted)
    with connection.cursor() as cur:
        # "WHERE true" lets SQLite parse the ON CONFLICT clause after INSERT ... SELECT.
        cur.execute(
            f"""INSERT INTO {table} (external_id, {", ".join(columns)})
                SELECT value, {", ".join(["%s"] * len(values))} FROM json_each(%s) WHERE true
                ON CONFLICT (external_id) DO NOTHING""",
            [*values, ids],
        )
        created = cur.rowcount
        cur.execute(f"SELECT external_id, id FROM {table} WHERE external_id IN (SELECT value FROM json_each(%s))", [ids])
        return dict(cur.fetchall()), created


def _ensure(model, external_ids: Iterable[str], template) -> tuple[dict[str, int], int]:
    wanted = sorted(set(external_ids))
    if not wanted:
        return {}, 0
    if _is_postgres():
        found, created = _ensure_postgres(model, wanted, template(""))
        return found, len(created)
    return _ensure_sqlite(model, wanted, template(""))


def customers_ensure(external_ids: Iterable[str], *, source_platform: str = "") -> tuple[dict[str, int], int]:
    """Map external ids to customer ids, creating the unknown ones. Returns (ids, created)."""
    return _ensure(Customer, external_ids, lambda x: Customer(external_id=x, source_platform=source_platform))


def items_ensure(external_ids: Iterable[str]) -> tuple[dict[str, int], int]:
    """Map external ids to item ids; unknown items are created inactive so no event is lost."""
    return _ensure(Item, external_ids, lambda x: Item(external_id=x, active=False))


# --- events: PostgreSQL -----------------------------------------------------------------------

_EVENT_COLUMNS = ("event_id", "customer_id", "type", "item_id", "amount", "quantity", "platform",
                  "occurred_at", "received_at", "properties")
_STAGE = "stratum_event_stage"
# A per-session temporary table: no WAL, no indexes, emptied at commit. Created on first use
# by each connection (the IF NOT EXISTS costs one short round trip per batch); the DELETE
# empties it when several batches share one transaction (tests, callers' outer atomic blocks).
# enable_seqscan=off (for the rest of this transaction only) is a planner hint: the move
# statement reaches at most one customer per event by primary key, but when statistics lag a
# fast-growing customers table the planner hashes the whole table instead (measured: 30 ms
# per batch at 40,000 customers, growing with the table). The hint inflates plan costs past
# the JIT thresholds, and compiling this statement would cost far more than running it.
# Both settings end with the transaction; inside a caller's own transaction they are put
# back right after the move (_STAGE_RESTORE), so the caller's later queries plan as usual.
_STAGE_PREPARE = f"""
    CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (
        event_id text, customer_id bigint, type text, item_id bigint, amount numeric,
        quantity integer, platform text, occurred_at timestamptz, received_at timestamptz,
        properties jsonb
    ) ON COMMIT DELETE ROWS;
    DELETE FROM {_STAGE};
    SET LOCAL enable_seqscan = off;
    SET LOCAL jit = off"""
_STAGE_RESTORE = "SET LOCAL enable_seqscan TO DEFAULT; SET LOCAL jit TO DEFAULT"
_STAGE_COPY = (f"COPY {_STAGE} ({', '.join(_EVENT_COLUMNS)}) FROM STDIN "
               "WITH (FORMAT csv, FORCE_NOT_NULL (platform))")


def _move_sql() -> str:
    """Stage -> events, skipping known event_ids, and set the customers' seen-times.

    Customers that existed before the batch have their span widened to cover the accepted
    events; rows whose span already covers them are neither locked nor written. Customers
    created by this batch (%(created)s) were inserted with the span of all the batch's events
    for them; they are corrected only if some of those events were duplicates (an event_id
    reused across customers), so their seen-times always match their stored events.

    Rows are locked one by one in primary-key order (a nested loop over the sorted spans,
    FOR NO KEY UPDATE per row) before they are updated, so concurrent batches that share
    customers queue instead of deadlocking.
    """
    event = connection.ops.quote_name(Event._meta.db_table)
    customer = connection.ops.quote_name(Customer._meta.db_table)
    cols = ", ".join(_EVENT_COLUMNS)
    return f"""
        WITH ins AS (
            INSERT INTO {event} ({cols})
            SELECT {cols} FROM {_STAGE}
            ON CONFLICT (event_id) DO NOTHING
            RETURNING event_id, customer_id, occurred_at
        ), span AS (
            SELECT customer_id AS id, min(occurred_at) AS f, max(occurred_at) AS l,
                   customer_id = ANY(%(created)s::bigint[]) AS created
            FROM ins GROUP BY customer_id
        ), locked AS MATERIALIZED (
            SELECT c.id, s.f, s.l, s.created FROM (SELECT * FROM span ORDER BY id) s
            CROSS JOIN LATERAL (
                SELECT c.id FROM {customer} c
                WHERE c.id = s.id AND CASE WHEN s.created
                    THEN c.first_seen_at IS DISTINCT FROM s.f OR c.last_seen_at IS DISTINCT FROM s.l
                    ELSE c.first_seen_at IS NULL OR c.first_seen_at > s.f OR c.last_seen_at IS NULL OR c.last_seen_at < s.l
                END
                FOR NO KEY UPDATE
            ) c
        ), touched AS (
            UPDATE {customer} c SET
                first_seen_at = CASE WHEN locked.created THEN locked.f ELSE LEAST(c.first_seen_at, locked.f) END,
                last_seen_at = CASE WHEN locked.created THEN locked.l ELSE GREATEST(c.last_seen_at, locked.l) END
            FROM locked WHERE c.id = locked.id
            RETURNING 1
        ), unseen AS (
            UPDATE {customer} c SET first_seen_at = NULL, last_seen_at = NULL
            WHERE c.id = ANY(%(created)s::bigint[]) AND NOT EXISTS (SELECT 1 FROM span WHERE span.id = c.id)
            RETURNING 1
        )
        SELECT event_id FROM ins"""


def _store_postgres(values: list[tuple], created_customers: list[int], *, restore: bool) -> set[str]:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(values)
    buf.seek(0)
    with connection.cursor() as cur:
        cur.execute(_STAGE_PREPARE)
        # COPY bypasses Django's cursor wrapper; log it like any query so query counts
        # (tests, debug toolbar) stay honest.
        debug = getattr(cur, "debug_sql", None)
        if debug is not None:
            with debug(_STAGE_COPY):
                cur.cursor.copy_expert(_STAGE_COPY, buf, size=1 << 16)
        else:
            cur.cursor.copy_expert(_STAGE_COPY, buf, size=1 << 16)
        cur.execute(_move_sql(), {"created": created_customers})
        accepted = {r[0] for r in cur.fetchall()}
        if restore:
            cur.execute(_STAGE_RESTORE)
        return accepted


# --- events: SQLite ---------------------------------------------------------------------------

def _insert_events_sqlite(values: list[tuple]) -> set[str]:
    table = Event._meta.db_table
    cols = ", ".join(_EVENT_COLUMNS)
    placeholder = "(" + ", ".join(["%s"] * len(_EVENT_COLUMNS)) + ")"
    inserted: set[str] = set()
    with connection.cursor() as cur:
        for chunk in _chunks(values, _SQLITE_ROWS_PER_STATEMENT):
            sql = (f"INSERT INTO {table} ({cols}) VALUES {', '.join([placeholder] * len(chunk))} "
                   "ON CONFLICT (event_id) DO NOTHING RETURNING event_id")
            cur.execute(sql, [v for row in chunk for v in row])
            inserted.update(r[0] for r in cur.fetchall())
    return inserted


def customers_touch_seen(span: dict[int, tuple[datetime, datetime]]) -> None:
    """Widen first_seen_at/last_seen_at of customers to cover new events (one UPDATE per chunk).

    On PostgreSQL, events_store does this inside its insert statement; this function serves
    SQLite and callers that need it on its own. Rows are updated in primary-key order so that
    concurrent batches lock customers in the same order.
    """
    if not span:
        return
    table = Customer._meta.db_table
    adapt = connection.ops.adapt_datetimefield_value
    items = sorted(span.items())
    with connection.cursor() as cur:
        for chunk in _chunks(items, _SQLITE_ROWS_PER_STATEMENT):
            params: list = []
            for cid, (first, last) in chunk:
                params += [cid, adapt(first), adapt(last)]
            if _is_postgres():
                values = ", ".join(["(%s::bigint, %s::timestamptz, %s::timestamptz)"] * len(chunk))
                cur.execute(
                    f"""UPDATE {table} AS c SET
                          first_seen_at = LEAST(c.first_seen_at, v.f),
                          last_seen_at = GREATEST(c.last_seen_at, v.l)
                        FROM (VALUES {values}) AS v(id, f, l)
                        WHERE c.id = v.id
                          AND (c.first_seen_at IS NULL OR c.first_seen_at > v.f
                               OR c.last_seen_at IS NULL OR c.last_seen_at < v.l)""",
                    params,
                )
            else:
                values = ", ".join(["(%s, %s, %s)"] * len(chunk))
                cur.execute(
                    f"""WITH v(id, f, l) AS (VALUES {values})
                        UPDATE {table} SET
                          first_seen_at = CASE WHEN first_seen_at IS NULL OR first_seen_at > v.f THEN v.f ELSE first_seen_at END,
                          last_seen_at = CASE WHEN last_seen_at IS NULL OR last_seen_at < v.l THEN v.l ELSE last_seen_at END
                        FROM v WHERE {table}.id = v.id""",
                    params,
                )


# --- the batch --------------------------------------------------------------------------------

def _properties_json(r: EventRow) -> str:
    if r.properties_json is not None:
        return r.properties_json
    return json.dumps(r.properties or {}, ensure_ascii=False, separators=(",", ":"))


def _store_once(unique: dict[str, EventRow], received_at: datetime, source_platform: str) -> StoreResult:
    outer = connection.in_atomic_block
    with transaction.atomic():
        if _is_postgres():
            seen: dict[str, tuple[datetime, datetime]] = {}
            for r in unique.values():
                span = seen.get(r.customer)
                if span is None:
                    seen[r.customer] = (r.occurred_at, r.occurred_at)
                elif r.occurred_at < span[0] or r.occurred_at > span[1]:
                    seen[r.customer] = (min(span[0], r.occurred_at), max(span[1], r.occurred_at))
            customer_ids, created = _ensure_postgres(
                Customer, sorted(seen), Customer(external_id="", source_platform=source_platform), seen=seen)
            customers_created = len(created)
            item_ids, items_created = items_ensure(r.item for r in unique.values() if r.item)
            # CSV for COPY: None is an unquoted empty field (NULL); platform is FORCE_NOT_NULL.
            received = received_at.isoformat()
            values = [
                (r.event_id, customer_ids[r.customer], r.type, item_ids[r.item] if r.item else None,
                 r.amount, r.quantity, r.platform or "", r.occurred_at.isoformat(), received,
                 _properties_json(r))
                for r in unique.values()
            ]
            accepted = _store_postgres(values, created, restore=outer)
        else:
            customer_ids, customers_created = customers_ensure((r.customer for r in unique.values()),
                                                               source_platform=source_platform)
            item_ids, items_created = items_ensure(r.item for r in unique.values() if r.item)
            adapt_dt = connection.ops.adapt_datetimefield_value
            adapt_dec = connection.ops.adapt_decimalfield_value
            received = adapt_dt(received_at)
            values = [
                (r.event_id, customer_ids[r.customer], r.type, item_ids[r.item] if r.item else None,
                 adapt_dec(r.amount, 12, 2) if r.amount is not None else None, r.quantity,
                 r.platform or "", adapt_dt(r.occurred_at), received, _properties_json(r))
                for r in unique.values()
            ]
            accepted = _insert_events_sqlite(values)
            span: dict[int, tuple[datetime, datetime]] = {}
            for event_id in accepted:
                r = unique[event_id]
                cid = customer_ids[r.customer]
                first, last = span.get(cid, (r.occurred_at, r.occurred_at))
                span[cid] = (min(first, r.occurred_at), max(last, r.occurred_at))
            customers_touch_seen(span)
    return StoreResult(accepted=accepted, duplicates=len(unique) - len(accepted),
                       customers_created=customers_created, items_created=items_created)


def _is_deadlock(exc: OperationalError) -> bool:
    return getattr(exc.__cause__, "pgcode", None) == "40P01"


def events_store(rows: list[EventRow], *, received_at: datetime | None = None, source_platform: str = "") -> StoreResult:
    """Store validated events in one transaction: customers and items first, then events.

    Returns which event_ids were new; the rest (already stored, or repeated within the
    batch) are duplicates. first_seen_at/last_seen_at of the customers are widened to
    cover the accepted events. When it owns the transaction, a batch that loses a deadlock
    (PostgreSQL aborts one side) is retried whole, which is safe because nothing of it
    was committed.
    """
    received_at = received_at or timezone.now()
    unique: dict[str, EventRow] = {}
    for row in rows:
        unique.setdefault(row.event_id, row)
    in_batch_duplicates = len(rows) - len(unique)
    if not unique:
        return StoreResult(accepted=set(), duplicates=in_batch_duplicates)

    attempts = 1 if connection.in_atomic_block else _DEADLOCK_RETRIES
    for attempt in range(1, attempts + 1):
        try:
            result = _store_once(unique, received_at, source_platform)
            break
        except OperationalError as exc:
            if attempt == attempts or not _is_deadlock(exc):
                raise
            logger.warning("events_store_deadlock_retry attempt=%s rows=%s", attempt, len(unique))
    result.duplicates += in_batch_duplicates
    if result.accepted and events_stored.has_listeners():
        customers = {unique[event_id].customer for event_id in result.accepted}
        transaction.on_commit(lambda: events_stored.send(sender=events_store, customers=customers))
    return result
