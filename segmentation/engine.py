"""Set-based feature and tier computation. Plain values in, row counts out; no HTTP, no Celery.

A full recompute is a handful of statements over all customers:

1. ``seg_base``: one aggregation of the events table (plus feedback) per customer, as of `as_of`.
2. ``seg_scores``: R/F/M scores from PERCENT_RANK over buyers (ties share the lower score).
3. The features table is rewritten from 1 and 2, with the active predictive models compiled
   to SQL expressions (logistic / log-linear scores and nearest-centroid clusters).
4. Per dimension: the tier of every customer as one CASE expression compiled from the tier
   rules through the ORM, overrides applied, then only the rows that changed are written
   (tier changes appended, memberships updated or inserted).
5. A snapshot of tier sizes for the day.

An incremental recompute does the same for the customers in ``seg_affected``: those with
events since the last run and those whose time-driven features crossed a threshold.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BigIntegerField, BooleanField, Case, Value, When
from django.db.models.expressions import RawSQL

from accounts.models import Customer

from .choices import ChangeCause, DimensionKind
from .models import CustomerFeatures, Dimension, Membership, Tier, TierChange, TierOverride, TierSnapshot
from .rules import compile_rule

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
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400) AS integer)"
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
    """Give the aggregation enough memory not to spill (PostgreSQL) for this transaction."""
    if _pg():
        _exec(f"SET LOCAL work_mem = '{settings.SEGMENTATION_WORK_MEM}'")


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


# ---------------------------------------------------------------------------------------
# 1. Base features
# ---------------------------------------------------------------------------------------
def _window_params(as_of: datetime) -> dict:
    params = {"as_of": _ts(as_of)}
    for w in (*WINDOWS, 2 * TREND_WINDOW):
        params[f"t{w}"] = _ts(as_of - w * DAY)
    return params


def base_features_sql(*, subset: bool) -> str:
    """SELECT of one row of base features per customer (as of %(as_of)s)."""
    purchase = "type = 'purchase'"
    money = "type IN ('purchase', 'refund')"
    only = "AND customer_id IN (SELECT customer_id FROM seg_affected)" if subset else ""
    where_c = "WHERE c.id IN (SELECT customer_id FROM seg_affected)" if subset else ""
    windows = []
    for w in WINDOWS:
        windows.append(f"COUNT(*) FILTER (WHERE {purchase} AND occurred_at > %(t{w})s) AS orders_{w}d")
        windows.append(f"SUM(amount) FILTER (WHERE {money} AND occurred_at > %(t{w})s) AS revenue_{w}d")
    t_prev = f"%(t{2 * TREND_WINDOW})s"
    return f"""
      SELECT c.id AS customer_id,
             COALESCE(c.signup_at, c.first_seen_at) AS joined_at,
             ev.first_purchase_at, ev.last_purchase_at, ev.last_activity_at,
             COALESCE(ev.orders_30d, 0) AS orders_30d, COALESCE(ev.orders_90d, 0) AS orders_90d,
             COALESCE(ev.orders_prev_90d, 0) AS orders_prev_90d, COALESCE(ev.orders_365d, 0) AS orders_365d,
             COALESCE(ev.orders_total, 0) AS orders_total,
             COALESCE(ev.revenue_30d, 0) AS revenue_30d, COALESCE(ev.revenue_90d, 0) AS revenue_90d,
             COALESCE(ev.revenue_365d, 0) AS revenue_365d, COALESCE(ev.revenue_total, 0) AS revenue_total,
             COALESCE(ev.sessions_30d, 0) AS sessions_30d, COALESCE(ev.events_30d, 0) AS events_30d,
             fb.avg_sentiment
        FROM {CUSTOMER_TABLE} c
        LEFT JOIN (
          SELECT customer_id,
                 MIN(occurred_at) FILTER (WHERE {purchase}) AS first_purchase_at,
                 MAX(occurred_at) FILTER (WHERE {purchase}) AS last_purchase_at,
                 MAX(occurred_at) AS last_activity_at,
                 {', '.join(windows)},
                 COUNT(*) FILTER (WHERE {purchase} AND occurred_at > {t_prev} AND occurred_at <= %(t{TREND_WINDOW})s) AS orders_prev_90d,
                 COUNT(*) FILTER (WHERE {purchase}) AS orders_total,
                 SUM(amount) FILTER (WHERE {money}) AS revenue_total,
                 COUNT(DISTINCT {_day('occurred_at')}) FILTER (WHERE occurred_at > %(t30)s) AS sessions_30d,
                 COUNT(*) FILTER (WHERE occurred_at > %(t30)s) AS events_30d
            FROM {EVENT_TABLE}
           WHERE occurred_at <= %(as_of)s {only}
           GROUP BY customer_id
        ) ev ON ev.customer_id = c.id
        LEFT JOIN (
          SELECT customer_id, AVG(sentiment_score) AS avg_sentiment
            FROM {FEEDBACK_TABLE}
           WHERE occurred_at <= %(as_of)s AND sentiment_score IS NOT NULL {only}
           GROUP BY customer_id
        ) fb ON fb.customer_id = c.id
        {where_c}"""


def build_base(*, as_of: datetime, subset: bool) -> int:
    _drop_temp("seg_base")
    sql = base_features_sql(subset=subset).replace("%(as_of)s", _param_ts("as_of"))
    if _pg():
        for w in (*WINDOWS, 2 * TREND_WINDOW):
            sql = sql.replace(f"%(t{w})s", _param_ts(f"t{w}"))
    _exec(f"CREATE TEMP TABLE seg_base AS {sql}", _window_params(as_of))
    if _pg():
        _exec("ANALYZE seg_base")
    return _count("seg_base")


def _count(table: str) -> int:
    with connection.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        return cur.fetchone()[0]


# ---------------------------------------------------------------------------------------
# 2. R/F/M scores
# ---------------------------------------------------------------------------------------
SCORE_INPUTS = {"r": "last_purchase_at", "f": "orders_total", "m": "revenue_total"}


def _rank_score(col: str) -> str:
    # Ties share their lowest position, so equal values always get equal scores.
    return _least("5", f"1 + CAST(FLOOR(5 * PERCENT_RANK() OVER (ORDER BY {col})) AS INTEGER)")


def build_scores_full(*, as_of: datetime) -> dict:
    """Scores by rank among buyers; returns each score's lower bound for incremental runs."""
    _drop_temp("seg_scores")
    _exec(f"""CREATE TEMP TABLE seg_scores AS
              SELECT customer_id, {_rank_score('last_purchase_at')} AS r_score,
                     {_rank_score('orders_total')} AS f_score, {_rank_score('revenue_total')} AS m_score
                FROM seg_base WHERE orders_total > 0""")
    bounds: dict[str, dict[str, float]] = {}
    with connection.cursor() as cur:
        for key, col in SCORE_INPUTS.items():
            if key == "r":
                expr = (f"EXTRACT(EPOCH FROM ({_param_ts('as_of')} - b.last_purchase_at)) / 86400" if _pg()
                        else "julianday(%(as_of)s) - julianday(b.last_purchase_at)")
                # R: a smaller age is better, so each score's bound is its largest age.
                cur.execute(f"SELECT s.r_score, MAX({expr}) FROM seg_scores s JOIN seg_base b USING (customer_id) GROUP BY s.r_score",
                            {"as_of": _ts(as_of)})
            else:
                cur.execute(f"SELECT s.{key}_score, MIN(b.{col}) FROM seg_scores s JOIN seg_base b USING (customer_id) GROUP BY s.{key}_score")
            bounds[key] = {str(score): float(value) for score, value in cur.fetchall()}
    return bounds


def build_scores_with_bounds(*, as_of: datetime, bounds: dict) -> None:
    """Score the subset in seg_base with the bounds of the last full run (same mapping)."""
    _drop_temp("seg_scores")

    def case(key: str, expr: str, larger_is_better: bool) -> str:
        items = sorted(((int(s), v) for s, v in bounds.get(key, {}).items()), reverse=True)
        if not items:
            return "NULL"
        op = ">=" if larger_is_better else "<="
        whens = " ".join(f"WHEN {expr} {op} {float(v)!r} THEN {s}" for s, v in items if s > 1)
        return f"CASE {whens} ELSE 1 END" if whens else "1"

    age = (f"EXTRACT(EPOCH FROM ({_param_ts('as_of')} - last_purchase_at)) / 86400" if _pg()
           else "julianday(%(as_of)s) - julianday(last_purchase_at)")
    _exec(f"""CREATE TEMP TABLE seg_scores AS
              SELECT customer_id, {case('r', age, False)} AS r_score,
                     {case('f', 'orders_total', True)} AS f_score, {case('m', 'revenue_total', True)} AS m_score
                FROM seg_base WHERE orders_total > 0""", {"as_of": _ts(as_of)})


# ---------------------------------------------------------------------------------------
# 3. Features, with the predictive models compiled to SQL
# ---------------------------------------------------------------------------------------
def model_input_sql(name: str) -> str:
    """SQL for a model input over the aliases b (seg_base) and s (seg_scores)."""
    day_counts = {
        "recency_days": "b.last_purchase_at", "activity_recency_days": "b.last_activity_at",
        "days_since_signup": "b.joined_at", "tenure_days": "b.first_purchase_at",
    }
    if name in day_counts:
        return days_between(_param_ts("as_of"), day_counts[name])
    if name in {"r_score", "f_score", "m_score"}:
        return f"s.{name}"
    if name == "avg_order_value":
        return "(b.revenue_total * 1.0 / NULLIF(b.orders_total, 0))"
    allowed = {"orders_30d", "orders_90d", "orders_prev_90d", "orders_365d", "orders_total", "revenue_30d",
               "revenue_90d", "revenue_365d", "revenue_total", "sessions_30d", "events_30d", "avg_sentiment"}
    if name not in allowed:
        raise ValueError(f"unknown model input '{name}'")
    return f"b.{name}"


def _num(x: float) -> str:
    return repr(float(x))


def _standardised(inp: dict) -> str:
    x = f"COALESCE(CAST({model_input_sql(inp['field'])} AS double precision), {_num(inp.get('fill', 0))})" if _pg() else \
        f"COALESCE(CAST({model_input_sql(inp['field'])} AS REAL), {_num(inp.get('fill', 0))})"
    if inp.get("log1p"):
        x = f"LN(1 + {_greatest(x, '0')})"
    return f"(({x} - {_num(inp.get('mean', 0))}) / {_num(inp.get('scale', 1) or 1)})"


def model_output_sql(artefact: dict) -> dict[str, str]:
    """Compile a model artefact to SQL expressions, one per output feature column."""
    xs = [_standardised(inp) for inp in artefact["inputs"]]
    out: dict[str, str] = {}
    for column, spec in artefact.get("outputs", {}).items():
        z = " + ".join([_num(spec["intercept"])] + [f"{_num(c)} * {x}" for c, x in zip(spec["coef"], xs, strict=True)])
        z = _least(_greatest(f"({z})", "-40"), "40")
        link = spec.get("link", "identity")
        expr = {"logistic": f"1.0 / (1.0 + EXP(-{z}))", "exp": f"EXP({z})", "identity": z}[link]
        if "clip" in spec:
            lo, hi = spec["clip"]
            expr = _least(_greatest(expr, _num(lo)), _num(hi))
        out[column] = expr
    if "centroids" in artefact:
        dists = [" + ".join(f"({x} - {_num(c)}) * ({x} - {_num(c)})" for x, c in zip(xs, centroid, strict=True))
                 for centroid in artefact["centroids"]]
        whens = []
        for j, dj in enumerate(dists[:-1]):
            cond = " AND ".join(f"({dj}) <= ({dk})" for k, dk in enumerate(dists) if k != j)
            whens.append(f"WHEN {cond} THEN {j}")
        out["cluster"] = f"CASE {' '.join(whens)} ELSE {len(dists) - 1} END" if len(dists) > 1 else "0"
    return out


def _active_model_columns() -> dict[str, str]:
    from .models import PredictiveModel

    columns: dict[str, str] = {}
    for model in PredictiveModel.objects.filter(active=True).order_by("kind"):
        if model.artefact.get("inputs"):
            columns.update(model_output_sql(model.artefact))
    return columns


FEATURE_OUTPUTS = ("churn_probability", "predicted_orders_90d", "predicted_value_365d", "cluster")


def write_features(*, as_of: datetime, computed_at: datetime, subset: bool) -> int:
    models_sql = _active_model_columns()
    outputs = {col: models_sql.get(col, "NULL") for col in FEATURE_OUTPUTS}
    cast_money = "CAST({} AS numeric(12, 2))" if _pg() else "ROUND({}, 2)"
    select = f"""
      SELECT b.customer_id, {_param_ts('as_of')}, {_param_ts('computed_at')}, b.joined_at,
             b.first_purchase_at, b.last_purchase_at, b.last_activity_at,
             {days_between(_param_ts('as_of'), 'b.last_purchase_at')},
             {days_between(_param_ts('as_of'), 'b.last_activity_at')},
             {days_between(_param_ts('as_of'), 'b.joined_at')},
             {days_between(_param_ts('as_of'), 'b.first_purchase_at')},
             b.orders_30d, b.orders_90d, b.orders_prev_90d, b.orders_365d, b.orders_total,
             {cast_money.format('b.revenue_30d')}, {cast_money.format('b.revenue_90d')},
             {cast_money.format('b.revenue_365d')}, {cast_money.format('b.revenue_total')},
             {cast_money.format('b.revenue_total * 1.0 / NULLIF(b.orders_total, 0)')},
             b.sessions_30d, b.events_30d, s.r_score, s.f_score, s.m_score, s.r_score + s.f_score + s.m_score,
             {outputs['churn_probability']}, {outputs['predicted_orders_90d']},
             {cast_money.format(outputs['predicted_value_365d'])}, {outputs['cluster']}, b.avg_sentiment
        FROM seg_base b LEFT JOIN seg_scores s ON s.customer_id = b.customer_id"""
    columns = """customer_id, as_of, computed_at, joined_at, first_purchase_at, last_purchase_at, last_activity_at,
                 recency_days, activity_recency_days, days_since_signup, tenure_days,
                 orders_30d, orders_90d, orders_prev_90d, orders_365d, orders_total,
                 revenue_30d, revenue_90d, revenue_365d, revenue_total, avg_order_value,
                 sessions_30d, events_30d, r_score, f_score, m_score, rfm_score,
                 churn_probability, predicted_orders_90d, predicted_value_365d, cluster, avg_sentiment"""
    params = {"as_of": _ts(as_of), "computed_at": _ts(computed_at)}
    if subset:
        _exec(f"DELETE FROM {FEATURE_TABLE} WHERE customer_id IN (SELECT customer_id FROM seg_affected)")
    else:
        _exec(f"TRUNCATE {FEATURE_TABLE}" if _pg() else f"DELETE FROM {FEATURE_TABLE}")
    return _exec(f"INSERT INTO {FEATURE_TABLE} ({columns}) {select}", params)


# ---------------------------------------------------------------------------------------
# 4. Tiers
# ---------------------------------------------------------------------------------------
def dimensions_in_order(dimensions: Iterable[Dimension], *, as_of: datetime) -> list[Dimension]:
    """Dimensions sorted so that a dimension whose rules refer to another's tiers comes after it."""
    dims = list(dimensions)
    deps: dict[str, set[str]] = {}
    for dim in dims:
        refs: set[str] = set()
        for tier in dim.tiers.all():
            refs |= compile_rule(tier.rule, as_of=as_of, dimension=dim.slug).tier_refs
        deps[dim.slug] = refs
    ordered: list[Dimension] = []
    placed: set[str] = set()
    pending = sorted(dims, key=lambda d: (d.order, d.slug))
    while pending:
        ready = [d for d in pending if deps[d.slug] <= placed | (deps[d.slug] - {x.slug for x in pending})]
        if not ready:
            cycle = ", ".join(d.slug for d in pending)
            raise ValueError(f"tier rules refer to each other in a cycle between dimensions: {cycle}")
        for d in ready:
            ordered.append(d)
            placed.add(d.slug)
            pending.remove(d)
    return ordered


def assignment_queryset(dimension: Dimension, *, as_of: datetime):
    """Customer ids with their tier on `dimension`: first matching rule in order, else fallback."""
    tiers = list(dimension.tiers.all().order_by("order", "id"))
    fallback = dimension.fallback_tier_id or (tiers[-1].id if tiers else None)
    whens = []
    for tier in tiers:
        compiled = compile_rule(tier.rule, as_of=as_of, dimension=dimension.slug)
        if not compiled.matches_nobody:
            whens.append(When(compiled.q, then=Value(tier.id)))
    tier_expr = Case(*whens, default=Value(fallback), output_field=BigIntegerField()) if whens else Value(
        fallback, output_field=BigIntegerField())
    return Customer.objects.annotate(_tier=tier_expr).values_list("id", "_tier")


def assign_dimension(dimension: Dimension, *, as_of: datetime, run_id: int | None, subset: bool) -> int:
    """Write tier changes and memberships of one dimension; returns the number of changes."""
    if not dimension.tiers.exists():
        return 0
    qs = assignment_queryset(dimension, as_of=as_of)
    if subset:
        qs = qs.filter(id__in=RawSQL("SELECT customer_id FROM seg_affected", []))
    sql, params = qs.query.sql_with_params()
    _drop_temp("seg_assign")
    false = "false" if _pg() else "0"
    _exec(f"CREATE TEMP TABLE seg_assign AS SELECT q.id AS customer_id, q._tier AS tier_id, {false} AS overridden FROM ({sql}) q",
          list(params))
    if _pg():
        _exec("CREATE UNIQUE INDEX ON seg_assign (customer_id)")
        _exec("ANALYZE seg_assign")
    else:
        _exec("CREATE UNIQUE INDEX seg_assign_customer ON seg_assign (customer_id)")

    # Overrides in force at as_of win over rules.
    override_params = {"dim": dimension.id, "as_of": _ts(as_of)}
    true = "true" if _pg() else "1"
    _exec(f"""UPDATE seg_assign SET tier_id = o.tier_id, overridden = {true}
                FROM (SELECT DISTINCT ON (customer_id) customer_id, tier_id FROM {TierOverride._meta.db_table}
                       WHERE dimension_id = %(dim)s AND revoked_at IS NULL AND created_at <= {_param_ts('as_of')}
                         AND expires_at > {_param_ts('as_of')}
                       ORDER BY customer_id, created_at DESC) o
               WHERE seg_assign.customer_id = o.customer_id""" if _pg() else f"""
          UPDATE seg_assign SET tier_id = o.tier_id, overridden = 1
            FROM (SELECT customer_id, tier_id FROM {TierOverride._meta.db_table} t
                   WHERE dimension_id = %(dim)s AND revoked_at IS NULL AND created_at <= %(as_of)s AND expires_at > %(as_of)s
                     AND created_at = (SELECT MAX(created_at) FROM {TierOverride._meta.db_table} t2
                                        WHERE t2.customer_id = t.customer_id AND t2.dimension_id = t.dimension_id
                                          AND t2.revoked_at IS NULL AND t2.created_at <= %(as_of)s AND t2.expires_at > %(as_of)s)) o
           WHERE seg_assign.customer_id = o.customer_id""", override_params)

    rule_cause = ChangeCause.MODEL if dimension.kind == DimensionKind.CLUSTER else ChangeCause.RULE
    p = {"dim": dimension.id, "as_of": _ts(as_of), "run": run_id, "rule_cause": str(rule_cause),
         "override": str(ChangeCause.OVERRIDE)}
    changes = _exec(f"""
        INSERT INTO {CHANGE_TABLE} (customer_id, dimension_id, from_tier_id, to_tier_id, at, cause, run_id)
        SELECT a.customer_id, %(dim)s, m.tier_id, a.tier_id, {_param_ts('as_of')},
               CASE WHEN a.overridden THEN %(override)s ELSE %(rule_cause)s END, %(run)s
          FROM seg_assign a
          LEFT JOIN {MEMBERSHIP_TABLE} m ON m.customer_id = a.customer_id AND m.dimension_id = %(dim)s
         WHERE m.id IS NULL OR m.tier_id <> a.tier_id""", p)
    _exec(f"""
        UPDATE {MEMBERSHIP_TABLE} SET tier_id = a.tier_id, overridden = a.overridden,
               since = CASE WHEN {MEMBERSHIP_TABLE}.tier_id <> a.tier_id THEN {_param_ts('as_of')} ELSE {MEMBERSHIP_TABLE}.since END
          FROM seg_assign a
         WHERE {MEMBERSHIP_TABLE}.customer_id = a.customer_id AND {MEMBERSHIP_TABLE}.dimension_id = %(dim)s
           AND ({MEMBERSHIP_TABLE}.tier_id <> a.tier_id OR {MEMBERSHIP_TABLE}.overridden <> a.overridden)""", p)
    _exec(f"""
        INSERT INTO {MEMBERSHIP_TABLE} (customer_id, dimension_id, tier_id, since, overridden)
        SELECT a.customer_id, %(dim)s, a.tier_id, {_param_ts('as_of')}, a.overridden
          FROM seg_assign a
         WHERE NOT EXISTS (SELECT 1 FROM {MEMBERSHIP_TABLE} m WHERE m.customer_id = a.customer_id AND m.dimension_id = %(dim)s)""", p)
    _drop_temp("seg_assign")
    return changes


# ---------------------------------------------------------------------------------------
# 5. Snapshot
# ---------------------------------------------------------------------------------------
def write_snapshot(*, as_of: datetime) -> int:
    day = as_of.date()
    table = TierSnapshot._meta.db_table
    return _exec(f"""
        INSERT INTO {table} (date, dimension_id, tier_id, customers)
        SELECT %(day)s, t.dimension_id, t.id, COALESCE(m.n, 0)
          FROM {Tier._meta.db_table} t
          LEFT JOIN (SELECT tier_id, COUNT(*) AS n FROM {MEMBERSHIP_TABLE} GROUP BY tier_id) m ON m.tier_id = t.id
         WHERE 1 = 1
        ON CONFLICT (date, tier_id) DO UPDATE SET customers = excluded.customers""", {"day": day})


# ---------------------------------------------------------------------------------------
# Incremental: who is affected
# ---------------------------------------------------------------------------------------
HIGH_WATER_MARGIN = 10_000  # event ids may commit out of order; look back this many ids


def build_affected(*, as_of: datetime, since_as_of: datetime, event_high_water: int, thresholds: set[int]) -> int:
    """Customers whose features or tiers may differ between since_as_of and as_of."""
    _drop_temp("seg_affected")
    _exec("CREATE TEMP TABLE seg_affected (customer_id bigint PRIMARY KEY)" if _pg()
          else "CREATE TEMP TABLE seg_affected (customer_id INTEGER PRIMARY KEY)")
    ignore = "ON CONFLICT DO NOTHING" if _pg() else ""
    ins = "INSERT INTO seg_affected (customer_id)" if _pg() else "INSERT OR IGNORE INTO seg_affected (customer_id)"
    # New events (and events stored late for the past).
    _exec(f"{ins} SELECT DISTINCT customer_id FROM {EVENT_TABLE} WHERE id > %(hw)s {ignore}",
          {"hw": max(0, event_high_water - HIGH_WATER_MARGIN)})
    # Events leaving a feature window, and timestamps crossing a rule's day threshold.
    params = {"lo": None, "hi": None}
    spans = sorted(set(WINDOWS) | {2 * TREND_WINDOW} | set(thresholds))
    with connection.cursor() as cur:
        for days in spans:
            params = {"lo": _ts(since_as_of - days * DAY - DAY), "hi": _ts(as_of - days * DAY)}
            if days in WINDOWS or days == 2 * TREND_WINDOW:
                cur.execute(f"{ins} SELECT DISTINCT customer_id FROM {EVENT_TABLE} "
                            f"WHERE occurred_at > %(lo)s AND occurred_at <= %(hi)s {ignore}", params)
            for col in ("last_purchase_at", "last_activity_at", "joined_at", "first_purchase_at"):
                cur.execute(f"{ins} SELECT customer_id FROM {FEATURE_TABLE} WHERE {col} > %(lo)s AND {col} <= %(hi)s {ignore}",
                            params)
    # Overrides that started or ended in between; customers never computed.
    _exec(f"""{ins} SELECT customer_id FROM {TierOverride._meta.db_table}
              WHERE (expires_at > %(lo)s AND expires_at <= %(hi)s) OR (created_at > %(lo)s AND created_at <= %(hi)s)
                 OR (revoked_at > %(lo)s AND revoked_at <= %(hi)s) {ignore}""",
          {"lo": _ts(since_as_of - DAY), "hi": _ts(as_of)})
    _exec(f"""{ins} SELECT c.id FROM {CUSTOMER_TABLE} c
              WHERE NOT EXISTS (SELECT 1 FROM {FEATURE_TABLE} f WHERE f.customer_id = c.id) {ignore}""")
    return _count("seg_affected")


def max_event_id() -> int:
    with connection.cursor() as cur:
        cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM {EVENT_TABLE}")
        return int(cur.fetchone()[0])


# ---------------------------------------------------------------------------------------
# The whole pass
# ---------------------------------------------------------------------------------------
@dataclass
class PassResult:
    customers: int
    changes: int
    timings: dict[str, float]
    score_bounds: dict
    event_high_water: int
    changes_by_dimension: dict[str, int]


def recompute_pass(*, as_of: datetime, computed_at: datetime, run_id: int | None, incremental_from: dict | None = None,
                   on_stage: Callable[[str, int], None] | None = None) -> PassResult:
    """Features, tiers of every active dimension, memberships, changes and snapshot.

    `incremental_from` (as_of, event_high_water, score_bounds of the previous run) limits the
    pass to affected customers. Each stage commits on its own, so progress is visible and a
    failure leaves consistent tables that the next run completes.
    """
    stage = Stage(on_stage=on_stage)
    subset = incremental_from is not None
    high_water = max_event_id()
    dims = dimensions_in_order(
        Dimension.objects.filter(active=True).prefetch_related("tiers"), as_of=as_of)

    with transaction.atomic():
        _session_tuning()
        if subset:
            thresholds: set[int] = set()
            from .rules import time_thresholds

            for dim in dims:
                for tier in dim.tiers.all():
                    thresholds |= time_thresholds(tier.rule)
            stage.run("affected", 2, lambda: build_affected(
                as_of=as_of, since_as_of=incremental_from["as_of"],
                event_high_water=incremental_from["event_high_water"], thresholds=thresholds))
        customers = stage.run("aggregate", 5, lambda: build_base(as_of=as_of, subset=subset))
        if subset:
            bounds = incremental_from["score_bounds"]
            stage.run("scores", 40, lambda: build_scores_with_bounds(as_of=as_of, bounds=bounds))
        else:
            bounds = stage.run("scores", 40, lambda: build_scores_full(as_of=as_of))
        stage.run("features", 50, lambda: write_features(as_of=as_of, computed_at=computed_at, subset=subset))
        _drop_temp("seg_base", "seg_scores")

    changes_by_dim: dict[str, int] = {}
    for i, dim in enumerate(dims):
        def one(dim=dim):
            with transaction.atomic():
                _session_tuning()
                return assign_dimension(dim, as_of=as_of, run_id=run_id, subset=subset)

        changes_by_dim[dim.slug] = stage.run(f"tiers:{dim.slug}", 60 + int(30 * i / max(1, len(dims))), one)
    with transaction.atomic():
        stage.run("snapshot", 95, lambda: write_snapshot(as_of=as_of))
        if subset:
            _drop_temp("seg_affected")
    return PassResult(customers=customers, changes=sum(changes_by_dim.values()), timings=stage.timings,
                      score_bounds=bounds, event_high_water=high_water, changes_by_dimension=changes_by_dim)
