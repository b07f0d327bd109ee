"""From an interaction log (arrays) to the weighted users x items matrix the models learn from.

Each interaction weighs `event_weights[type]` (a rating: its value times the weight of its
type), times a time decay 0.5 ** (age / half-life) when a half-life is given; repeated
interactions of a user with an item add up.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import scipy.sparse as sp

SECONDS_PER_DAY = 86400.0

#: Default event weights: view < click < add_to_cart < purchase. A rating multiplies its value
#: by the weight of its type ("rate"). Types not in the dict (login, search ...) are ignored.
DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 2.0,
    "rec_click": 2.0,
    "add_to_cart": 4.0,
    "purchase": 8.0,
    "rate": 1.0,
    "review": 2.0,
}
RATING_EVENTS = frozenset({"rate"})


class IdIndex:
    """External ids <-> contiguous indices, in first-seen order."""

    def __init__(self, ids: Iterable = ()):
        self.ids: list = list(dict.fromkeys(ids))
        self.index: dict = {v: i for i, v in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, value) -> bool:
        return value in self.index

    def add(self, value) -> int:
        if value not in self.index:
            self.index[value] = len(self.ids)
            self.ids.append(value)
        return self.index[value]

    def encode(self, values) -> np.ndarray:
        """Indices of known values (KeyError for an unknown one)."""
        values = list(values)
        return np.fromiter((self.index[v] for v in values), dtype=np.int64, count=len(values))

    def decode(self, indices) -> list:
        return [self.ids[i] for i in indices]


def interaction_weights(
    event_types=None,
    values=None,
    timestamps=None,
    event_weights: Mapping[str, float] | None = None,
    half_life_days: float | None = None,
    as_of: float | None = None,
    rating_events: Iterable[str] = RATING_EVENTS,
    n: int | None = None,
) -> np.ndarray:
    """One weight per interaction (0 for ignored types)."""
    weights = DEFAULT_EVENT_WEIGHTS if event_weights is None else event_weights
    rating_events = frozenset(rating_events)
    if event_types is not None:
        types = list(event_types)
        n = len(types)
        w = np.array([float(weights.get(t, 0.0)) for t in types])
        if values is not None:
            vals = np.asarray(values, dtype=np.float64)
            is_rating = np.array([t in rating_events for t in types])
            w = np.where(is_rating, w * vals, w)
    elif values is not None:  # a plain ratings log: each rating counts its value
        w = np.asarray(values, dtype=np.float64).copy()
        n = len(w)
    else:
        if n is None:
            raise ValueError("give event_types, values or n")
        w = np.ones(n)
    if half_life_days is not None:
        if timestamps is None:
            raise ValueError("time decay (half_life_days) needs timestamps")
        if half_life_days <= 0:
            raise ValueError("half_life_days must be positive")
        ts = np.asarray(timestamps, dtype=np.float64)
        ref = ts.max() if as_of is None else float(as_of)
        age_days = np.maximum(ref - ts, 0.0) / SECONDS_PER_DAY
        w = w * np.power(0.5, age_days / float(half_life_days))
    return w


def interaction_matrix(
    user_idx,
    item_idx,
    shape: tuple[int, int],
    event_types=None,
    values=None,
    timestamps=None,
    event_weights: Mapping[str, float] | None = None,
    half_life_days: float | None = None,
    as_of: float | None = None,
    rating_events: Iterable[str] = RATING_EVENTS,
) -> sp.csr_matrix:
    """The weighted users x items csr matrix (float32) of an interaction log.

    user_idx / item_idx: row and column indices (see IdIndex). as_of: Unix seconds the ages
    are measured from (default: the latest timestamp). Entries weighing 0 are dropped.
    """
    u = np.asarray(user_idx, dtype=np.int64)
    i = np.asarray(item_idx, dtype=np.int64)
    if len(u) != len(i):
        raise ValueError("user_idx and item_idx differ in length")
    w = interaction_weights(
        event_types, values, timestamps, event_weights, half_life_days, as_of, rating_events, n=len(u)
    )
    if len(w) != len(u):
        raise ValueError("event_types/values/timestamps must have one entry per interaction")
    if np.any(w < 0):
        raise ValueError("interaction weights must not be negative")
    X = sp.csr_matrix((w.astype(np.float32), (u, i)), shape=shape, dtype=np.float32)
    X.sum_duplicates()
    X.eliminate_zeros()
    X.sort_indices()
    return X
