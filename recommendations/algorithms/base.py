"""The common interface of every recommender: a sparse users x items matrix in, scores out.

Plain Python (numpy/scipy); nothing here knows about Django or the database. Users and items
are row/column indices of the interaction matrix; mapping them to and from external ids is
the caller's business (see `weighting.IdIndex`).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterable

import numpy as np
import scipy.sparse as sp

#: Padding used by `recommend` when fewer than k items can be recommended.
NO_ITEM = -1


def as_csr(X) -> sp.csr_matrix:
    """X as a float32 CSR matrix with sorted indices and no explicit zeros or duplicates."""
    X = sp.csr_matrix(X, dtype=np.float32)
    X.sum_duplicates()
    X.eliminate_zeros()
    X.sort_indices()
    return X


def binarize(X: sp.csr_matrix) -> sp.csr_matrix:
    """Every stored (positive) interaction counts 1."""
    B = as_csr(X).copy()
    B.data = (B.data > 0).astype(np.float32)
    B.eliminate_zeros()
    return B


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k highest-scoring columns, best first; ties go to the lower column index.

    Entries scored -inf are never returned: their slots are padded with NO_ITEM / -inf.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    n_rows, n_cols = scores.shape
    k = int(k)
    if k <= 0:
        return np.empty((n_rows, 0), dtype=np.int64), np.empty((n_rows, 0))
    kk = min(k, n_cols)
    if kk < n_cols:
        # Narrow each row down to the candidates that can be in its top k (including
        # every item tied with the k-th), then order those stably.
        part = np.argpartition(-scores, kk - 1, axis=1)
        kth = -np.take_along_axis(-scores, part[:, kk - 1 : kk], axis=1)
        idx = np.empty((n_rows, kk), dtype=np.int64)
        for r in range(n_rows):
            cand = np.flatnonzero(scores[r] >= kth[r, 0])
            order = np.argsort(-scores[r, cand], kind="stable")[:kk]
            idx[r] = cand[order]
    else:
        idx = np.argsort(-scores, axis=1, kind="stable")
    vals = np.take_along_axis(scores, idx, axis=1)
    bad = ~np.isfinite(vals) & (vals < 0)
    idx[bad] = NO_ITEM
    vals = np.where(bad, -np.inf, vals)
    if kk < k:
        idx = np.hstack([idx, np.full((n_rows, k - kk), NO_ITEM, dtype=np.int64)])
        vals = np.hstack([vals, np.full((n_rows, k - kk), -np.inf)])
    return idx, vals


def top_k_sparse(S: sp.spmatrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of every row of S (ties: lower column first)."""
    S = sp.csr_matrix(S)
    S.sort_indices()
    rows, cols, vals = [], [], []
    for r in range(S.shape[0]):
        lo, hi = S.indptr[r], S.indptr[r + 1]
        if hi == lo:
            continue
        c, v = S.indices[lo:hi], S.data[lo:hi]
        if hi - lo > k:
            keep = np.argsort(-v, kind="stable")[:k]
            c, v = c[keep], v[keep]
        rows.append(np.full(len(c), r, dtype=np.int64))
        cols.append(c)
        vals.append(v)
    if not rows:
        return sp.csr_matrix(S.shape, dtype=np.float32)
    out = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=S.shape, dtype=np.float32
    )
    out.sort_indices()
    return out


class NotSupported(Exception):
    """The model does not offer this capability (item-item similarity, restoring from arrays)."""


class Recommender(ABC):
    """fit(X) once; then score / recommend / similar_items.

    - `fit(X, **side)`: X is a users x items sparse matrix of (weighted) interactions.
      Side information (item features, user groups, timestamps) is passed by keyword;
      a model ignores what it does not use.
    - `score(users=None, X=None)`: a dense (n, n_items) array. `users` are row indices of the
      training matrix; `X` (csr rows) gives histories instead, e.g. a customer's events since
      training or a brand-new customer. Higher is better; scores are only comparable within
      one model and one user.
    - `recommend(users, k, exclude_seen=True, X=None)`: (item indices, scores), each (n, k),
      best first, padded with NO_ITEM / -inf when fewer than k items qualify.
    - `similar_items(items, k)`: for item-item models, the k most similar other items.
    - `get_state()` / `from_state(state, **params)`: the learned artefacts as numpy arrays, so
      a registry can store them and serving never retrains. A restored model has no training
      histories: serve it with `recommend(X=history_rows)` (seen items come from those rows);
      factor models also keep answering by training-user index.
    """

    name = "base"
    #: Hyper-parameter names (constructor arguments) reported with results.
    params: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.X_: sp.csr_matrix | None = None

    # -- every model implements ----------------------------------------------------------------
    @abstractmethod
    def fit(self, X, **side) -> "Recommender":
        """Learn from X (users x items); side information by keyword, ignored when unused."""

    @abstractmethod
    def _score_rows(self, X_rows: sp.csr_matrix, users: np.ndarray | None) -> np.ndarray:
        """Scores for the given history rows (and their training row indices when known)."""

    @abstractmethod
    def get_state(self) -> dict:
        """The learned artefacts as numpy arrays (what a registry stores)."""

    # -- shared ---------------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return self.X_.shape[1]

    @property
    def n_users(self) -> int:
        return self.X_.shape[0]

    def get_params(self) -> dict:
        return {p: getattr(self, p) for p in self.params}

    def _history(self, users, X) -> tuple[sp.csr_matrix, np.ndarray | None]:
        if self.X_ is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(X) first")
        if X is not None:
            X = as_csr(X)
            if X.shape[1] != self.n_items:
                raise ValueError(f"history has {X.shape[1]} item columns, the model has {self.n_items}")
            return X, (None if users is None else np.asarray(users, dtype=np.int64))
        if users is None:
            users = np.arange(self.n_users)
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        if users.size and (users.min() < 0 or users.max() >= self.n_users):
            raise IndexError(f"user index out of range [0, {self.n_users})")
        return self.X_[users], users

    def score(self, users=None, X=None) -> np.ndarray:
        X_rows, users = self._history(users, X)
        return np.asarray(self._score_rows(X_rows, users), dtype=np.float64)

    def recommend(self, users=None, k: int = 10, exclude_seen: bool = True, X=None, batch_size: int = 1024):
        X_rows, users_arr = self._history(users, X)
        out_idx, out_val = [], []
        for start in range(0, X_rows.shape[0], batch_size):
            rows = X_rows[start : start + batch_size]
            u = None if users_arr is None else users_arr[start : start + batch_size]
            s = np.asarray(self._score_rows(rows, u), dtype=np.float64)
            if exclude_seen:
                r, c = rows.nonzero()
                s[r, c] = -np.inf
            i, v = top_k(s, k)
            out_idx.append(i)
            out_val.append(v)
        if not out_idx:
            return np.empty((0, k), dtype=np.int64), np.empty((0, k))
        return np.vstack(out_idx), np.vstack(out_val)

    # -- capabilities some models have ----------------------------------------------------------
    def similar_items(self, items: Iterable[int] | int, k: int = 10):
        raise NotSupported(f"{type(self).__name__} has no item-item similarity")

    def _set_state(self, state: dict) -> None:
        raise NotSupported(f"{type(self).__name__} cannot be restored from arrays")

    @classmethod
    def from_state(cls, state: dict, **params) -> "Recommender":
        """A fitted model rebuilt from `get_state()` arrays and its constructor parameters."""
        model = cls(**params)
        model._set_state(state)
        return model

    def _no_history(self, n_items: int, n_users: int = 0) -> None:
        self.X_ = sp.csr_matrix((n_users, int(n_items)), dtype=np.float32)

    def __repr__(self) -> str:
        args = ", ".join(f"{p}={getattr(self, p)!r}" for p in self.params)
        return f"{type(self).__name__}({args})"


def csr_state(M: sp.csr_matrix) -> dict:
    return {"indptr": M.indptr, "indices": M.indices, "data": M.data, "shape": np.array(M.shape)}


def csr_from_state(state: dict) -> sp.csr_matrix:
    return sp.csr_matrix((state["data"], state["indices"], state["indptr"]), shape=tuple(int(x) for x in state["shape"]))


def similar_from_matrix(S: sp.csr_matrix | np.ndarray, items, k: int):
    """Top-k most similar other items from an item x item similarity (sparse or dense)."""
    items = np.atleast_1d(np.asarray(items, dtype=np.int64))
    rows = S[items]
    rows = rows.toarray() if sp.issparse(rows) else np.array(rows, dtype=np.float64)
    rows = rows.astype(np.float64)
    rows[rows == 0] = -np.inf  # no evidence of similarity: not a neighbour
    rows[np.arange(len(items)), items] = -np.inf
    return top_k(rows, k)
