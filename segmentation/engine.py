"""Set-based feature and tier computation. Plain values in, row counts out; no HTTP, no Celery.

A full recompute is a handful of statements over all customers:

1. ``seg_base``: one aggregation of the events table (plus feedback) per customer, as of `as_of`.
2. R/F/M score bounds: PERCENT_RANK over buyers in fifths (ties share the lower score),
   found from a few order statistics; every customer is then scored by comparison.
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
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BigIntegerField, Case, Value, When
from django.db.models.expressions import RawSQL

from accounts.models import Customer
from crm.core.money import MONEY_PLACES

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


# ---------------------------------------------------------------------------------------
# 1. Base features
# ---------------------------------------------------------------------------------------
def _window_params(as_of: datetime) -> dict:
    params = {"as_of": _ts(as_of)}
    for w in (*WINDOWS, 2 * TREND_WINDOW):
        params[f"t{w}"] = _ts(as_of - w * DAY)
    return params


def base_features_sql(*, subset: bool, per_customer: bool | None = None) -> str:
    """SELECT of one row of base features per customer (as of %(as_of)s).

    `per_customer` (PostgreSQL, a small subset): aggregate each affected customer's events
    through the (customer_id, occurred_at) index instead of hashing the whole table.
    """
    lateral = subset and _pg() and (per_customer is None or per_customer)
    purchase = "type = 'purchase'"
    money = "type IN ('purchase', 'refund')"
    only = "AND customer_id IN (SELECT customer_id FROM seg_affected)" if subset else ""
    where_c = "WHERE c.id IN (SELECT customer_id FROM seg_affected)" if subset else ""
    if lateral:
        only = "AND customer_id = c.id"
        where_c = ""
    # PostgreSQL sums money in whole cents as double precision: its numeric SUM allocates per
    # row and ships a large state between parallel workers, and so does its bigint SUM (a
    # 128-bit state, serialised per group), while a double is a plain value: 0.3 s of the
    # aggregation at 10M events. Whole numbers below 2^53 add exactly in a double, in any
    # order, so the sums are exact up to 90 trillion in money per customer. The outer SELECT
    # turns cents back into amounts (x 0.01, not / 100: exact, no rounding when cast to money).
    scale = 10**MONEY_PLACES
    amount = f"CAST(CAST(amount * {scale} AS bigint) AS float8)" if _pg() else "amount"
    unit = f"CAST({{}} AS bigint) * {Decimal(1).scaleb(-MONEY_PLACES)}" if _pg() else "{}"
    # Each FILTER tests its cheapest condition first (they stop at the first false one): a
    # time comparison before a comparison of the type's text, and for sums, whether there is
    # an amount at all (a sum skips rows without one anyway): about 0.3 s of the aggregation
    # at 10M events.
    with_amount = "amount IS NOT NULL AND "
    windows = []
    for w in WINDOWS:
        windows.append(f"COUNT(*) FILTER (WHERE occurred_at > %(t{w})s AND {purchase}) AS orders_{w}d")
        windows.append(f"SUM({amount}) FILTER (WHERE {with_amount}occurred_at > %(t{w})s AND {money}) AS revenue_{w}d")
    t_prev = f"%(t{2 * TREND_WINDOW})s"
    # Days with activity in the last 30 days. PostgreSQL: a bit per calendar day since t30's (31
    # at most), OR-ed in the aggregation and counted; OR combines across parallel workers,
    # where a DISTINCT count would need a pass and a sort of its own (0.7 s at 10M events).
    # Elsewhere: COUNT(DISTINCT day) apart (s30 below).
    sessions_pg = _pg()
    if sessions_pg:
        windows.append(f"BIT_OR(CAST(1 AS bigint) << ({_day('occurred_at')} - {_day('%(t30)s')})) "
                       f"FILTER (WHERE occurred_at > %(t30)s) AS days_30d")
    source = f"seg_affected a JOIN {CUSTOMER_TABLE} c ON c.id = a.customer_id" if lateral else f"{CUSTOMER_TABLE} c"
    group = "" if lateral else "GROUP BY customer_id"
    on_ev, on_s30, on_fb = ("true", "true", "true") if lateral else (
        "ev.customer_id = c.id", "s30.customer_id = c.id", "fb.customer_id = c.id")
    lateral_kw = "LATERAL " if lateral else ""
    if sessions_pg:
        sessions = "COALESCE(bit_count(CAST(ev.days_30d AS bit(64))), 0)"
        s30 = ""
    else:
        sessions = "COALESCE(s30.sessions_30d, 0)"
        s30 = f"""LEFT JOIN {lateral_kw}(
          -- Apart: a DISTINCT aggregate would make the whole aggregation above sort every event.
          SELECT {'' if lateral else 'customer_id, '}COUNT(DISTINCT {_day('occurred_at')}) AS sessions_30d
            FROM {EVENT_TABLE}
           WHERE occurred_at > %(t30)s AND occurred_at <= %(as_of)s {only}
           {group}
        ) s30 ON {on_s30}"""
    return f"""
      SELECT c.id AS customer_id,
             COALESCE(c.signup_at, c.first_seen_at) AS joined_at,
             ev.first_purchase_at, ev.last_purchase_at, ev.last_activity_at,
             COALESCE(ev.orders_30d, 0) AS orders_30d, COALESCE(ev.orders_90d, 0) AS orders_90d,
             COALESCE(ev.orders_prev_90d, 0) AS orders_prev_90d, COALESCE(ev.orders_365d, 0) AS orders_365d,
             COALESCE(ev.orders_total, 0) AS orders_total,
             {', '.join(f"COALESCE({unit.format(f'ev.{c}')}, 0) AS {c}"
                        for c in ('revenue_30d', 'revenue_90d', 'revenue_365d', 'revenue_total'))},
             {sessions} AS sessions_30d, COALESCE(ev.events_30d, 0) AS events_30d,
             fb.avg_sentiment
        FROM {source}
        LEFT JOIN {lateral_kw}(
          SELECT {'' if lateral else 'customer_id, '}MIN(occurred_at) FILTER (WHERE {purchase}) AS first_purchase_at,
                 MAX(occurred_at) FILTER (WHERE {purchase}) AS last_purchase_at,
                 MAX(occurred_at) AS last_activity_at,
                 {', '.join(windows)},
                 COUNT(*) FILTER (WHERE occurred_at > {t_prev} AND occurred_at <= %(t{TREND_WINDOW})s AND {purchase}) AS orders_prev_90d,
                 COUNT(*) FILTER (WHERE {purchase}) AS orders_total,
                 SUM({amount}) FILTER (WHERE {with_amount}{money}) AS revenue_total,
                 COUNT(*) FILTER (WHERE occurred_at > %(t30)s) AS events_30d
            FROM {EVENT_TABLE}
           WHERE occurred_at <= %(as_of)s {only}
           {group}
        ) ev ON {on_ev}
        {s30}
        LEFT JOIN {lateral_kw}(
          SELECT {'' if lateral else 'customer_id, '}AVG(sentiment_score) AS avg_sentiment
            FROM {FEEDBACK_TABLE}
           WHERE occurred_at <= %(as_of)s AND sentiment_score IS NOT NULL {only}
           {group}
        ) fb ON {on_fb}
        {where_c}"""


def build_base(*, as_of: datetime, subset: bool, per_customer: bool | None = None) -> int:
    _drop_temp("seg_base")
    sql = base_features_sql(subset=subset, per_customer=per_customer).replace("%(as_of)s", _param_ts("as_of"))
    if _pg():
        for w in (*WINDOWS, 2 * TREND_WINDOW):
            sql = sql.replace(f"%(t{w})s", _param_ts(f"t{w}"))
    if subset:
        _exec(f"CREATE TEMP TABLE seg_base AS {sql}", _window_params(as_of))
    else:
        # Every customer: read the events in customer order from the covering index
        # (customer_id, occurred_at) INCLUDE (type, amount), not by a scan of the table. Events
        # are stored in time order, so each parallel worker of a table scan meets nearly every
        # customer and the leader then merges about two partial rows per customer, one at a
        # time (on the benchmark 2.3M partial rows of a dozen aggregates: most of the time).
        # In index order each worker aggregates whole customers, the partial groups hardly
        # overlap and the other inputs join by merging in the same order. The planner's cost
        # model does not see the difference (it takes the groups to be few), so the statement
        # turns off what it would choose instead (hashing the groups, and the joins): about
        # 12 s -> 6 s at 10M events. The customers themselves are read by a scan of the table
        # and sorted (0.6 s at 1M; through their primary key, 1.7 s of the leader's time).
        with plan_settings(enable_hashagg="off", enable_hashjoin="off"):
            _exec(f"CREATE TEMP TABLE seg_base AS {sql}", _window_params(as_of))
    if _pg() and subset:
        # The subset is joined by key to large tables next; a full run only scans seg_base.
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


def _age_days(ts: str) -> str:
    """SQL for the age in days (fractional) of timestamp `ts` at %(as_of)s: R's scale."""
    if _pg():
        return f"date_part('epoch', {_param_ts('as_of')} - {ts}) / 86400"
    return f"julianday(%(as_of)s) - julianday({ts})"


@dataclass
class ScoreBounds:
    """R/F/M score bounds: `stored` ({"r"|"f"|"m": {score: bound}}, R's as ages in days, F's and
    M's as values) is what a run records and later incremental runs score with; `r_from`
    ({score: timestamp}) is R's bounds as timestamps, exact for the run that found them."""

    stored: dict
    r_from: dict = field(default_factory=dict)


def build_scores_full(*, as_of: datetime) -> ScoreBounds:
    """The R/F/M score bounds by rank among the buyers in seg_base (a few narrow queries).

    A buyer's score on a measure is 1 + floor(5 L / (n - 1)), at most 5, where n is the number
    of buyers and L the number of them with a lower value: PERCENT_RANK in fifths, so ties
    share the lower score. In integers: the score is at least s when L >= k_s = ceil((s - 1)(n
    - 1) / 5), that is when the value exceeds the k_s-th smallest one. The bound of score s is
    the smallest value above it (the lowest value that scores s or more); with one buyer,
    everyone scores 1. Every customer is then scored by comparing with the bounds
    (scores_sql), in full and incremental runs alike, instead of ranking a million rows by a
    window function and joining the ranks back.
    """
    params = {"as_of": _ts(as_of)}
    with connection.cursor() as cur:
        if _pg():
            n, values = _lowest_by_score_pg(cur, params)
        else:
            n, values = _lowest_by_score(cur, params)
    bounds = ScoreBounds({key: {} for key in SCORE_INPUTS})
    for (key, s), value in (values.items() if n else ()):
        if value is None or key == "age":
            continue
        if key == "r":
            bounds.r_from[str(s)] = value
            value = values[("age", s)]
        bounds.stored[key][str(s)] = float(value)
    return bounds


def _k(s: int, n: int) -> int:
    """k_s = ceil((s - 1)(n - 1) / 5) (see build_scores_full)."""
    return ((s - 1) * (n - 1) + 4) // 5


def _score_ranks(n: int) -> dict[int, int]:
    """{score s: k_s}, the rank (1-based, among n buyers) whose value the score must exceed; score
    1 maps to rank 1 (the lowest value). With one buyer there is only score 1."""
    return {1: 1, **({s: _k(s, n) for s in range(2, 6)} if n > 1 else {})}


def _lowest_by_score(cur, params: dict) -> tuple[int, dict]:
    """(number of buyers in seg_base, {(key, s): the lowest value scoring s or more} with
    ("age", s) for R's bounds as ages): counted, then the rows at the ranks of _score_ranks
    numbered by ROW_NUMBER, then the lowest value above each (SQLite; see build_scores_full)."""
    cur.execute("SELECT COUNT(*) FROM seg_base WHERE orders_total > 0")
    n = cur.fetchone()[0]
    if not n:
        return 0, {}
    ranks = ", ".join(map(str, set(_score_ranks(n).values())))
    nth = {}
    for col in SCORE_INPUTS.values():
        cur.execute(f"""SELECT rn, {col} FROM (SELECT {col}, ROW_NUMBER() OVER (ORDER BY {col}) AS rn
                                                 FROM seg_base WHERE orders_total > 0) x
                         WHERE rn IN ({ranks})""")
        nth[col] = dict(cur.fetchall())
    # The lowest value scoring 1 (everyone), then the lowest above each k_s-th value; for R
    # also its age at as_of, computed as scores_sql computes every customer's age.
    params = dict(params)
    lowest: list[tuple[str, int, str]] = []
    for key, col in SCORE_INPUTS.items():
        for s, k in _score_ranks(n).items():
            value = f"MIN({col})"
            if s > 1:
                params[f"{key}{s}"] = nth[col][k]
                value = f"MIN({col}) FILTER (WHERE {col} > %({key}{s})s)"
            lowest.append((key, s, value))
            if key == "r":
                lowest.append(("age", s, _age_days(value)))
    cur.execute(f"SELECT {', '.join(expr for _, _, expr in lowest)} FROM seg_base WHERE orders_total > 0", params)
    return n, dict(zip(((key, s) for key, s, _ in lowest), cur.fetchone(), strict=True))


def _lowest_by_score_pg(cur, params: dict) -> tuple[int, dict]:
    """_lowest_by_score in one scan of seg_base (PostgreSQL): each measure sorted into an array
    (about half the time of ranking by window functions); the k_s-th element is found at its
    index, and the lowest value above it by width_bucket, a binary search of the sorted array
    (the number of elements up to that value)."""
    keys = list(SCORE_INPUTS)
    aggs = ", ".join(f"array_agg({SCORE_INPUTS[key]} ORDER BY {SCORE_INPUTS[key]}) AS {key}" for key in keys)
    # _k in SQL: the ranks depend on the count the same scan finds. With one buyer, k_s is 0
    # and the bounds above score 1 come out NULL.
    picks, names = [], []
    for key in keys:
        for s in range(1, 6):
            k = "1" if s == 1 else f"(({s} - 1) * (n - 1) + 4) / 5"
            picks.append(f"{key}[1]" if s == 1 else f"{key}[width_bucket({key}[{k}], {key}) + 1]")
            names.append((key, s))
    columns = ", ".join(f"{expr} AS v{i}" for i, expr in enumerate(picks))
    ages = [(("age", s), _age_days(f"v{i}")) for i, (key, s) in enumerate(names) if key == "r"]
    cur.execute(f"""SELECT n, {', '.join(f'v{i}' for i in range(len(names)))}, {', '.join(expr for _, expr in ages)}
                      FROM (SELECT n, {columns}
                              FROM (SELECT COUNT(*) AS n, {aggs} FROM seg_base WHERE orders_total > 0) x) y""", params)
    n, *row = cur.fetchone()
    return n, dict(zip([*names, *(name for name, _ in ages)], row, strict=True))


def scores_sql(bounds: ScoreBounds | dict) -> tuple[dict[str, str], dict]:
    """SQL for r_score, f_score and m_score of a seg_base row (alias b), and its parameters,
    from the bounds of this run (ScoreBounds, R compared on timestamps) or of a previous full
    run (its stored dict, R compared on ages at this run's as_of): NULL without a purchase."""
    stored, r_from = (bounds.stored, bounds.r_from) if isinstance(bounds, ScoreBounds) else (bounds, {})
    params: dict = {}

    def case(key: str, expr: str, larger_is_better: bool, exact: dict | None = None) -> str:
        items = sorted(((int(s), v) for s, v in stored.get(key, {}).items()), reverse=True)
        if not items:
            return "CAST(NULL AS integer)"  # typed: the column is added up and compared
        op = ">=" if larger_is_better else "<="
        whens = []
        for s, v in items:
            if s == 1:
                continue
            if exact:
                params[f"score_{key}{s}"] = _ts(exact[str(s)]) if isinstance(exact[str(s)], datetime) else exact[str(s)]
                whens.append(f"WHEN {expr} >= {_param_ts(f'score_{key}{s}')} THEN {s}")
            else:
                whens.append(f"WHEN {expr} {op} {float(v)!r} THEN {s}")
        scored = f"CASE {' '.join(whens)} ELSE 1 END" if whens else "1"
        return f"CASE WHEN b.orders_total > 0 THEN {scored} END"

    r = (case("r", "b.last_purchase_at", True, r_from) if r_from
         else case("r", _age_days("b.last_purchase_at"), False))
    return {"r_score": r, "f_score": case("f", "b.orders_total", True),
            "m_score": case("m", "b.revenue_total", True)}, params


def scored_base_sql(bounds: ScoreBounds | dict) -> tuple[str, dict]:
    """seg_base with the R/F/M scores as columns, for FROM ... b (see model_input_sql), and the
    parameters it needs besides %(as_of)s. On PostgreSQL OFFSET 0 keeps it a subquery, so each
    score is computed once per row, not again wherever it is used (rfm_score, model inputs)."""
    exprs, params = scores_sql(bounds)
    scores = ", ".join(f"{expr} AS {name}" for name, expr in exprs.items())
    return f"(SELECT b.*, {scores} FROM seg_base b{' OFFSET 0' if _pg() else ''})", params


# ---------------------------------------------------------------------------------------
# 3. Features, with the predictive models compiled to SQL
# ---------------------------------------------------------------------------------------
def model_input_sql(name: str) -> str:
    """SQL for a model input over the alias b (scored_base_sql: seg_base with the scores)."""
    day_counts = {
        "recency_days": "b.last_purchase_at", "activity_recency_days": "b.last_activity_at",
        "days_since_signup": "b.joined_at", "tenure_days": "b.first_purchase_at",
    }
    if name in day_counts:
        return days_between(_param_ts("as_of"), day_counts[name])
    if name in {"r_score", "f_score", "m_score"}:
        return f"b.{name}"
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


def write_features(*, as_of: datetime, computed_at: datetime, subset: bool, bounds: ScoreBounds | dict) -> int:
    scored, score_params = scored_base_sql(bounds)
    models_sql = _active_model_columns()
    outputs = {col: models_sql.get(col, "NULL") for col in FEATURE_OUTPUTS}
    cast_money = "CAST({} AS numeric(12, 2))" if _pg() else "ROUND({}, 2)"
    # Revenue is numeric on PostgreSQL, so dividing it is exact as it is; SQLite would divide
    # integers.
    average = "b.revenue_total / NULLIF(b.orders_total, 0)" if _pg() else "b.revenue_total * 1.0 / NULLIF(b.orders_total, 0)"
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
             {cast_money.format(average)},
             b.sessions_30d, b.events_30d, b.r_score, b.f_score, b.m_score, b.r_score + b.f_score + b.m_score,
             {outputs['churn_probability']}, {outputs['predicted_orders_90d']},
             {cast_money.format(outputs['predicted_value_365d'])}, {outputs['cluster']}, b.avg_sentiment
        FROM {scored} b"""
    columns = """customer_id, as_of, computed_at, joined_at, first_purchase_at, last_purchase_at, last_activity_at,
                 recency_days, activity_recency_days, days_since_signup, tenure_days,
                 orders_30d, orders_90d, orders_prev_90d, orders_365d, orders_total,
                 revenue_30d, revenue_90d, revenue_365d, revenue_total, avg_order_value,
                 sessions_30d, events_30d, r_score, f_score, m_score, rfm_score,
                 churn_probability, predicted_orders_90d, predicted_value_365d, cluster, avg_sentiment"""
    params = {"as_of": _ts(as_of), "computed_at": _ts(computed_at), **score_params}
    if subset:
        _exec(f"DELETE FROM {FEATURE_TABLE} WHERE customer_id IN (SELECT customer_id FROM seg_affected)")
    elif _pg():
        # No ORDER BY: seg_base of a full run is already in customer order (build_base), and
        # the new table is written in the order it is read.
        return _replace_features_table(f"INSERT INTO {FEATURE_TABLE}__new ({columns}) {select}", params)
    else:
        _exec(f"DELETE FROM {FEATURE_TABLE}")
    return _exec(f"INSERT INTO {FEATURE_TABLE} ({columns}) {select}", params)


def _replace_features_table(insert_sql: str, params: dict) -> int:
    """PostgreSQL full run: write the features into a fresh table and swap it in.

    Every row changes on every full run (as_of and the day counts move), and rewriting a
    million rows in place is the slowest way to write them: each row is checked against
    the customer foreign key (a row lock per customer) and inserted into four indexes one
    by one, through a small buffer cache. A fresh table is filled in bulk in customer order,
    its indexes are built in one pass each, and the swap (drop, rename) holds the table's lock
    only for the last few statements. (The customer key has no database check; see the model.)
    Names of the table, indexes and constraints stay those the migrations created.
    """
    table, new = FEATURE_TABLE, f"{FEATURE_TABLE}__new"
    _drop_temp(new)
    # LIKE copies columns, NOT NULL, CHECK constraints (with their names) and storage.
    _exec(f"CREATE TABLE {new} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)")
    rows = _exec(insert_sql, params)
    indexes = _indexes_of(table)
    with connection.cursor() as cur:
        cur.execute("""SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
                        WHERE conrelid = %s::regclass AND contype = 'f'""", [table])
        foreign_keys = cur.fetchall()
    renames = []
    for n, (name, definition, constraint, contype) in enumerate(indexes):
        tmp = f"seg_features_new_idx{n}"
        on_new = definition.replace(f" ON public.{table} ", f" ON public.{new} ").replace(f" ON {table} ", f" ON {new} ")
        _exec(on_new.replace(f"INDEX {name} ON", f"INDEX {tmp} ON", 1))
        renames.append((tmp, name, constraint, contype))
    _exec(f"ANALYZE {new}")
    # The swap: from here to the commit, readers of the table wait (a few short statements).
    # Checks still deferred on the old table (rows written earlier in an enclosing
    # transaction) run now, as DROP TABLE needs; Django's foreign keys are all deferred.
    _exec("SET CONSTRAINTS ALL IMMEDIATE")
    _exec("SET CONSTRAINTS ALL DEFERRED")
    _exec(f"DROP TABLE {table}")
    _exec(f"ALTER TABLE {new} RENAME TO {table}")
    for tmp, name, constraint, contype in renames:
        if contype in KEY_CONSTRAINTS:
            _exec(_key_constraint_sql(table, constraint, contype, tmp))
        else:
            _exec(f"ALTER INDEX {tmp} RENAME TO {name}")
    # Foreign keys the table may have besides the unchecked customer key (none today) come back
    # unvalidated: the new rows were written from the tables they refer to.
    for name, definition in foreign_keys:
        _exec(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition} NOT VALID")
    return rows


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


def tier_case(dimension: Dimension, *, as_of: datetime):
    """The ORM expression of a customer's tier on `dimension`: first matching rule in order, else fallback."""
    tiers = sorted(dimension.tiers.all(), key=lambda t: (t.order, t.id))
    fallback = dimension.fallback_tier_id or (tiers[-1].id if tiers else None)
    whens = []
    for tier in tiers:
        compiled = compile_rule(tier.rule, as_of=as_of, dimension=dimension.slug)
        if not compiled.matches_nobody:
            whens.append(When(compiled.q, then=Value(tier.id)))
    if whens:
        return Case(*whens, default=Value(fallback), output_field=BigIntegerField())
    return Value(fallback, output_field=BigIntegerField())


def assignment_queryset(dimension: Dimension, *, as_of: datetime):
    """Customer ids with their tier on `dimension`: first matching rule in order, else fallback."""
    return Customer.objects.annotate(_tier=tier_case(dimension, as_of=as_of)).values_list("id", "_tier")


def _dimension_levels(dims: list[Dimension], *, as_of: datetime) -> list[list[Dimension]]:
    """Dimensions (in dependency order) grouped so that none refers to the tiers of one in its group.

    A group is assigned in one pass; a dimension whose rules read another's tiers waits for
    the group that writes them.
    """
    levels: list[list[Dimension]] = []
    placed_in: dict[str, int] = {}
    for dim in dims:
        refs: set[str] = set()
        for tier in dim.tiers.all():
            refs |= compile_rule(tier.rule, as_of=as_of, dimension=dim.slug).tier_refs
        level = 1 + max((placed_in[r] for r in refs if r in placed_in), default=-1)
        while len(levels) <= level:
            levels.append([])
        levels[level].append(dim)
        placed_in[dim.slug] = level
    return levels


def _build_overrides(*, as_of: datetime) -> None:
    """seg_overrides: the override in force at as_of per (customer, dimension), the latest one winning."""
    _drop_temp("seg_overrides")
    table = TierOverride._meta.db_table
    if _pg():
        _exec(f"""CREATE TEMP TABLE seg_overrides AS
                  SELECT DISTINCT ON (customer_id, dimension_id) customer_id, dimension_id, tier_id
                    FROM {table}
                   WHERE revoked_at IS NULL AND created_at <= {_param_ts('as_of')} AND expires_at > {_param_ts('as_of')}
                   ORDER BY customer_id, dimension_id, created_at DESC, id DESC""", {"as_of": _ts(as_of)})
        _exec("ANALYZE seg_overrides")
    else:
        _exec(f"""CREATE TEMP TABLE seg_overrides AS
                  SELECT customer_id, dimension_id, tier_id FROM {table} t
                   WHERE revoked_at IS NULL AND created_at <= %(as_of)s AND expires_at > %(as_of)s
                     AND NOT EXISTS (SELECT 1 FROM {table} t2
                                      WHERE t2.customer_id = t.customer_id AND t2.dimension_id = t.dimension_id
                                        AND t2.revoked_at IS NULL AND t2.created_at <= %(as_of)s AND t2.expires_at > %(as_of)s
                                        AND (t2.created_at > t.created_at OR (t2.created_at = t.created_at AND t2.id > t.id)))""",
              {"as_of": _ts(as_of)})
        _exec("CREATE UNIQUE INDEX seg_overrides_key ON seg_overrides (customer_id, dimension_id)")


def _build_diff(dims: list[Dimension], *, as_of: datetime, subset: bool, small: bool = True) -> None:
    """seg_diff: the (customer, dimension) pairs whose tier or pin differs from the membership.

    One scan of customers and features computes every dimension of the group (one CASE
    each), overrides replace the rule's tier, and an anti-join against the memberships
    keeps only what differs: in a steady state a few rows out of millions, so the writes
    that follow are small.
    """
    qs = Customer.objects.annotate(**{f"_t{i}": tier_case(dim, as_of=as_of) for i, dim in enumerate(dims)})
    qs = qs.values_list("id", *(f"_t{i}" for i in range(len(dims))))
    if subset:
        qs = qs.filter(id__in=RawSQL("SELECT customer_id FROM seg_affected", []))
    sql, params = qs.query.sql_with_params()
    params = list(params)
    _drop_temp("seg_diff", "seg_tiers")
    if _pg() and not (subset and small):
        # All customers: customers, their features and their memberships (read through the
        # unique (customer, dimension) index and pivoted by a sorted aggregate) are all in
        # customer order, so they meet by merging instead of hashing a million rows each:
        # about 4.7 s -> 2.6 s at 1M customers. The pivot of the memberships (four rows per
        # customer) runs in parallel workers, whose one row per customer the leader merges in
        # order; at the default cost of passing a row between processes the planner keeps it
        # in one process: 2.4 s -> 1.6 s.
        full = {"enable_hashagg": "off", "enable_hashjoin": "off", "parallel_tuple_cost": "0.01"}
        with plan_settings(**({} if subset else full)):
            _exec(f"CREATE TEMP TABLE seg_diff AS {_diff_sql_wide(dims, sql)}", params)
        return
    if _pg():
        # A few customers: unpivot them and look each (customer, dimension) up in the
        # memberships' unique index.
        values = ", ".join(f"({int(dim.id)}, q._t{i})" for i, dim in enumerate(dims))
        _exec(f"""CREATE TEMP TABLE seg_diff AS
                  SELECT a.customer_id, a.dimension_id, a.tier_id, a.overridden, m.tier_id AS old_tier_id
                    FROM (SELECT q.id AS customer_id, v.dimension_id, COALESCE(o.tier_id, CAST(v.tier_id AS bigint)) AS tier_id,
                                 (o.tier_id IS NOT NULL) AS overridden
                            FROM ({sql}) q CROSS JOIN LATERAL (VALUES {values}) v(dimension_id, tier_id)
                            LEFT JOIN seg_overrides o ON o.customer_id = q.id AND o.dimension_id = v.dimension_id) a
                    LEFT JOIN {MEMBERSHIP_TABLE} m ON m.customer_id = a.customer_id AND m.dimension_id = a.dimension_id
                   WHERE a.tier_id IS NOT NULL
                     AND (m.id IS NULL OR m.tier_id <> a.tier_id OR m.overridden <> a.overridden)""", params)
        return
    # SQLite: materialize the wide row once, then one SELECT per dimension (no LATERAL).
    cols = ", ".join(f"q._t{i} AS _t{i}" for i in range(len(dims)))
    _exec(f"CREATE TEMP TABLE seg_tiers AS SELECT q.id AS customer_id, {cols} FROM ({sql}) q", params)
    assigned = " UNION ALL ".join(f"SELECT customer_id, {int(dim.id)} AS dimension_id, _t{i} AS tier_id FROM seg_tiers"
                                  for i, dim in enumerate(dims))
    _exec(f"""CREATE TEMP TABLE seg_diff AS
              SELECT a.customer_id, a.dimension_id, a.tier_id, a.overridden, m.tier_id AS old_tier_id
                FROM (SELECT r.customer_id, r.dimension_id, COALESCE(o.tier_id, r.tier_id) AS tier_id,
                             CASE WHEN o.tier_id IS NULL THEN 0 ELSE 1 END AS overridden
                        FROM ({assigned}) r
                        LEFT JOIN seg_overrides o ON o.customer_id = r.customer_id AND o.dimension_id = r.dimension_id) a
                LEFT JOIN {MEMBERSHIP_TABLE} m ON m.customer_id = a.customer_id AND m.dimension_id = a.dimension_id
               WHERE a.tier_id IS NOT NULL
                 AND (m.id IS NULL OR m.tier_id <> a.tier_id OR m.overridden <> a.overridden)""")
    _drop_temp("seg_tiers")


def _diff_sql_wide(dims: list[Dimension], tiers_sql: str) -> str:
    """PostgreSQL: the diff compared one row per customer, unpivoted only where it differs.

    The customer's new tiers (one column per dimension) meet the current memberships and
    overrides pivoted to one row per customer as well, so a million customers are compared
    in one pass of a million rows; only the few that differ become (customer, dimension)
    rows. (Unpivoting first would push four million rows through the join.)
    """
    ids = [int(d.id) for d in dims]
    # One aggregate per dimension: the tier id, negated when the membership is pinned (ids are
    # positive), so the pivot carries two facts in one value.
    pivot_m = ", ".join(f"MAX(CASE WHEN overridden THEN -tier_id ELSE tier_id END) FILTER (WHERE dimension_id = {d}) AS m{i}"
                        for i, d in enumerate(ids))
    pivot_o = ", ".join(f"MAX(tier_id) FILTER (WHERE dimension_id = {d}) AS o{i}" for i, d in enumerate(ids))
    cols = ", ".join(f"CAST(COALESCE(o.o{i}, q._t{i}) AS bigint) AS a{i}, (o.o{i} IS NOT NULL) AS ov{i}, m.m{i}"
                     for i in range(len(ids)))
    differs = " OR ".join(
        f"m.m{i} IS DISTINCT FROM CASE WHEN o.o{i} IS NOT NULL THEN -o.o{i} ELSE q._t{i} END" for i in range(len(ids)))
    values = ", ".join(f"({d}, x.a{i}, x.ov{i}, ABS(x.m{i}), x.m{i} < 0)" for i, d in enumerate(ids))
    dim_list = ", ".join(map(str, ids))
    return f"""
        SELECT x.customer_id, v.dimension_id, v.tier_id, v.overridden, v.old_tier_id
          FROM (SELECT q.id AS customer_id, {cols}
                  FROM ({tiers_sql}) q
                  LEFT JOIN (SELECT customer_id, {pivot_o} FROM seg_overrides GROUP BY customer_id) o
                         ON o.customer_id = q.id
                  LEFT JOIN (SELECT customer_id, {pivot_m} FROM {MEMBERSHIP_TABLE}
                              WHERE dimension_id IN ({dim_list}) GROUP BY customer_id) m
                         ON m.customer_id = q.id
                 WHERE {differs}
                OFFSET 0) x
         CROSS JOIN LATERAL (VALUES {values}) v(dimension_id, tier_id, overridden, old_tier_id, old_overridden)
         WHERE v.tier_id IS NOT NULL
           AND (v.old_tier_id IS NULL OR v.old_tier_id <> v.tier_id OR v.old_overridden <> v.overridden)"""


# Up to this many changed (customer, dimension) pairs, a run writes them by key lookups.
FEW_CHANGES = 200_000


def assign_dimensions(dims: list[Dimension], *, as_of: datetime, run_id: int | None, subset: bool,
                      small: bool = True) -> dict[str, int]:
    """Tiers of a group of independent dimensions in one pass; writes only what changed.

    Returns the number of tier changes per dimension slug. Needs seg_overrides (and
    seg_affected when `subset`).
    """
    out = {dim.slug: 0 for dim in dims}
    dims = [dim for dim in dims if dim.tiers.all()]
    if not dims:
        return out
    _build_diff(dims, as_of=as_of, subset=subset, small=small)
    # One pass over the diff, per dimension: its rows, the tier changes among them (the history's
    # rows, and the answer) and the memberships that are new.
    with connection.cursor() as cur:
        cur.execute("""SELECT dimension_id, COUNT(*),
                              SUM(CASE WHEN old_tier_id IS NULL OR old_tier_id <> tier_id THEN 1 ELSE 0 END),
                              SUM(CASE WHEN old_tier_id IS NULL THEN 1 ELSE 0 END)
                         FROM seg_diff GROUP BY dimension_id""")
        per_dimension = cur.fetchall()
    slug = {int(d.id): d.slug for d in dims}
    for dim_id, _rows, changed, _new in per_dimension:
        out[slug[int(dim_id)]] = int(changed)
    few = sum(rows for _dim, rows, _changed, _new in per_dimension) <= FEW_CHANGES
    key_lookups: dict[str, str] = {}  # a small incremental run has them for its whole transaction
    if _pg():
        _exec("ANALYZE seg_diff")
        if few and not (subset and small):
            # A few rows out of millions: update the memberships through their (customer,
            # dimension) key rather than scanning all of them (the planner prefers the scan
            # from about 1%).
            key_lookups = {"enable_hashjoin": "off", "enable_mergejoin": "off"}
    model_dims = [int(d.id) for d in dims if d.kind == DimensionKind.CLUSTER] or [0]
    p = {"as_of": _ts(as_of), "run": run_id, "rule": str(ChangeCause.RULE), "model": str(ChangeCause.MODEL),
         "override": str(ChangeCause.OVERRIDE)}
    with plan_settings(**key_lookups):
        if few:
            _write_diff(model_dims, p)
        else:
            _write_diff(model_dims, p, changes=sum(int(c) for _d, _r, c, _n in per_dimension),
                        new_memberships=sum(int(n) for _d, _r, _c, n in per_dimension))
    if _pg() and not few:
        _exec(f"ANALYZE {MEMBERSHIP_TABLE}")  # many rows changed: keep the next plans right
    _drop_temp("seg_diff")
    return out


def _write_diff(model_dims: list[int], p: dict, *, changes: int = 0, new_memberships: int = 0) -> None:
    """seg_diff into the tier history (changes of tier only) and the memberships. `changes` and
    `new_memberships`, when counted (many rows), let a table that holds fewer rows than are
    coming be loaded in bulk (_bulk_load)."""
    with _bulk_load(CHANGE_TABLE, changes):
        _exec(f"""
            INSERT INTO {CHANGE_TABLE} (customer_id, dimension_id, from_tier_id, to_tier_id, at, cause, run_id)
            SELECT customer_id, dimension_id, old_tier_id, tier_id, {_param_ts('as_of')},
                   CASE WHEN overridden THEN %(override)s
                        WHEN dimension_id IN ({', '.join(map(str, model_dims))}) THEN %(model)s ELSE %(rule)s END, %(run)s
              FROM seg_diff
             WHERE old_tier_id IS NULL OR old_tier_id <> tier_id""", p)
    _exec(f"""
        UPDATE {MEMBERSHIP_TABLE} SET tier_id = d.tier_id, overridden = d.overridden,
               since = CASE WHEN {MEMBERSHIP_TABLE}.tier_id <> d.tier_id THEN {_param_ts('as_of')} ELSE {MEMBERSHIP_TABLE}.since END
          FROM seg_diff d
         WHERE {MEMBERSHIP_TABLE}.customer_id = d.customer_id AND {MEMBERSHIP_TABLE}.dimension_id = d.dimension_id
           AND d.old_tier_id IS NOT NULL""", p)
    with _bulk_load(MEMBERSHIP_TABLE, new_memberships):
        _exec(f"""
            INSERT INTO {MEMBERSHIP_TABLE} (customer_id, dimension_id, tier_id, since, overridden)
            SELECT customer_id, dimension_id, tier_id, {_param_ts('as_of')}, overridden
              FROM seg_diff WHERE old_tier_id IS NULL""", p)


def assign_dimension(dimension: Dimension, *, as_of: datetime, run_id: int | None, subset: bool) -> int:
    """Write tier changes and memberships of one dimension; returns the number of changes."""
    _build_overrides(as_of=as_of)
    try:
        return assign_dimensions([dimension], as_of=as_of, run_id=run_id, subset=subset)[dimension.slug]
    finally:
        _drop_temp("seg_overrides")


# ---------------------------------------------------------------------------------------
# 5. Snapshot
# ---------------------------------------------------------------------------------------
def write_snapshot(*, as_of: datetime, run_id: int | None = None) -> int:
    """Tier sizes for as_of's day: counted from the memberships, or moved by this run's changes.

    With `run_id` and the day's snapshot already written, the sizes are moved by this run's
    tier changes (an incremental run touches few customers; counting millions of
    memberships every 15 minutes would cost more than the run). The next full run
    counts again, which also takes in memberships changed outside runs (overrides).
    """
    day = as_of.date()
    table = TierSnapshot._meta.db_table
    if run_id is not None:
        with connection.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM {table} WHERE date = %s", [day])
            have = cur.fetchone()[0]
            cur.execute(f"SELECT COUNT(*) FROM {Tier._meta.db_table}")
            if have and have == cur.fetchone()[0]:
                return _exec(f"""
                    UPDATE {table} SET customers = CASE WHEN {table}.customers + d.delta > 0
                                                        THEN {table}.customers + d.delta ELSE 0 END
                      FROM (SELECT tier_id, SUM(n) AS delta
                              FROM (SELECT to_tier_id AS tier_id, 1 AS n FROM {CHANGE_TABLE} WHERE run_id = %(run)s
                                    UNION ALL
                                    SELECT from_tier_id, -1 FROM {CHANGE_TABLE}
                                     WHERE run_id = %(run)s AND from_tier_id IS NOT NULL) x
                             GROUP BY tier_id) d
                     WHERE {table}.date = %(day)s AND {table}.tier_id = d.tier_id""", {"day": day, "run": run_id})
    # Counted by a SELECT of its own, which PostgreSQL runs in parallel (an INSERT ... SELECT
    # never is), then written: a few dozen rows.
    with connection.cursor() as cur:
        cur.execute(f"SELECT tier_id, COUNT(*) FROM {MEMBERSHIP_TABLE} GROUP BY tier_id")
        counts = dict(cur.fetchall())
        cur.execute(f"SELECT id, dimension_id FROM {Tier._meta.db_table} ORDER BY id")
        rows = [(day, dimension_id, tier_id, counts.get(tier_id, 0)) for tier_id, dimension_id in cur.fetchall()]
    if not rows:
        return 0
    values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
    return _exec(f"""
        INSERT INTO {table} (date, dimension_id, tier_id, customers) VALUES {values}
        ON CONFLICT (date, tier_id) DO UPDATE SET customers = excluded.customers""",
                 [x for row in rows for x in row])


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
        small = True
        if subset:
            thresholds: dict[str, set[int]] = {}
            from .rules import time_thresholds_by_column

            for dim in dims:
                for tier in dim.tiers.all():
                    for column, days in time_thresholds_by_column(tier.rule).items():
                        thresholds.setdefault(column, set()).update(days)
            affected = stage.run("affected", 2, lambda: build_affected(
                as_of=as_of, since_as_of=incremental_from["as_of"],
                event_high_water=incremental_from["event_high_water"], thresholds=thresholds,
                since_started_at=incremental_from.get("started_at")))
            small = affected <= SMALL_SUBSET
            if small:
                _subset_tuning()
        customers = stage.run("aggregate", 5, lambda: build_base(as_of=as_of, subset=subset, per_customer=small))
        if subset:
            bounds = incremental_from["score_bounds"]
        else:
            bounds = stage.run("scores", 40, lambda: build_scores_full(as_of=as_of))
        stage.run("features", 50, lambda: write_features(as_of=as_of, computed_at=computed_at, subset=subset,
                                                         bounds=bounds))
        if isinstance(bounds, ScoreBounds):
            bounds = bounds.stored
        _drop_temp("seg_base")

    changes_by_dim: dict[str, int] = {dim.slug: 0 for dim in dims}
    levels = _dimension_levels(dims, as_of=as_of)
    for i, level in enumerate(levels):
        def one(level=level):
            with transaction.atomic():
                _session_tuning()
                if subset and small:
                    _subset_tuning()
                _build_overrides(as_of=as_of)
                out = assign_dimensions(level, as_of=as_of, run_id=run_id, subset=subset, small=small)
                _drop_temp("seg_overrides")
                return out

        name = "tiers" if len(levels) == 1 else f"tiers:{'+'.join(d.slug for d in level)}"
        changes_by_dim.update(stage.run(name, 60 + int(30 * i / max(1, len(levels))), one))
    with transaction.atomic():
        stage.run("snapshot", 95, lambda: write_snapshot(as_of=as_of, run_id=run_id if subset else None))
        if subset:
            _drop_temp("seg_affected")
    return PassResult(customers=customers, changes=sum(changes_by_dim.values()), timings=stage.timings,
                      score_bounds=bounds, event_high_water=high_water, changes_by_dimension=changes_by_dim)
