"""Stages 4-5 of a pass: every dimension's tiers as one CASE expression per dimension,
overrides, the diff against the memberships (changes appended, memberships written), and the
day's snapshot of tier sizes."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import connection
from django.db.models import BigIntegerField, Case, Value, When
from django.db.models.expressions import RawSQL

from accounts.models import Customer

from ..choices import ChangeCause, DimensionKind
from ..models import Dimension, Tier, TierOverride, TierSnapshot
from ..rules import compile_rule
from .sql import CHANGE_TABLE, MEMBERSHIP_TABLE, _bulk_load, _drop_temp, _exec, _param_ts, _pg, _ts, plan_settings

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
