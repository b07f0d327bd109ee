"""Who an incremental pass recomputes (seg_affected): customers with events since the last
run, and those whose time-driven features crossed a threshold of the tier rules."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import connection

from ..models import TierOverride
from .sql import (
    CUSTOMER_TABLE, DAY, EVENT_TABLE, FEATURE_TABLE, TREND_WINDOW, WINDOWS, _count, _drop_temp, _exec, _pg, _ts,
)

# ---------------------------------------------------------------------------------------
# Incremental: who is affected
# ---------------------------------------------------------------------------------------
# Feature timestamps that are the time of one of the customer's events (see build_affected).
EVENT_TIMESTAMPS = ("last_activity_at", "last_purchase_at", "first_purchase_at")
HIGH_WATER_MARGIN = 10_000  # event ids may commit out of order; look back this many ids
# Up to this many affected customers, an incremental run looks each one up through the
# per-customer indexes (about a quarter of a millisecond each); beyond, hashing whole
# tables once is cheaper.
SMALL_SUBSET = 20_000


def build_affected(*, as_of: datetime, since_as_of: datetime, event_high_water: int, thresholds: dict[str, set[float]],
                   since_started_at: datetime | None = None) -> int:
    """Customers whose features or tiers may differ between since_as_of and as_of (into
    seg_affected); `thresholds`: the rules' day counts by the features timestamp they are
    measured on."""
    _drop_temp("seg_affected")
    _exec("CREATE TEMP TABLE seg_affected (customer_id bigint PRIMARY KEY)" if _pg()
          else "CREATE TEMP TABLE seg_affected (customer_id INTEGER PRIMARY KEY)")
    ignore = "ON CONFLICT DO NOTHING" if _pg() else ""
    ins = "INSERT INTO seg_affected (customer_id)" if _pg() else "INSERT OR IGNORE INTO seg_affected (customer_id)"
    # New events (and events stored late for the past). Ids are taken when a row is written and
    # become visible at commit, so a transaction in flight when the last run read its high-water
    # mark can commit ids below it: the last HIGH_WATER_MARGIN ids are looked at again, those
    # received since an hour before the last run started (a transaction older than that when
    # the run began is taken as committed before it).
    recent = ""
    hw_params: dict = {"hw": event_high_water, "margin": max(0, event_high_water - HIGH_WATER_MARGIN)}
    if since_started_at is not None:
        recent = "AND received_at >= %(received)s"
        hw_params["received"] = _ts(since_started_at - timedelta(hours=1))
    _exec(f"""{ins} SELECT DISTINCT customer_id FROM {EVENT_TABLE}
              WHERE id > %(hw)s OR (id > %(margin)s {recent}) {ignore}""", hw_params)
    # Events leaving a feature window, and timestamps crossing a rule's day threshold: a
    # timestamp t crosses "days" between the runs when since_as_of - days < t <= as_of - days
    # (rules compare t with as_of - N days exactly; thresholds hold both N and N + 1). A
    # timestamp no rule measures from is not looked at.
    #
    # A customer whose last activity, first or last purchase crosses N days has an event (a
    # purchase) at that time, so those are found among the events by time, with the windows:
    # one statement, a few events per range through the BRIN index on occurred_at. (A superset
    # of the customers, which only recomputes a few more; the features table then needs no
    # index per timestamp, which every full run would rebuild.) Other timestamps (sign-up)
    # are looked up in the features, one statement per column, its ranges OR-ed.
    def crossing(column: str, days: Iterable[float], params: dict) -> str:
        ranges = []
        for d in sorted(days):
            lo, hi = f"lo{len(params)}", f"hi{len(params)}"
            params[lo], params[hi] = _ts(since_as_of - d * DAY), _ts(as_of - d * DAY)
            ranges.append(f"({column} > %({lo})s AND {column} <= %({hi})s)")
        return " OR ".join(ranges)

    any_event = {*WINDOWS, 2 * TREND_WINDOW, *thresholds.get("last_activity_at", ())}
    purchase = {*thresholds.get("last_purchase_at", ()), *thresholds.get("first_purchase_at", ())} - any_event
    params: dict = {}
    where = crossing("occurred_at", any_event, params)
    if purchase:
        where += f" OR (type = 'purchase' AND ({crossing('occurred_at', purchase, params)}))"
    _exec(f"{ins} SELECT DISTINCT customer_id FROM {EVENT_TABLE} WHERE {where} {ignore}", params)
    for col, days in sorted(thresholds.items()):
        if days and col not in EVENT_TIMESTAMPS:
            params = {}
            _exec(f"{ins} SELECT customer_id FROM {FEATURE_TABLE} WHERE {crossing(col, days, params)} {ignore}", params)
    # Overrides that started or ended in between; customers never computed.
    _exec(f"""{ins} SELECT customer_id FROM {TierOverride._meta.db_table}
              WHERE (expires_at > %(lo)s AND expires_at <= %(hi)s) OR (created_at > %(lo)s AND created_at <= %(hi)s)
                 OR (revoked_at > %(lo)s AND revoked_at <= %(hi)s) {ignore}""",
          {"lo": _ts(since_as_of - DAY), "hi": _ts(as_of)})
    # Customers never computed. Every run covers all customers without features, so only
    # those created since the previous run started (with an hour's slack for clocks and
    # long transactions) need looking at; the created_at index finds them.
    created = ""
    created_params: dict = {}
    if since_started_at is not None:
        created = "c.created_at >= %(created)s AND"
        created_params = {"created": since_started_at - timedelta(hours=1)}
    _exec(f"""{ins} SELECT c.id FROM {CUSTOMER_TABLE} c
              WHERE {created} NOT EXISTS (SELECT 1 FROM {FEATURE_TABLE} f WHERE f.customer_id = c.id) {ignore}""",
          created_params)
    if _pg():
        _exec("ANALYZE seg_affected")  # so that the subset's plans use the per-customer indexes
    return _count("seg_affected")


def max_event_id() -> int:
    with connection.cursor() as cur:
        cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM {EVENT_TABLE}")
        return int(cur.fetchone()[0])
