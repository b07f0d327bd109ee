"""Hybrid: a weighted blend of several recommenders' per-user normalised scores, with
cold-start fallbacks.

- A user with no history gets the popular items of their group (tier), then the global
  popular items (Popularity fitted with `user_groups`).
- An item nobody has interacted with yet gets its content-similarity score (ContentBased
  on item tokens), scaled by `cold_item_weight`, when item features are given.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import NotSupported, Recommender, as_csr, top_k
from .content import ContentBased
from .popularity import Popularity


def normalise_rows(S: np.ndarray, how: str = "zscore") -> np.ndarray:
    """Make one model's scores comparable with another's, per user (row)."""
    S = np.asarray(S, dtype=np.float64)
    if how == "zscore":
        mu = S.mean(axis=1, keepdims=True)
        sd = S.std(axis=1, keepdims=True)
        sd[sd == 0] = 1.0
        return (S - mu) / sd
    if how == "minmax":
        lo = S.min(axis=1, keepdims=True)
        span = S.max(axis=1, keepdims=True) - lo
        span[span == 0] = 1.0
        return (S - lo) / span
    if how == "max":
        top = np.abs(S).max(axis=1, keepdims=True)
        top[top == 0] = 1.0
        return S / top
    raise ValueError(f"unknown normalisation {how!r}: zscore, minmax or max")


class Hybrid(Recommender):
    """Hybrid([(EASE(), 0.7), (ALS(), 0.3)], normalise="zscore").

    The blend is the weighted mean of the components' per-user normalised scores; an item
    without interactions instead gets `cold_item_weight` x its normalised content score, on
    the same scale (1.0: a content match counts like an equally strong CF signal).

    fit(X, item_features=..., user_groups=..., timestamps=...) fits every component with the
    side information it uses, plus the popularity fallback and (with item features) the
    content model for cold items.
    """

    name = "hybrid"
    params = ("weights", "normalise", "cold_item_weight")

    def __init__(
        self,
        components: Sequence[tuple[Recommender, float]],
        normalise: str = "zscore",
        cold_item_weight: float = 1.0,
        fallback: Popularity | None = None,
    ):
        super().__init__()
        if not components:
            raise ValueError("a hybrid needs at least one component")
        self.components = [(m, float(w)) for m, w in components]
        self.normalise = normalise
        self.cold_item_weight = cold_item_weight
        self.fallback = fallback or Popularity(by_group=True)
        self.content_: ContentBased | None = None
        self.cold_items_: np.ndarray | None = None

    @property
    def weights(self) -> dict:
        return {m.name: w for m, w in self.components}

    def get_params(self) -> dict:
        params = {"weights": self.weights, "normalise": self.normalise, "cold_item_weight": self.cold_item_weight}
        params["components"] = {m.name: m.get_params() for m, _ in self.components}
        return params

    def fit(self, X, item_features=None, user_groups=None, **side):
        X = as_csr(X)
        self.X_ = X
        for model, _ in self.components:
            model.fit(X, item_features=item_features, user_groups=user_groups, **side)
        self.fallback.fit(X, user_groups=user_groups)
        self.content_ = None
        if item_features is not None:
            found = [m for m, _ in self.components if isinstance(m, ContentBased)]
            self.content_ = found[0] if found else ContentBased().fit(X, item_features=item_features)
        self.cold_items_ = np.asarray(X.getnnz(axis=0) == 0)
        return self

    def _score_rows(self, X_rows, users):
        n = X_rows.shape[0]
        out = np.zeros((n, self.n_items))
        total = sum(abs(w) for _, w in self.components) or 1.0
        for model, w in self.components:
            if w:
                s = model._score_rows(X_rows, users)
                out += (w / total) * normalise_rows(s, self.normalise)
        if self.content_ is not None and self.cold_items_.any():
            c = normalise_rows(self.content_._score_rows(X_rows, users), self.normalise)
            out[:, self.cold_items_] = self.cold_item_weight * c[:, self.cold_items_]
        empty = X_rows.getnnz(axis=1) == 0
        if empty.any():  # cold user: popular in their group, then globally
            fb = self.fallback._score_rows(X_rows[empty], None if users is None else users[empty])
            out[empty] = fb
        return out

    def cold_start(self, k: int = 10, group=None, exclude=()):
        """Recommendations for a customer with no history: popular in `group`, then global."""
        s = self.fallback.group_scores(group).astype(np.float64).copy()
        s[list(exclude)] = -np.inf
        idx, vals = top_k(s[None, :], k)
        return idx[0], vals[0]

    def similar_items(self, items, k: int = 10):
        items = np.atleast_1d(np.asarray(items, dtype=np.int64))
        cold = self.cold_items_[items]
        if cold.all() and self.content_ is not None:
            return self.content_.similar_items(items, k)
        for model, _ in self.components:
            try:
                idx, vals = model.similar_items(items, k)
            except NotSupported:
                continue
            if cold.any() and self.content_ is not None:
                ci, cv = self.content_.similar_items(items[cold], k)
                idx[cold], vals[cold] = ci, cv
            return idx, vals
        if self.content_ is not None:
            return self.content_.similar_items(items, k)
        raise NotSupported("no component of this hybrid has item-item similarity")

    def get_state(self) -> dict:
        state = {f"fallback.{k}": v for k, v in self.fallback.get_state().items()}
        for pos, (model, _) in enumerate(self.components):
            state.update({f"{pos}.{model.name}.{k}": v for k, v in model.get_state().items()})
        return state
