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

The stages live in sql.py (windows, table names, portable SQL, session tuning, bulk loads),
features.py (1-3), tiers.py (4-5) and incremental.py (who an incremental pass covers); this
module runs them in order and names what the rest of the project uses.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from ..models import Dimension
from .features import (
    ScoreBounds, build_base, build_scores_full, model_input_sql, model_output_sql, scored_base_sql, scores_sql,
    write_features,
)
from .incremental import HIGH_WATER_MARGIN, SMALL_SUBSET, build_affected, max_event_id
from .sql import EVENT_TABLE, Stage, _drop_temp, _session_tuning, _subset_tuning, plan_settings
from .tiers import (
    _build_overrides, _dimension_levels, assign_dimension, assign_dimensions, assignment_queryset, dimensions_in_order,
    tier_case, write_snapshot,
)

# What the rest of the project uses (services, selectors, segmentation.ml, tests).
__all__ = [
    "EVENT_TABLE", "HIGH_WATER_MARGIN", "SMALL_SUBSET", "PassResult", "ScoreBounds", "assign_dimension",
    "assignment_queryset", "build_base", "build_scores_full", "dimensions_in_order", "model_input_sql",
    "model_output_sql", "plan_settings", "recompute_pass", "scored_base_sql", "scores_sql", "tier_case",
    "write_snapshot",
]


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
            from ..rules import time_thresholds_by_column

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
