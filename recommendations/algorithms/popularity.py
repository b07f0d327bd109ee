"""Popularity: global, per group (tier), and trending (time-decayed)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .base import Recommender, as_csr, binarize

SECONDS_PER_DAY = 86400.0


class Popularity(Recommender):
    """Items ranked by how many users interacted with them.

    - `weighted=True` sums interaction weights instead of counting users.
    - `half_life_days`: trending. Each interaction counts exp(-ln2 * age / half-life), its age
      taken from `fit(..., timestamps=T)` (a sparse matrix with X's pattern holding each
      interaction's Unix time) relative to `as_of` (default: the latest timestamp).
    - `by_group=True` and `fit(..., user_groups=g)`: g[u] is user u's group (tier) label (-1 or
      None: none). Users of a group get the group's most popular items first, then the global
      order fills up (ties and items the group never touched).
    """

    name = "popularity"
    params = ("weighted", "half_life_days", "by_group")

    def __init__(self, weighted: bool = False, half_life_days: float | None = None, by_group: bool = False):
        super().__init__()
        self.weighted = weighted
        self.half_life_days = half_life_days
        self.by_group = by_group
        self.item_scores_: np.ndarray | None = None
        self.group_labels_: np.ndarray | None = None
        self.group_scores_: np.ndarray | None = None
        self.user_group_: np.ndarray | None = None

    def _item_weights(self, X: sp.csr_matrix, timestamps, as_of) -> sp.csr_matrix:
        W = X.copy() if self.weighted else binarize(X)
        if self.half_life_days is not None:
            if timestamps is None:
                raise ValueError("trending popularity (half_life_days) needs fit(..., timestamps=T)")
            T = sp.csr_matrix(timestamps, dtype=np.float64)
            T.sort_indices()
            if T.shape != X.shape or T.nnz != X.nnz or not np.array_equal(T.indices, X.indices):
                raise ValueError("timestamps must have the same sparsity pattern as X")
            ref = float(T.data.max()) if as_of is None else float(as_of)
            age_days = np.maximum(ref - T.data, 0.0) / SECONDS_PER_DAY
            W.data = W.data * np.exp(-np.log(2.0) * age_days / float(self.half_life_days)).astype(np.float32)
        return W

    def fit(self, X, timestamps=None, as_of=None, user_groups=None, **side):
        X = as_csr(X)
        self.X_ = X
        W = self._item_weights(X, timestamps, as_of)
        self.item_scores_ = np.asarray(W.sum(axis=0)).ravel().astype(np.float64)
        self.group_labels_ = None
        self.user_group_ = None
        if self.by_group and user_groups is not None:
            groups = np.asarray(user_groups, dtype=object)
            if len(groups) != X.shape[0]:
                raise ValueError("user_groups needs one label per user (row of X)")
            valid = np.array([g is not None and g != -1 for g in groups])
            labels = sorted({g for g, ok in zip(groups, valid) if ok}, key=str)
            index = {g: i for i, g in enumerate(labels)}
            self.user_group_ = np.array([index[g] if ok else -1 for g, ok in zip(groups, valid)], dtype=np.int64)
            self.group_labels_ = np.array(labels, dtype=object)
            self.group_scores_ = np.zeros((len(labels), X.shape[1]))
            for gi in range(len(labels)):
                rows = np.flatnonzero(self.user_group_ == gi)
                self.group_scores_[gi] = np.asarray(W[rows].sum(axis=0)).ravel()
        return self

    def _global_rank_scores(self) -> np.ndarray:
        """Global popularity squeezed into [0, 1): a tie-breaker under any group's scores."""
        s = self.item_scores_
        top = s.max() if s.size and s.max() > 0 else 1.0
        return s / (top * 1.000001)

    def group_scores(self, group) -> np.ndarray:
        """Scores for a member of `group` (a label as given to fit); unknown group: global."""
        base = self._global_rank_scores()
        if self.group_labels_ is None:
            return base
        hits = np.flatnonzero(self.group_labels_ == group)
        if not hits.size:
            return base
        return self.group_scores_[hits[0]] + base

    def _score_rows(self, X_rows, users):
        n = X_rows.shape[0]
        if self.user_group_ is None or users is None:
            return np.tile(self.item_scores_, (n, 1))
        base = self._global_rank_scores()
        out = np.tile(base, (n, 1))
        g = self.user_group_[users]
        has = g >= 0
        out[has] += self.group_scores_[g[has]]
        return out

    def get_state(self) -> dict:
        state = {"item_scores": self.item_scores_}
        if self.group_labels_ is not None:
            state.update(group_labels=self.group_labels_.astype(str), group_scores=self.group_scores_)
        return state

    def _set_state(self, state):
        self.item_scores_ = np.asarray(state["item_scores"], dtype=np.float64)
        if "group_labels" in state:
            self.group_labels_ = np.asarray(state["group_labels"]).astype(object)
            self.group_scores_ = np.asarray(state["group_scores"], dtype=np.float64)
        self._no_history(len(self.item_scores_))
