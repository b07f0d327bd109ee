"""Training data from the database: features as of a cutoff and outcomes in a window after it.

Features come from the recompute engine's own temp table and scores (engine.build_base,
engine.build_scores_full and engine.scored_base_sql as of the cutoff) and are selected with
engine.model_input_sql, so a model sees in training exactly the numbers the compiled SQL will
see when it scores. All of it is a few set-based statements; the rows then become numpy arrays.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from django.db import connection, transaction
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_naive, make_aware

from .. import engine
from ..engine import sql as engine_sql


@dataclass
class FeatureFrame:
    """Raw model inputs (NaN for NULL) per customer as of `as_of`, sorted by customer id."""

    as_of: datetime
    ids: np.ndarray
    fields: list[str]
    raw: np.ndarray

    def column(self, name: str) -> np.ndarray:
        return self.raw[:, self.fields.index(name)]

    def __len__(self) -> int:
        return len(self.ids)


def _floats(rows: list[tuple], width: int) -> np.ndarray:
    if not rows:
        return np.zeros((0, width))
    arr = np.array(rows, dtype=object)
    arr[arr == None] = np.nan  # noqa: E711 - elementwise comparison with None
    return arr.astype(float)


def feature_frame(*, as_of: datetime, fields: list[str], sample_every: int = 1) -> FeatureFrame:
    """Model inputs for every customer who existed at `as_of` (joined by then, or had an event).

    `sample_every` > 1 keeps only customers whose id is a multiple of it (a cheap, stable sample
    for very large bases).
    """
    inputs = ", ".join(f"{engine.model_input_sql(f)} AS f{i}" for i, f in enumerate(fields))
    sample = f"AND b.customer_id % {int(sample_every)} = 0" if sample_every > 1 else ""
    sql = f"""SELECT b.customer_id, {inputs}
                FROM {{scored}} b
               WHERE (b.last_activity_at IS NOT NULL OR b.joined_at <= {engine_sql._param_ts('as_of')}) {sample}
               ORDER BY b.customer_id"""
    with transaction.atomic():
        engine_sql._session_tuning()
        engine.build_base(as_of=as_of, subset=False)
        scored, params = engine.scored_base_sql(engine.build_scores_full(as_of=as_of))
        with connection.cursor() as cur:
            cur.execute(sql.replace("{scored}", scored), {"as_of": engine_sql._ts(as_of), **params})
            rows = cur.fetchall()
        engine_sql._drop_temp("seg_base")
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    raw = _floats([r[1:] for r in rows], len(fields))
    return FeatureFrame(as_of=as_of, ids=ids, fields=list(fields), raw=raw)


def _align(ids: np.ndarray, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """values (indexed by keys) placed at the positions of `ids`; 0 where a key is missing."""
    out = np.zeros(len(ids), dtype=float)
    if len(keys) == 0 or len(ids) == 0:
        return out
    order = np.argsort(keys)
    keys, values = keys[order], values[order]
    pos = np.searchsorted(keys, ids)
    pos_ok = np.clip(pos, 0, len(keys) - 1)
    hit = keys[pos_ok] == ids
    out[hit] = values[pos_ok[hit]]
    return out


def window_outcomes(*, ids: np.ndarray, start: datetime, end: datetime) -> tuple[np.ndarray, np.ndarray]:
    """Orders and revenue (purchases minus refunds) per customer in (start, end], aligned to ids."""
    sql = f"""SELECT customer_id, COUNT(*) FILTER (WHERE type = 'purchase'),
                     COALESCE(SUM(amount) FILTER (WHERE type IN ('purchase', 'refund')), 0)
                FROM {engine_sql.EVENT_TABLE}
               WHERE occurred_at > {engine_sql._param_ts('start')} AND occurred_at <= {engine_sql._param_ts('end')}
                 AND type IN ('purchase', 'refund')
               GROUP BY customer_id"""
    with connection.cursor() as cur:
        cur.execute(sql, {"start": engine_sql._ts(start), "end": engine_sql._ts(end)})
        rows = cur.fetchall()
    keys = np.array([r[0] for r in rows], dtype=np.int64)
    orders = _align(ids, keys, np.array([float(r[1]) for r in rows]))
    revenue = _align(ids, keys, np.array([float(r[2]) for r in rows]))
    return orders, revenue


@dataclass
class RepeatSummary:
    """Per-customer purchase-day summary for BG/NBD and Gamma-Gamma, in days as of `end`.

    x: repeat purchase days (distinct purchase days after the first), t_x: days from the first
    to the last purchase day, T: days from the first purchase day to `end`, m: mean revenue of
    the repeat purchase days (0 when x = 0), first_value: revenue of the first purchase day.
    """

    ids: np.ndarray
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    m: np.ndarray
    first_value: np.ndarray


def repeat_summary(*, end: datetime) -> RepeatSummary:
    """One statement groups purchases by customer and day; the rest is numpy."""
    day = engine_sql._day("occurred_at")
    sql = f"""SELECT customer_id, {day} AS d, SUM(amount) FROM {engine_sql.EVENT_TABLE}
               WHERE type = 'purchase' AND occurred_at <= {engine_sql._param_ts('end')}
               GROUP BY customer_id, {day} ORDER BY customer_id, d"""
    with connection.cursor() as cur:
        cur.execute(sql, {"end": engine_sql._ts(end)})
        rows = cur.fetchall()
    if not rows:
        empty = np.zeros(0)
        return RepeatSummary(np.zeros(0, dtype=np.int64), empty, empty, empty, empty, empty)
    cust = np.array([r[0] for r in rows], dtype=np.int64)
    days = np.array([str(r[1])[:10] for r in rows], dtype="datetime64[D]").astype(np.int64)
    value = np.array([float(r[2] or 0) for r in rows])
    end_day = np.datetime64(end.date(), "D").astype(np.int64)
    starts = np.flatnonzero(np.r_[True, cust[1:] != cust[:-1]])
    counts = np.diff(np.r_[starts, len(cust)])
    first_day = days[starts]
    last_day = days[starts + counts - 1]
    totals = np.add.reduceat(value, starts)
    first_value = value[starts]
    x = (counts - 1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.where(x > 0, (totals - first_value) / np.maximum(x, 1), 0.0)
    return RepeatSummary(ids=cust[starts], x=x, t_x=(last_day - first_day).astype(float),
                         T=(end_day - first_day).astype(float), m=m, first_value=first_value)


def event_span() -> tuple[datetime | None, datetime | None]:
    """First and last event time in the database."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT MIN(occurred_at), MAX(occurred_at) FROM {engine_sql.EVENT_TABLE}")
        lo, hi = cur.fetchone()
    if isinstance(lo, str):  # SQLite returns text for aggregates
        lo, hi = (parse_datetime(v) if v else None for v in (lo, hi))
        lo, hi = ((make_aware(v, UTC) if v is not None and is_naive(v) else v) for v in (lo, hi))
    return lo, hi
