"""Set-based writes of customers, items and events, shared by the ingest API, the importers
and the demo generator.

Everything here works on whole batches: one statement (or one statement per few hundred
rows) per table, never a query per event. Dedup is the database's job: events carry a
unique event_id and are inserted with ON CONFLICT DO NOTHING ... RETURNING, so a replayed
batch stores nothing and every replayed event is counted as a duplicate. Works on
PostgreSQL (execute_values) and SQLite (multi-row VALUES; 3.35+ for RETURNING).
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from recommendations.models import Item

from ..models import Customer, Event

# SQLite caps bound parameters per statement (32,766 on 3.32+); stay well below.
_SQLITE_ROWS_PER_STATEMENT = 400
_IN_CHUNK = 900


@dataclass(slots=True)
class EventRow:
    """One validated event, ready to store. `customer` and `item` are external ids."""

    event_id: str
    customer: str
    type: str
    occurred_at: datetime
    item: str | None = None
    amount: Decimal | None = None
    quantity: int | None = None
    platform: str = ""
    properties: dict = field(default_factory=dict)


@dataclass(slots=True)
class StoreResult:
    accepted: set[str]
    duplicates: int
    customers_created: int = 0
    items_created: int = 0


def _chunks(seq: list, size: int) -> Iterable[list]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def _ids_by_external_id(model, external_ids: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(external_ids, _IN_CHUNK):
        found.update(model.objects.filter(external_id__in=chunk).values_list("external_id", "id"))
    return found


def _ensure(model, external_ids: Iterable[str], make) -> tuple[dict[str, int], int]:
    wanted = sorted(set(external_ids))
    if not wanted:
        return {}, 0
    found = _ids_by_external_id(model, wanted)
    missing = [x for x in wanted if x not in found]
    if missing:
        # ignore_conflicts: a concurrent batch may create the same customer; both end up with one row.
        model.objects.bulk_create([make(x) for x in missing], ignore_conflicts=True, batch_size=500)
        found.update(_ids_by_external_id(model, missing))
    return found, len(missing)


def customers_ensure(external_ids: Iterable[str], *, source_platform: str = "") -> tuple[dict[str, int], int]:
    """Map external ids to customer ids, creating the unknown ones. Returns (ids, created)."""
    return _ensure(Customer, external_ids, lambda x: Customer(external_id=x, source_platform=source_platform))


def items_ensure(external_ids: Iterable[str]) -> tuple[dict[str, int], int]:
    """Map external ids to item ids; unknown items are created inactive so no event is lost."""
    return _ensure(Item, external_ids, lambda x: Item(external_id=x, active=False))


_EVENT_COLUMNS = ("event_id", "customer_id", "type", "item_id", "amount", "quantity", "platform",
                  "occurred_at", "received_at", "properties")


def _insert_events_returning(values: list[tuple]) -> set[str]:
    table = Event._meta.db_table
    cols = ", ".join(_EVENT_COLUMNS)
    inserted: set[str] = set()
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            from psycopg2.extras import execute_values

            rows = execute_values(
                cur.cursor,
                f"INSERT INTO {table} ({cols}) VALUES %s ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                values,
                template="(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
                page_size=1000,
                fetch=True,
            )
            inserted.update(r[0] for r in rows)
        else:
            placeholder = "(" + ", ".join(["%s"] * len(_EVENT_COLUMNS)) + ")"
            for chunk in _chunks(values, _SQLITE_ROWS_PER_STATEMENT):
                sql = (f"INSERT INTO {table} ({cols}) VALUES {', '.join([placeholder] * len(chunk))} "
                       "ON CONFLICT (event_id) DO NOTHING RETURNING event_id")
                cur.execute(sql, [v for row in chunk for v in row])
                inserted.update(r[0] for r in cur.fetchall())
    return inserted


def customers_touch_seen(span: dict[int, tuple[datetime, datetime]]) -> None:
    """Widen first_seen_at/last_seen_at of customers to cover new events (one UPDATE per chunk).

    Rows are updated in primary-key order so that concurrent batches lock customers in the
    same order and cannot deadlock.
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
            if connection.vendor == "postgresql":
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


def events_store(rows: list[EventRow], *, received_at: datetime | None = None, source_platform: str = "") -> StoreResult:
    """Store validated events in one transaction: customers and items first, then events.

    Returns which event_ids were new; the rest (already stored, or repeated within the
    batch) are duplicates. first_seen_at/last_seen_at of the customers are widened to
    cover the accepted events.
    """
    received_at = received_at or timezone.now()
    unique: dict[str, EventRow] = {}
    for row in rows:
        unique.setdefault(row.event_id, row)
    in_batch_duplicates = len(rows) - len(unique)
    if not unique:
        return StoreResult(accepted=set(), duplicates=in_batch_duplicates)

    adapt_dt = connection.ops.adapt_datetimefield_value
    adapt_dec = connection.ops.adapt_decimalfield_value
    with transaction.atomic():
        customer_ids, customers_created = customers_ensure((r.customer for r in unique.values()), source_platform=source_platform)
        item_ids, items_created = items_ensure(r.item for r in unique.values() if r.item)
        received = adapt_dt(received_at)
        values = [
            (
                r.event_id,
                customer_ids[r.customer],
                r.type,
                item_ids[r.item] if r.item else None,
                adapt_dec(r.amount, 12, 2) if r.amount is not None else None,
                r.quantity,
                r.platform or "",
                adapt_dt(r.occurred_at),
                received,
                json.dumps(r.properties or {}, ensure_ascii=False, separators=(",", ":")),
            )
            for r in unique.values()
        ]
        accepted = _insert_events_returning(values)
        span: dict[int, tuple[datetime, datetime]] = {}
        for event_id in accepted:
            r = unique[event_id]
            cid = customer_ids[r.customer]
            first, last = span.get(cid, (r.occurred_at, r.occurred_at))
            span[cid] = (min(first, r.occurred_at), max(last, r.occurred_at))
        customers_touch_seen(span)
    return StoreResult(
        accepted=accepted,
        duplicates=in_batch_duplicates + len(unique) - len(accepted),
        customers_created=customers_created,
        items_created=items_created,
    )
