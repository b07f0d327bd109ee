"""Ready lists: the recommendations of every recently seen customer, ranked ahead of time by a
worker and kept in the serving cache, so that a storefront's request is one Redis read.

Ranking on request costs a query, numpy over every item and a cache write: about three times
a trivial authenticated request (docs/recommendations.md, Benchmark). Ready lists move that
work off the request, as Gorse's offline cache does, without changing what is served: a ready
list is the entry `customer_recommendations` would have cached itself (same signature, same
`context_from_rows` and `rank`), only computed for many customers at once, with their
contexts read by one statement per chunk.

On where RECS_READY_LISTS says (by default where REDIS_URL is set: a cache shared by web
processes and workers). Who has one: customers seen in the last RECS_READY_DAYS days (default
30), not erased.
When they are made:
- all of them, after any change of what serves (`model_store.state_changed`: a model
  activated, a rule or experiment changed, the cache generation moved), and every
  RECS_READY_REFRESH_HOURS by beat (catalogue changes and the decay of old events);
- a customer's own, after their new events are stored or their tiers change (their entry
  is dropped at once, so the next request until then ranks on request, as before).
A list lives RECS_READY_SECONDS (default two days), is RECS_READY_DEPTH items deep (default 40;
a request for more ranks on request) and is replaced whenever it is made again.

No stale list survives an event. `invalidate_customers` writes the customer's marker (a
random token) before it drops the entry; a refresh reads the markers of a chunk before it
reads the database and again after writing the chunk, and drops the entry of every customer
whose marker changed in between: the event either was in what it read, or its marker shows.
"""
from __future__ import annotations

import logging
import secrets
import time
from collections import defaultdict
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from accounts.models import Customer
from crm.core.redis import raw_redis

from .model_store import catalog, conf, forget_serving_state, serving_model, serving_state
from .serving import (NoActiveModel, context_from_rows, context_sql_parts, customer_cache_key, marker_key, rank,
                      ready_seconds, serving_plan, signature)

logger = logging.getLogger(__name__)

CHUNK = 500
STATUS_KEY = "recs:ready:status"
LOCK_KEY = "recs:ready:lock"
AGAIN_KEY = "recs:ready:again"
PENDING_KEY = "recs:ready:pending"  # customers waiting for their list (a Redis set)
DRAIN_KEY = "recs:ready:draining"  # a drain task is queued or running
LOCK_SECONDS = 300  # extended after every chunk: a crashed refresh frees the lock this soon


def ready_enabled() -> bool:
    return bool(conf("RECS_READY_LISTS", False))


def ready_depth() -> int:
    return max(1, int(conf("RECS_READY_DEPTH", 40)))


def serving_anything(state: dict) -> bool:
    return bool(state["active"]) or state["experiment"] is not None


# --- reading many customers at once -----------------------------------------------------------

def _batch_sql(n_ids: int) -> str:
    """The context statement of serving, for `n_ids` customer ids at once: every row starts
    with its customer's id, then has the single-customer statement's columns (the customer's
    own row carries the external id in the third column)."""
    p = context_sql_parts()
    customer, event, membership, dimension, tier = p["customer"], p["event"], p["membership"], p["dimension"], p["tier"]
    epoch, no_json = p["epoch"], p["no_json"]
    ids = ", ".join(["%s"] * n_ids)
    if connection.vendor == "postgresql":
        # Each customer's latest events through the (customer, occurred_at) index, LIMIT per
        # customer: a customer with a million events costs what one with a hundred does.
        events = f"""
        SELECT c.id, 1, e.item_id, e.type, e.at, CAST(NULL AS text), CAST(NULL AS boolean), CAST(NULL AS bigint),
               {no_json}
          FROM {customer} c
         CROSS JOIN LATERAL (
               SELECT e.item_id, e.type, {epoch} AS at FROM {event} e
                WHERE e.customer_id = c.id AND e.item_id IS NOT NULL
                ORDER BY e.occurred_at DESC LIMIT %s) e
         WHERE c.id IN ({ids}) AND c.erased_at IS NULL"""
    else:
        events = f"""
        SELECT ev.customer_id, 1, ev.item_id, ev.type, ev.at, CAST(NULL AS text), CAST(NULL AS boolean),
               CAST(NULL AS bigint), {no_json}
          FROM (SELECT e.customer_id, e.item_id, e.type, {epoch} AS at,
                       ROW_NUMBER() OVER (PARTITION BY e.customer_id ORDER BY e.occurred_at DESC) AS rn
                  FROM {event} e WHERE e.customer_id IN ({ids}) AND e.item_id IS NOT NULL) ev
         WHERE ev.rn <= %s"""
    return f"""
        SELECT c.id, 0, c.id, c.external_id, CAST(NULL AS float8), CAST(NULL AS text), CAST(NULL AS boolean),
               CAST(NULL AS bigint), {no_json}
          FROM {customer} c WHERE c.id IN ({ids}) AND c.erased_at IS NULL
        UNION ALL {events}
        UNION ALL
        SELECT m.customer_id, 2, m.tier_id, d.slug, CAST(d."order" AS float8), t.name, t.is_vip, d.id, t.translations
          FROM {membership} m
          JOIN {dimension} d ON d.id = m.dimension_id
          JOIN {tier} t ON t.id = m.tier_id
         WHERE m.customer_id IN ({ids}) AND d.active"""


def _rows_by_customer(ids: list[int], history_events: int) -> dict[int, list[tuple]]:
    """Each customer's context rows, as the single-customer statement returns them (events
    latest first). Erased customers have none."""
    params: list = list(ids)
    params += [history_events, *ids] if connection.vendor == "postgresql" else [*ids, history_events]
    params += ids
    with connection.cursor() as cur:
        cur.execute(_batch_sql(len(ids)), params)
        rows = cur.fetchall()
    out: dict[int, list[tuple]] = defaultdict(list)
    for row in rows:
        out[row[0]].append(row[1:])
    for customer_rows in out.values():
        customer_rows.sort(key=lambda r: (r[0], -r[3] if r[0] == 1 else 0))
    return {pk: rows for pk, rows in out.items() if rows[0][0] == 0}


# --- refreshing -------------------------------------------------------------------------------

def _population():
    cutoff = timezone.now() - timedelta(days=int(conf("RECS_READY_DAYS", 30)))
    return Customer.objects.filter(erased_at__isnull=True, last_seen_at__gte=cutoff)


def _refresh_chunk(externals: dict[int, str], state: dict, now: float) -> int:
    """Rank and store the ready lists of these customers (pk -> external id, of the
    population); returns how many were stored."""
    markers = [marker_key(ext) for ext in externals.values()]
    before = cache.get_many(markers)  # before the database is read: see the module docstring
    plans = {}
    for pk, ext in externals.items():
        try:
            plans[pk] = serving_plan(ext, state)
        except NoActiveModel:
            continue
    if not plans:
        return 0
    history_events = max(int(plan.config["history_events"]) for plan in plans.values())
    rows = _rows_by_customer(sorted(plans), history_events)
    depth = ready_depth()
    entries = {}
    for pk, customer_rows in rows.items():
        plan = plans[pk]
        model = serving_model(plan.model_id, plan.sha)
        limit = int(plan.config["history_events"])
        if limit < history_events:  # this customer's configuration reads fewer events
            events = [r for r in customer_rows if r[0] == 1][:limit]
            customer_rows = [r for r in customer_rows if r[0] != 1] + events
        ctx = context_from_rows(customer_rows, model, plan.config, now)
        payload = rank(model=model, ctx=ctx, config=plan.config, category=None, exclude=(), rules=state["rules"],
                       depth=depth)
        payload["ready"] = True
        entries[customer_cache_key(externals[pk])] = {signature(plan, state, None, ()): payload}
    cache.set_many(entries, ready_seconds())
    after = cache.get_many(markers)
    moved = [customer_cache_key(ext) for ext in externals.values()
             if after.get(marker_key(ext)) != before.get(marker_key(ext))]
    if moved:
        cache.delete_many(moved)
    return len(entries.keys() - set(moved))


def refresh_customers(external_ids) -> int:
    """Make the ready lists of these customers (those of the population); returns how many."""
    if not ready_enabled():
        return 0
    state = serving_state()
    if not serving_anything(state):
        return 0
    external_ids = sorted(set(external_ids))
    stored = 0
    for start in range(0, len(external_ids), CHUNK):
        externals = dict(_population().filter(external_id__in=external_ids[start : start + CHUNK])
                         .values_list("pk", "external_id"))
        if externals:
            stored += _refresh_chunk(externals, state, time.time())
    return stored


def refresh_all() -> dict | None:
    """Make the ready list of every customer of the population. One refresh at a time: a call
    while another runs asks it to run once more when it is done (what serves may have changed
    after it started), and returns None."""
    if not ready_enabled():
        return None
    token = secrets.token_hex(8)
    if not cache.add(LOCK_KEY, token, LOCK_SECONDS):
        cache.set(AGAIN_KEY, 1, 3600)
        return None
    try:
        while True:
            cache.delete(AGAIN_KEY)
            status = _refresh_all_once()
            if not cache.get(AGAIN_KEY):
                return status
    finally:
        if cache.get(LOCK_KEY) == token:
            cache.delete(LOCK_KEY)


def _refresh_all_once() -> dict:
    forget_serving_state()  # the change that asked for this refresh may be seconds old
    catalog(fresh=True)
    state = serving_state()
    started, t0 = timezone.now(), time.perf_counter()
    stored = customers = 0
    if serving_anything(state):
        population = _population().order_by("pk").values_list("pk", "external_id")
        last = 0
        while True:
            chunk = list(population.filter(pk__gt=last)[:CHUNK])
            if not chunk:
                break
            last = chunk[-1][0]
            customers += len(chunk)
            stored += _refresh_chunk(dict(chunk), state, time.time())
            cache.touch(LOCK_KEY, LOCK_SECONDS)
    status = {"started": started.isoformat(), "seconds": round(time.perf_counter() - t0, 1), "customers": customers,
              "stored": stored, "version": state["version"], "depth": ready_depth()}
    cache.set(STATUS_KEY, status, None)
    logger.info("recs_ready_refreshed customers=%s stored=%s seconds=%s", customers, stored, status["seconds"])
    return status


def ready_status() -> dict:
    """The last full refresh (for the models page), with whether it matches what serves now;
    {"enabled": False} when ready lists are off."""
    if not ready_enabled():
        return {"enabled": False}
    status = cache.get(STATUS_KEY)
    if status is None:
        return {"enabled": True, "running": cache.get(LOCK_KEY) is not None}
    return {**status, "enabled": True, "started": datetime.fromisoformat(status["started"]),
            "current": status.get("version") == serving_state()["version"],
            "running": cache.get(LOCK_KEY) is not None}


# --- triggers ---------------------------------------------------------------------------------

def enqueue_refresh_all() -> None:
    """Ask a worker for a full refresh (after commit). A broker that cannot take the message
    costs readiness, not correctness: requests rank on request until the next refresh."""
    if not ready_enabled():
        return
    from .tasks import recs_refresh_ready

    try:
        recs_refresh_ready.delay()
    except Exception:  # noqa: BLE001 - the change that asked for it is committed already
        logger.exception("recs_ready_enqueue_failed scope=all")


def enqueue_refresh_customers(external_ids) -> None:
    """Ask a worker to re-make these customers' lists.

    On Redis the customers join one pending set, and a drain task is queued only when none is
    queued or running (a flag set with NX): however fast events arrive, the queue holds one
    message, and the worker takes the pending customers 500 at a time, one statement each,
    where a task per ingest call would pay a task's overhead per customer and could fall
    behind for good. Without Redis, one task per call."""
    if not ready_enabled() or not external_ids:
        return
    from .tasks import recs_refresh_customers

    try:
        if not serving_anything(serving_state()):  # no model yet (this process's copy, seconds old at most)
            return
        redis = raw_redis()
        if redis is None:
            recs_refresh_customers.delay(sorted(external_ids))
            return
        pipe = redis.pipeline(transaction=False)
        pipe.sadd(cache.make_key(PENDING_KEY), *external_ids)
        pipe.set(cache.make_key(DRAIN_KEY), 1, nx=True, ex=LOCK_SECONDS)
        _added, first = pipe.execute()
        if first:
            recs_refresh_customers.delay()
    except Exception:  # noqa: BLE001 - the events are stored; their customers rank on request
        logger.exception("recs_ready_enqueue_failed customers=%s", len(external_ids))


def drain_pending() -> int:
    """The drain task: re-make the lists of the pending customers until none is left; returns
    how many lists it stored. The flag goes before the last look at the set, so a customer
    added meanwhile is either seen here or queues a new drain."""
    redis = raw_redis()
    if redis is None:
        return 0
    pending, flag = cache.make_key(PENDING_KEY), cache.make_key(DRAIN_KEY)
    stored = 0
    while True:
        batch = redis.spop(pending, CHUNK)
        if batch:
            stored += refresh_customers([x.decode() if isinstance(x, bytes) else x for x in batch])
            redis.expire(flag, LOCK_SECONDS)
            continue
        redis.delete(flag)
        if not redis.scard(pending) or not redis.set(flag, 1, nx=True, ex=LOCK_SECONDS):
            return stored  # nothing left, or a new drain is queued for what came
