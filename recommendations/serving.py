"""Request-time recommendations: the customer's recent events combined with the active
model's artefact, business filters, per-tier rules, cold-start fallbacks, cache (reasons.py
words the reasons; ready.py ranks lists ahead with the same functions).

A request reads, at most: the serving state (in-process, see model_store), the customer's
cache entry (one Redis GET), and on a miss three indexed queries (customer, their latest
events, their tiers). Everything else is numpy over arrays held by the process.

Cache: one entry per customer (`recs:c:<external id>`), a small dict of ranked lists keyed by
the request's signature (model, arm, state version, which covers the cache generation,
category, exclusions). The limit is not part of the signature: a ranked list is stored long
enough for any limit. New events of the customer delete the entry (`invalidate_customers`, connected to accounts'
`events_stored`), and so does a change of their tiers (segmentation's `tiers_changed`; a run
that moves very many customers moves the generation instead, which retires every entry).
"""
from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass

import numpy as np
from django.core.cache import cache
from django.db import transaction

from accounts.models import Customer, Event
from crm.core.errors import ApplicationError, InvalidInput, NotFound
from segmentation.models import Membership

from .artefacts import SECONDS_PER_DAY, History, ServingModel
from .choices import Arm, ModelUse, TierRuleAction
from .features import event_weights
from .model_store import DEFAULT_CONFIG, bump_cache_generation, catalog, conf, serving_model, serving_state
from .reasons import render_items

MAX_LIMIT = 100
STOCK_MARGIN = 20  # items ranked beyond the limit, for items that go out of stock after ranking
RANKED_LENGTH = MAX_LIMIT + STOCK_MARGIN  # stored per signature on request: enough for any limit
MAX_SIGNATURES = 8  # per customer entry
EXCLUDE_MAX = 200
STRENGTH = {"purchase": 4, "add_to_cart": 3, "rate": 2, "review": 2, "view": 1, "click": 1, "rec_click": 1}


class NoActiveModel(ApplicationError):
    code, http_status = "no_active_model", 503

    def __init__(self):
        super().__init__("No recommendation model is active yet: train one and activate it.")


# --- input ------------------------------------------------------------------------------------

def parse_limit(raw, *, default: int = 10) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise InvalidInput(f"'limit' must be a whole number from 1 to {MAX_LIMIT} (got '{str(raw)[:40]}').",
                           extra={"fields": {"limit": [f"Must be a whole number from 1 to {MAX_LIMIT}."]}}) from None
    if not 1 <= value <= MAX_LIMIT:
        raise InvalidInput(f"'limit' must be from 1 to {MAX_LIMIT} (got {value}).",
                           extra={"fields": {"limit": [f"Must be from 1 to {MAX_LIMIT}."]}})
    return value


def parse_exclude(raw) -> tuple[str, ...]:
    if not raw:
        return ()
    values = raw if isinstance(raw, (list, tuple)) else [raw]
    out = sorted({x.strip() for v in values for x in str(v).split(",") if x.strip()})
    if len(out) > EXCLUDE_MAX:
        raise InvalidInput(f"'exclude' takes at most {EXCLUDE_MAX} item ids.",
                           extra={"fields": {"exclude": [f"At most {EXCLUDE_MAX} item ids."]}})
    return tuple(out)


def check_category(category: str | None) -> str | None:
    if category is None or category == "":
        return None
    if category not in catalog().categories:
        known = sorted(catalog().categories)
        shown = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "")
        raise InvalidInput(f"Unknown category '{category[:100]}'. Known categories: {shown}.",
                           extra={"fields": {"category": ["Unknown category."]}})
    return category


# --- experiments ------------------------------------------------------------------------------

def experiment_arm(*, experiment_id: int, customer: str, traffic_b: float) -> str:
    """The customer's arm: a stable hash of experiment and customer, uniform in [0, 1)."""
    digest = hashlib.sha256(f"{experiment_id}:{customer}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return Arm.B if u < traffic_b else Arm.A


def rec_id_prefix(model_id: int, experiment_id: int | None = None, arm: str | None = None) -> str:
    """rec_id = "m<model>.x<experiment><arm>.<token>" (x0 outside experiments); selectors count
    impressions, clicks and purchases per model and arm by this prefix."""
    return f"m{model_id}.x{experiment_id}{arm}." if experiment_id else f"m{model_id}.x0."


@dataclass
class Plan:
    model_id: int
    sha: str
    config: dict
    experiment_id: int | None = None
    arm: str | None = None


def serving_plan(customer: str, state: dict | None = None) -> Plan:
    """Which model and configuration answer this customer (experiment arm or the active model)."""
    state = state or serving_state()
    active = state["active"].get(ModelUse.CUSTOMER)
    exp = state["experiment"]
    model_id, arm_config, exp_id, arm = active, {}, None, None
    if exp:
        arm = experiment_arm(experiment_id=exp["id"], customer=customer, traffic_b=exp["traffic_b"])
        side = exp[str(arm)]
        model_id = side["model"] or active
        arm_config = side["config"]
        exp_id = exp["id"]
    if model_id is None or model_id not in state["models"]:
        raise NoActiveModel()
    info = state["models"][model_id]
    config = {**DEFAULT_CONFIG, **info["config"], **arm_config}
    return Plan(model_id=model_id, sha=info["sha"], config=config, experiment_id=exp_id, arm=str(arm) if arm else None)


# --- cache ------------------------------------------------------------------------------------

def signature(plan: Plan, state: dict, category: str | None, exclude: tuple[str, ...]) -> str:
    """What a ranked list depends on besides the customer: model, arm, state version (which
    covers rules, configurations and the cache generation), category, exclusions."""
    return f"{plan.model_id}:{plan.sha[:10]}:{plan.arm}:{state['version']}:{category}:{','.join(exclude)}"


def deep_enough(payload: dict, limit: int) -> bool:
    """Whether a stored list answers `limit` items with room for items that went out of stock
    since (ready lists are kept shorter than the lists computed on request)."""
    return payload.get("complete", False) or payload.get("depth", RANKED_LENGTH) >= limit + STOCK_MARGIN


def ready_seconds() -> int:
    return int(conf("RECS_READY_SECONDS", 2 * 86400))


def customer_cache_key(external_id: str, kind: str = "c") -> str:
    """The customer's entry ("c") or ready-list marker ("m", ready.py)."""
    if len(external_id) <= 100 and external_id.isascii() and external_id.isprintable() and " " not in external_id:
        return f"recs:{kind}:{external_id}"
    return f"recs:{kind}#" + hashlib.sha1(external_id.encode()).hexdigest()


def marker_key(external_id: str) -> str:
    """The customer's ready-list marker (see invalidate_customers and ready.py)."""
    return customer_cache_key(external_id, kind="m")


def invalidate_customers(external_ids) -> None:
    """Drop the cached recommendations of these customers (one cache round trip per 1,000; two
    with ready lists: first their markers move, so that a ready-list refresh running now does
    not put back a list ranked without the change (ready.py), then their entries go)."""
    from .ready import ready_enabled

    external_ids = list(external_ids)
    markers = ready_enabled()
    for start in range(0, len(external_ids), 1000):
        chunk = external_ids[start : start + 1000]
        if markers:
            token = secrets.token_hex(6)
            cache.set_many({marker_key(x): token for x in chunk}, ready_seconds())
        cache.delete_many([customer_cache_key(x) for x in chunk])


def on_customer_erased(*, customer, now, by) -> None:
    """accounts' erase step (inside the erasure's transaction): the customer's lists go after
    commit. Ready lists are never made again for an erased customer, and a request ranks them
    as unknown: cold start, nothing of their history."""
    external_id = customer.external_id
    transaction.on_commit(lambda: invalidate_customers([external_id]))


def customers_changed(external_ids) -> None:
    """These customers' history or tiers changed (after commit): their lists go now, and a
    worker makes their ready lists again."""
    from .ready import enqueue_refresh_customers

    invalidate_customers(external_ids)
    enqueue_refresh_customers(external_ids)


def on_events_stored(sender, customers, **kwargs) -> None:
    """accounts' events_stored receiver (after commit)."""
    customers_changed(customers)


# Up to this many tier changes in one run, their customers' entries are dropped one by one;
# beyond (a first run, a rule edited for everyone) every entry is dropped at once by moving the
# cache generation, which is part of every entry's signature.
TIER_INVALIDATE_ONE_BY_ONE = 20_000


def on_tiers_changed(sender=None, changes=None, **kwargs) -> None:
    """segmentation.signals.tiers_changed receiver: a customer's tiers choose the tier rules and
    the tier-popular fallback of their list, so their cached entry goes when a tier changes.

    The number of changes is found by reading at most one more than the limit (through the
    run's index), so a first run's four million changes are not read, let alone joined to the
    customers for their external ids (that took 6 s at 1M customers)."""
    if changes is None:
        return
    sample = list(changes.values_list("customer_id", flat=True)[: TIER_INVALIDATE_ONE_BY_ONE + 1])
    if len(sample) > TIER_INVALIDATE_ONE_BY_ONE:
        bump_cache_generation()
        return
    customers_changed(list(Customer.objects.filter(pk__in=set(sample)).values_list("external_id", flat=True)))


# --- the customer's side ----------------------------------------------------------------------

@dataclass
class CustomerContext:
    pk: int | None
    history: History
    history_pks: list[int]
    purchased_cols: np.ndarray
    interacted_cols: np.ndarray
    tiers: list[tuple[int, str, str, bool, dict]]  # (tier pk, dimension slug, tier name, is_vip, translations)


def context_sql_parts() -> dict[str, str]:
    """Quoted table names and the vendor's expressions the context statements are made of."""
    from django.db import connection

    from segmentation.models import Dimension, Tier

    q = connection.ops.quote_name
    parts = {"customer": q(Customer._meta.db_table), "event": q(Event._meta.db_table),
             "membership": q(Membership._meta.db_table), "dimension": q(Dimension._meta.db_table),
             "tier": q(Tier._meta.db_table)}
    if connection.vendor == "postgresql":
        parts.update(epoch="EXTRACT(EPOCH FROM e.occurred_at)::float8", no_json="CAST(NULL AS jsonb)")
    else:
        parts.update(epoch="(julianday(e.occurred_at) - 2440587.5) * 86400.0", no_json="CAST(NULL AS text)")
    return parts


def _context_sql() -> str:
    """One statement for the customer, their latest item events and their tiers (three indexed
    look-ups through the unique external id), instead of three ORM queries: on the hot path the
    ORM's query building costs more than the database."""
    p = context_sql_parts()
    customer, event, membership, dimension, tier = p["customer"], p["event"], p["membership"], p["dimension"], p["tier"]
    epoch, no_json = p["epoch"], p["no_json"]
    return f"""
        SELECT 0, c.id, CAST(NULL AS text), CAST(NULL AS float8), CAST(NULL AS text), CAST(NULL AS boolean),
               CAST(NULL AS bigint), {no_json} FROM {customer} c
         WHERE c.external_id = %(ext)s AND c.erased_at IS NULL
        UNION ALL
        SELECT * FROM (
            SELECT 1, e.item_id, e.type, {epoch}, CAST(NULL AS text), CAST(NULL AS boolean), CAST(NULL AS bigint),
                   {no_json}
              FROM {customer} c
              JOIN {event} e ON e.customer_id = c.id
             WHERE c.external_id = %(ext)s AND c.erased_at IS NULL AND e.item_id IS NOT NULL
             ORDER BY e.occurred_at DESC LIMIT %(limit)s) ev
        UNION ALL
        SELECT 2, m.tier_id, d.slug, CAST(d."order" AS float8), t.name, t.is_vip, d.id, t.translations
          FROM {customer} c
          JOIN {membership} m ON m.customer_id = c.id
          JOIN {dimension} d ON d.id = m.dimension_id
          JOIN {tier} t ON t.id = m.tier_id
         WHERE c.external_id = %(ext)s AND c.erased_at IS NULL AND d.active"""


_SQL: dict[str, str] = {}
PREPARED = "stratum_recs_context"


def _customer_rows(external_id: str, limit: int) -> list[tuple]:
    """The context rows. On PostgreSQL the statement is prepared once per connection: planning
    its three joined look-ups takes about 1 ms, four times what running them takes.
    RECS_PREPARED_STATEMENTS = False turns that off (for a pooler in transaction mode, such as
    PgBouncer's, which does not keep a session's prepared statements)."""
    from django.db import connection

    sql = _SQL.get(connection.vendor)
    if sql is None:
        sql = _SQL[connection.vendor] = _context_sql()
    params = {"ext": external_id, "limit": int(limit)}
    with connection.cursor() as cur:
        if connection.vendor == "postgresql" and conf("RECS_PREPARED_STATEMENTS", True):
            if not getattr(connection, "_stratum_recs_prepared", False):
                cur.execute(f"PREPARE {PREPARED}(text, integer) AS "
                            + sql.replace("%(ext)s", "$1").replace("%(limit)s", "$2"))
                connection._stratum_recs_prepared = True
            cur.execute(f"EXECUTE {PREPARED}(%(ext)s, %(limit)s)", params)
        else:
            cur.execute(sql, params)
        return cur.fetchall()


def forget_prepared(sender, connection, **kwargs) -> None:
    """django.db.backends.signals.connection_created receiver: a new session has no prepared
    statements."""
    connection._stratum_recs_prepared = False


def _translations(raw) -> dict:
    """A tier's `translations` column as read by the context query: a dict on PostgreSQL, JSON
    text on SQLite (reasons name the tier in the language they are shown in)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return raw if isinstance(raw, dict) else {}


def _customer_context(external_id: str, model: ServingModel, config: dict, now: float) -> CustomerContext:
    return context_from_rows(_customer_rows(external_id, int(config["history_events"])), model, config, now)


def context_from_rows(rows: list[tuple], model: ServingModel, config: dict, now: float) -> CustomerContext:
    """The context from the context query's rows (kind 0: the customer; 1: their item events,
    latest first; 2: their tiers). Ready lists (ready.py) build the rows of many customers with
    one statement and come through here too, so both paths rank the same input."""
    pk = next((r[1] for r in rows if r[0] == 0), None)
    if pk is None:
        empty = History(np.empty(0, dtype=np.int64), np.empty(0), [])
        return CustomerContext(None, empty, [], np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), [])
    weights = event_weights()
    tiers = [(r[1], r[2], r[4], bool(r[5]), _translations(r[7]))
             for r in sorted((r for r in rows if r[0] == 2), key=lambda r: (r[3], r[6]))]
    half_life = float(config["half_life_days"])
    acc: dict[int, list] = {}  # col -> [weight, strongest type, item pk]
    purchased, interacted = set(), set()
    for kind, item_pk, etype, at, *_rest in rows:
        if kind != 1:
            continue
        col = model.col_of.get(item_pk)
        if col is None:
            continue
        w = weights.get(etype, 0.0)
        if etype == "purchase":
            purchased.add(col)
        if w <= 0:
            continue
        interacted.add(col)
        decay = 0.5 ** (max(now - float(at), 0.0) / SECONDS_PER_DAY / half_life)
        entry = acc.setdefault(col, [0.0, etype, item_pk])
        entry[0] += w * decay
        if STRENGTH.get(etype, 0) > STRENGTH.get(entry[1], 0):
            entry[1] = etype
    cols = np.fromiter(acc.keys(), dtype=np.int64, count=len(acc))
    history = History(cols, np.array([v[0] for v in acc.values()], dtype=np.float64), [v[1] for v in acc.values()])
    return CustomerContext(pk, history, [v[2] for v in acc.values()], np.fromiter(purchased, dtype=np.int64),
                           np.fromiter(interacted, dtype=np.int64), tiers)


def _tier_for_popularity(model: ServingModel, tiers) -> tuple | None:
    dimension = conf("RECS_TIER_DIMENSION", "value")
    ordered = sorted(tiers, key=lambda t: t[1] != dimension)
    for tier in ordered:
        if tier[0] in model.tier_index:
            return tier
    return None


def _minmax(s: np.ndarray, mask: np.ndarray) -> np.ndarray:
    vals = s[mask]
    if not len(vals):
        return np.zeros_like(s)
    lo, hi = vals.min(), vals.max()
    span = hi - lo if hi > lo else 1.0
    return (s - lo) / span


def rank(*, model: ServingModel, ctx: CustomerContext, config: dict, category: str | None,
         exclude: tuple[str, ...], rules: dict, depth: int = RANKED_LENGTH) -> dict:
    """The ranked list for a customer: [(item pk, score, reason code, reason arg)], strategy,
    and `depth`, how long the list was allowed to be (pinned items come on top of it)."""
    cat = catalog()
    avail, codes, names = cat.columns(model)
    allowed = avail.copy()
    if category is not None:
        allowed &= codes == names.index(category)
    if config["exclude_purchased"] and len(ctx.purchased_cols):
        allowed[ctx.purchased_cols] = False
    if config["exclude_interacted"] and len(ctx.interacted_cols):
        allowed[ctx.interacted_cols] = False
    for ext in exclude:
        col = model.col_of.get(cat.pk_of.get(ext, -1))
        if col is not None:
            allowed[col] = False

    tier = _tier_for_popularity(model, ctx.tiers)
    fallback, is_tier = model.fallback_unit(tier[0] if tier else None)
    fallback_kind = "tier" if is_tier else "global"

    personal = model.personal_scores(ctx.history)
    if personal is not None:
        has = personal > 0 if all(k == "nb" for k, _ in model.parts) else np.ones(model.n_items, dtype=bool)
        has &= allowed
        scores = np.where(has, 1.0 + _minmax(personal, has), fallback)
        strategy = "personalised" if has.any() else "cold_start"
    else:
        has = np.zeros(model.n_items, dtype=bool)
        scores = fallback
        strategy = "cold_start"

    pinned: list[tuple[int, tuple]] = []
    if config["tier_rules"] and rules and ctx.tiers:
        for tier_pk, _slug, tier_name, is_vip, tier_translations in ctx.tiers:
            for action, item_pk, rule_category, weight in rules.get(tier_pk, ()):
                if item_pk is not None:
                    col = model.col_of.get(item_pk)
                    target = None if col is None else np.array([col])
                else:
                    if rule_category not in names:
                        continue
                    target = np.flatnonzero(codes == names.index(rule_category))
                if target is None or not len(target):
                    continue
                if action == TierRuleAction.PIN:
                    ok = target[allowed[target]]
                    if len(ok):
                        best = int(ok[np.argmax(scores[ok])])
                        if best not in [p for p, _ in pinned]:
                            pinned.append((best, (tier_name, is_vip, tier_translations)))
                else:
                    scores = scores.copy()
                    scores[target] += float(weight)

    before = scores
    scores = np.where(allowed, scores, -np.inf)
    for col, _why in pinned:
        scores[col] = -np.inf  # shown first, once
    n_ok = int(np.isfinite(scores).sum())
    take = min(RANKED_LENGTH + 60, n_ok)  # whatever the depth: the cap below orders these
    if take:
        top = np.argpartition(-scores, take - 1)[:take] if take < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[np.isfinite(scores[top])]
    else:
        top = np.empty(0, dtype=np.int64)

    # Diversity: at most `category_cap` per category; the overflow follows in order (so the
    # list is the same prefix whatever the limit).
    cap = int(config["category_cap"]) if category is None else 0
    if cap and len(top):
        ctop = codes[top]
        order = np.argsort(ctop, kind="stable")  # by category, rank order kept within each
        sorted_codes = ctop[order]
        starts = np.concatenate(([0], np.flatnonzero(np.diff(sorted_codes)) + 1))
        group_start = np.repeat(starts, np.diff(np.append(starts, len(order))))
        rank_in_category = np.empty(len(top), dtype=np.int64)
        rank_in_category[order] = np.arange(len(order)) - group_start
        over = (rank_in_category >= cap) & (ctop >= 0)
        top = np.concatenate([top[~over], top[over]])
    complete = len(top) <= depth
    top = top[:depth]  # a prefix of the list any other depth gives

    best_hist, _strength = model.contributions(ctx.history, top)
    ranked = [(int(model.item_pks[col]), round(float(before[col]), 4), "pinned", [tier_name, bool(is_vip), tier_translations])
              for col, (tier_name, is_vip, tier_translations) in pinned]
    verbs = {"purchase": "bought", "add_to_cart": "carted", "rate": "rated", "review": "rated"}
    kinds, hist_pks = ctx.history.kinds, ctx.history_pks
    tier_arg = [tier[2], bool(tier[3]), tier[4]] if fallback_kind == "tier" else None
    trending = (model.trend[top] > 0) & (codes[top] >= 0)
    for pk, score, h, personal_item, trend, code in zip(model.item_pks[top].tolist(), np.round(scores[top], 4).tolist(),
                                                       best_hist.tolist(), has[top].tolist(), trending.tolist(),
                                                       codes[top].tolist()):
        if personal_item and h >= 0:
            ranked.append((pk, score, verbs.get(kinds[h], "viewed"), hist_pks[h]))
        elif personal_item:
            ranked.append((pk, score, "for_you", None))
        elif tier_arg is not None:
            ranked.append((pk, score, "tier_popular", tier_arg))
        elif trend:
            ranked.append((pk, score, "trending", names[code]))
        else:
            ranked.append((pk, score, "popular", None))
    if strategy == "personalised" and not all(r[2] in ("bought", "carted", "rated", "viewed", "for_you", "pinned")
                                              for r in ranked[:10]):
        strategy = "mixed"
    return {"ranked": ranked, "strategy": strategy, "known": ctx.pk is not None, "depth": depth,
            "complete": complete}


# --- entry points -----------------------------------------------------------------------------

def customer_recommendations(*, external_id: str, limit: int = 10, category: str | None = None,
                             exclude: tuple[str, ...] = (), now: float | None = None, use_cache: bool = True) -> dict:
    """The API answer for GET /customers/{external_id}/recommendations/ (see module docstring).

    Raises InvalidInput for a bad category, NoActiveModel when nothing is trained yet. An
    unknown customer gets cold-start recommendations.
    """
    category = check_category(category)
    plan = serving_plan(external_id)
    state = serving_state()
    sig = signature(plan, state, category, exclude)
    key = customer_cache_key(external_id)
    entry = (cache.get(key) if use_cache else None) or {}
    payload = entry.get(sig)
    if payload is None or not deep_enough(payload, limit):
        model = serving_model(plan.model_id, plan.sha)
        ctx = _customer_context(external_id, model, plan.config, now if now is not None else time.time())
        payload = rank(model=model, ctx=ctx, config=plan.config, category=category, exclude=exclude,
                       rules=state["rules"])
        if use_cache:
            # An entry holding a ready list (ready.py) keeps the ready lists' lifetime: the
            # answers added to it go with the customer's next event like the list does.
            payload["ready"] = bool(entry.get(sig, {}).get("ready"))  # a ready list asked deeper
            if len(entry) >= MAX_SIGNATURES:
                entry = {s: p for s, p in entry.items() if p.get("ready")}
            entry[sig] = payload
            ready = any(p.get("ready") for p in entry.values())
            cache.set(key, entry, ready_seconds() if ready else conf("RECS_CACHE_SECONDS", 600))
    rec_id = rec_id_prefix(plan.model_id, plan.experiment_id, plan.arm) + secrets.token_hex(6)
    return {
        "customer": external_id,
        "rec_id": rec_id,
        "model": plan.model_id,
        "experiment": plan.experiment_id,
        "arm": plan.arm,
        "strategy": payload["strategy"],
        "known_customer": payload["known"],
        "items": render_items(payload["ranked"], limit),
    }


def similar_items(*, external_id: str, limit: int = 10) -> dict:
    """The API answer for GET /items/{external_id}/similar/: the item's neighbours in the active
    "similar" model (else the customer model); an item the model has not seen gets popular
    items of its category. Raises NotFound for an unknown item."""
    cat = catalog()
    pk = cat.pk_of.get(external_id)
    if pk is None:
        raise NotFound(f"No item with external id '{external_id[:128]}'.", extra={"item": external_id[:128]})
    state = serving_state()
    model_id = state["active"].get(ModelUse.SIMILAR) or state["active"].get(ModelUse.CUSTOMER)
    if model_id is None:
        raise NoActiveModel()
    model = serving_model(model_id, state["models"][model_id]["sha"])
    avail, codes, names = cat.columns(model)
    col = model.col_of.get(pk)
    ranked = []
    taken = set()
    if col is not None:
        nbr, sims = model.neighbours(col)
        order = np.argsort(-sims, kind="stable")
        for j, sim in zip(nbr[order].tolist(), sims[order].tolist()):
            if avail[j] and j != col:
                ranked.append((int(model.item_pks[j]), round(sim, 4), "similar", pk))
                taken.add(j)
    if len(ranked) < limit:
        category = cat.by_pk[pk][2]
        if category in names:
            same = np.flatnonzero((codes == names.index(category)) & avail)
            same = same[np.argsort(-model.global_scores()[same], kind="stable")]
            for j in same.tolist():
                if j != col and j not in taken:
                    ranked.append((int(model.item_pks[j]), 0.0, "same_category", category))
                    taken.add(j)
                    if len(ranked) >= limit:
                        break
    rec_id = rec_id_prefix(model_id) + secrets.token_hex(6)
    return {"item": external_id, "rec_id": rec_id, "model": model_id, "items": render_items(ranked, limit)}


def customer_recommendations_safe(*, external_id: str, limit: int = 10) -> dict | None:
    """For staff pages: the customer's current recommendations, or None when none can be made."""
    try:
        return customer_recommendations(external_id=external_id, limit=limit)
    except NoActiveModel:
        return None

