"""Stages 1-3 of a pass: the per-customer aggregation of the events (seg_base), the R/F/M
score bounds, and the features table written with the predictive models compiled to SQL."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import connection

from crm.core.money import MONEY_PLACES

from .sql import (
    CUSTOMER_TABLE, DAY, EVENT_TABLE, FEATURE_TABLE, FEEDBACK_TABLE, KEY_CONSTRAINTS, TREND_WINDOW, WINDOWS,
    _count, _day, _drop_temp, _exec, _greatest, _indexes_of, _key_constraint_sql, _least, _param_ts, _pg, _ts,
    days_between, plan_settings,
)

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
    from ..models import PredictiveModel

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
