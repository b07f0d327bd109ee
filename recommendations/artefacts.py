"""Serving artefacts: what a trained recommender leaves behind for request time, and the
numpy scorer that uses them. Plain numpy/scipy, no ORM (like algorithms/).

A trained model is reduced to bounded arrays, so that every web process can hold it:
- item neighbours: the top-K columns of each row of the model's item-item matrix (EASE's B,
  ItemKNN's cosine, RP3beta's walk probabilities; for factor models the cosine of the item
  factors). Row i says how much a customer's interaction with item i speaks for item j.
  This is both the personal scorer of item models (history x neighbours) and the source of
  the reasons ("because you bought X") and of similar items. For EASE the full B would be
  n_items^2 floats (400 MB at 10,000 items); its top 100 per row keep what matters.
- item factors (ALS/BPR): a customer's vector is folded in from their current history at
  request time (the confidence-weighted least squares of implicit's recalculate_user), so
  events since training count without retraining.
- popularity: overall, trending (time-decayed) and per tier of the tier dimension, for cold
  start ("popular with VIP customers", "trending in Books").

Everything is keyed by matrix column; `item_pks` maps columns to Item primary keys.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .algorithms import EASE, ALS, BPR, Hybrid, ItemKNN, Popularity, RP3beta, Recommender
from .algorithms.hybrid import normalise_rows

ARTEFACT_VERSION = 1
DEFAULT_NEIGHBOURS = 100
TRENDING_HALF_LIFE_DAYS = 30.0
SECONDS_PER_DAY = 86400.0


# --- building ---------------------------------------------------------------------------------

def _top_k_rows_dense(M: np.ndarray, k: int, chunk: int = 512) -> sp.csr_matrix:
    """The k largest positive entries of each row of a dense square matrix (diagonal excluded)."""
    blocks = [_top_k_rows_dense_offset(M[start : start + chunk], start, k) for start in range(0, M.shape[0], chunk)]
    return sp.vstack(blocks).tocsr() if blocks else sp.csr_matrix(M.shape, dtype=np.float32)


def _top_k_rows_sparse(S: sp.csr_matrix, k: int) -> sp.csr_matrix:
    from .algorithms.base import top_k_sparse

    S = sp.csr_matrix(S, dtype=np.float32)
    S.data[S.data < 0] = 0
    S.eliminate_zeros()
    return top_k_sparse(S, k)


def _factor_neighbours(V: np.ndarray, k: int, chunk: int = 1024) -> sp.csr_matrix:
    V = np.asarray(V, dtype=np.float32)
    norms = np.linalg.norm(V, axis=1)
    norms[norms == 0] = 1.0
    Vn = V / norms[:, None]
    blocks = [_top_k_rows_dense_offset(Vn[start : start + chunk] @ Vn.T, start, k) for start in range(0, len(Vn), chunk)]
    return sp.vstack(blocks).tocsr() if blocks else sp.csr_matrix((0, 0), dtype=np.float32)


def _top_k_rows_dense_offset(block: np.ndarray, offset: int, k: int) -> sp.csr_matrix:
    block = np.array(block, dtype=np.float32)
    n_rows, n = block.shape
    r = np.arange(n_rows)
    block[r, offset + r] = -np.inf
    k = min(k, max(n - 1, 0))
    if k <= 0:
        return sp.csr_matrix((n_rows, n), dtype=np.float32)
    part = np.argpartition(-block, k - 1, axis=1)[:, :k]
    v = np.take_along_axis(block, part, axis=1)
    ok = (v > 0).ravel()
    out = sp.csr_matrix((v.ravel()[ok], (np.repeat(r, k)[ok], part.ravel()[ok])), shape=(n_rows, n), dtype=np.float32)
    out.sort_indices()
    return out


def _parts(model: Recommender, X: sp.csr_matrix, k: int) -> tuple[list[tuple[str, float]], sp.csr_matrix | None, np.ndarray | None, dict]:
    """(scoring parts [(kind, weight)], neighbours, item factors, factor params) of a fitted model."""
    if isinstance(model, Hybrid):
        parts, nb, factors, fparams = [], None, None, {}
        for component, weight in model.components:
            sub_parts, sub_nb, sub_f, sub_p = _parts(component, X, k)
            for kind, _ in sub_parts:
                if kind == "nb" and nb is None:
                    nb = sub_nb
                    parts.append(("nb", weight))
                elif kind == "mf" and factors is None:
                    factors, fparams = sub_f, sub_p
                    parts.append(("mf", weight))
            if nb is None and sub_nb is not None:
                nb = sub_nb
        return parts, nb, factors, fparams
    if isinstance(model, EASE):
        return [("nb", 1.0)], _top_k_rows_dense(model.B_, k), None, {}
    if isinstance(model, ItemKNN):
        return [("nb", 1.0)], _top_k_rows_sparse(model.S_, k), None, {}
    if isinstance(model, RP3beta):
        return [("nb", 1.0)], _top_k_rows_sparse(model.W_, k), None, {}
    if isinstance(model, (ALS, BPR)):
        params = {"regularization": float(getattr(model, "regularization", 0.01)),
                  "alpha": float(getattr(model, "alpha", 1.0)) if isinstance(model, ALS) else 0.0}
        return [("mf", 1.0)], _factor_neighbours(model.item_factors_, k), model.item_factors_, params
    if isinstance(model, Popularity):
        knn = ItemKNN(neighbours=k).fit(X)
        return [], knn.S_, None, {}
    raise ValueError(f"no serving artefact for {type(model).__name__}")


def build_artefact(*, model: Recommender, X: sp.csr_matrix, item_pks: np.ndarray, item_ts_weights: tuple[np.ndarray, np.ndarray],
                   user_tier: np.ndarray | None, tier_ids: np.ndarray | None, neighbours: int = DEFAULT_NEIGHBOURS) -> dict:
    """The arrays serving needs from a model fitted on X (users x items, columns = item_pks).

    item_ts_weights: (column, weight x decay) of every interaction, for trending popularity.
    user_tier / tier_ids: each row's tier pk (-1: none) and the tiers to keep popularity for.
    """
    parts, nb, factors, fparams = _parts(model, X, neighbours)
    n_items = X.shape[1]
    Xb = X.copy()
    Xb.data[:] = 1.0
    pop = np.asarray(Xb.sum(axis=0)).ravel().astype(np.float32)
    cols, w = item_ts_weights
    trend = np.bincount(cols, weights=w, minlength=n_items).astype(np.float32) if len(cols) else np.zeros(n_items, np.float32)
    state = {
        "version": np.array([ARTEFACT_VERSION]),
        "item_pks": np.asarray(item_pks, dtype=np.int64),
        "pop": pop,
        "trend": trend,
        "part_kinds": np.array([k for k, _ in parts] or ["pop"]),
        "part_weights": np.array([w for _, w in parts] or [1.0], dtype=np.float64),
    }
    if nb is not None:
        nb = sp.csr_matrix(nb, dtype=np.float32)
        state.update(nb_indptr=nb.indptr.astype(np.int64), nb_indices=nb.indices.astype(np.int32), nb_data=nb.data)
    if factors is not None:
        state.update(item_factors=np.asarray(factors, dtype=np.float32),
                     mf_params=np.array([fparams["regularization"], fparams["alpha"]], dtype=np.float64))
    if user_tier is not None and tier_ids is not None and len(tier_ids):
        G = sp.csr_matrix((np.ones(int((user_tier >= 0).sum()), dtype=np.float32),
                           (np.searchsorted(tier_ids, user_tier[user_tier >= 0]), np.flatnonzero(user_tier >= 0))),
                          shape=(len(tier_ids), X.shape[0]))
        state.update(tier_ids=np.asarray(tier_ids, dtype=np.int64), tier_pop=np.asarray((G @ Xb).toarray(), dtype=np.float32))
    return state


def dumps(state: dict) -> tuple[bytes, str]:
    """(npz bytes, sha256 hex) of an artefact."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **state)
    data = buf.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def loads(data: bytes) -> dict:
    with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _unit(s: np.ndarray) -> np.ndarray:
    lo, hi = (s.min(), s.max()) if len(s) else (0.0, 1.0)
    return (s - lo) / (hi - lo if hi > lo else 1.0) * 0.999


# --- scoring ----------------------------------------------------------------------------------

@dataclass
class History:
    """A customer's recent interactions as model columns, their weights and strongest event type."""

    cols: np.ndarray
    weights: np.ndarray
    kinds: list[str]  # per column: "purchase", "add_to_cart", "rate", "view" (the strongest seen)
    memo: dict = field(default_factory=dict, repr=False, compare=False)  # per-request scratch (ServingModel)

    @property
    def empty(self) -> bool:
        return len(self.cols) == 0


class ServingModel:
    """Request-time scorer over an artefact (see module docstring). Thread-safe: read-only."""

    def __init__(self, state: dict, *, model_id: int | None = None):
        self.model_id = model_id
        self.item_pks: np.ndarray = state["item_pks"]
        self.n_items = len(self.item_pks)
        self.col_of: dict[int, int] = {int(pk): c for c, pk in enumerate(self.item_pks.tolist())}
        self.pop = state["pop"].astype(np.float64)
        self.trend = state["trend"].astype(np.float64)
        self.parts = list(zip(state["part_kinds"].tolist(), state["part_weights"].tolist()))
        self.nb: sp.csr_matrix | None = None
        if "nb_indptr" in state:
            self.nb = sp.csr_matrix((state["nb_data"], state["nb_indices"], state["nb_indptr"]),
                                    shape=(self.n_items, self.n_items))
        self.item_factors = state.get("item_factors")
        if self.item_factors is not None:
            V = self.item_factors.astype(np.float64)
            self._V = V
            self._yty = V.T @ V
            self.mf_regularization, self.mf_alpha = (float(x) for x in state["mf_params"])
        self.tier_index: dict[int, int] = {}
        self.tier_pop = None
        if "tier_ids" in state:
            self.tier_index = {int(t): i for i, t in enumerate(state["tier_ids"].tolist())}
            self.tier_pop = state["tier_pop"].astype(np.float64)
        top = self.pop.max() if self.n_items and self.pop.max() > 0 else 1.0
        self._pop_unit = self.pop / (top * 1.000001)  # in [0, 1): a tie-breaker under other scores
        ttop = self.trend.max() if self.n_items and self.trend.max() > 0 else 1.0
        self._trend_unit = self.trend / ttop
        # Cold-start rankings scaled into [0, 0.999] once, not per request.
        self._global_unit = _unit(self._trend_unit + 0.5 * self._pop_unit)
        self._tier_unit = ({i: _unit(self.tier_pop[i] + self._pop_unit) for i in range(len(self.tier_pop))
                            if self.tier_pop[i].any()} if self.tier_pop is not None else {})

    # personal scores ---------------------------------------------------------------------------
    def personal_scores(self, history: History) -> np.ndarray | None:
        """Scores of every column for this history, or None when nothing in it is known."""
        if history.empty:
            return None
        total = sum(abs(w) for k, w in self.parts if k in ("nb", "mf")) or 0.0
        if not total:
            return None
        out = np.zeros(self.n_items)
        for kind, weight in self.parts:
            if kind == "nb" and self.nb is not None:
                rows, idx, vals = self._gather_history(history)
                s = np.bincount(idx, weights=vals * history.weights[rows], minlength=self.n_items)
            elif kind == "mf" and self.item_factors is not None:
                s = self._fold_in_scores(history)
            else:
                continue
            if len(self.parts) > 1:
                s = normalise_rows(s[None, :])[0]
            out += (weight / total) * s
        return out

    def _gather_history(self, history: History) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """_gather of the history's columns, kept on the history: a request scores with it and
        then explains the top items with it."""
        memo = history.memo.get(id(self))  # keyed by model: a history's columns are one model's
        if memo is None:
            memo = history.memo[id(self)] = self._gather(history.cols)
        return memo

    def _gather(self, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The neighbour entries of the given rows: (position in `cols`, column, value), flat."""
        indptr = self.nb.indptr
        starts, ends = indptr[cols], indptr[cols + 1]
        lengths = ends - starts
        if not lengths.sum():
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0)
        rows = np.repeat(np.arange(len(cols)), lengths)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        flat = np.repeat(starts, lengths) + offsets
        return rows, self.nb.indices[flat].astype(np.int64), self.nb.data[flat].astype(np.float64)

    def _fold_in_scores(self, history: History) -> np.ndarray:
        """implicit's ALS user solve for a new history (binary preferences, confidence 1 + alpha)."""
        Yh = self._V[history.cols]
        a = self.mf_alpha
        A = self._yty + a * (Yh.T @ Yh) + self.mf_regularization * np.eye(self._yty.shape[0])
        b = (1.0 + a) * Yh.sum(axis=0)
        u = np.linalg.solve(A, b)
        return self._V @ u

    def contributions(self, history: History, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each candidate column, (index into history of its strongest reason, strength)."""
        if self.nb is None or history.empty or not len(cols):
            return np.full(len(cols), -1), np.zeros(len(cols))
        rows, idx, vals = self._gather_history(history)
        pos = np.full(self.n_items, -1, dtype=np.int64)
        pos[cols] = np.arange(len(cols))
        keep = pos[idx] >= 0
        C = np.zeros((len(history.cols), len(cols)))
        C[rows[keep], pos[idx[keep]]] = vals[keep] * history.weights[rows[keep]]
        best = C.argmax(axis=0)
        strength = C[best, np.arange(len(cols))]
        return np.where(strength > 0, best, -1), strength

    # popularity --------------------------------------------------------------------------------
    def tier_scores(self, tier_pk: int | None) -> np.ndarray | None:
        i = self.tier_index.get(tier_pk) if tier_pk is not None else None
        if i is None or self.tier_pop is None or not self.tier_pop[i].any():
            return None
        return self.tier_pop[i] + self._pop_unit

    def global_scores(self) -> np.ndarray:
        """Trending first, overall popularity underneath."""
        return self._trend_unit + 0.5 * self._pop_unit

    def fallback_unit(self, tier_pk: int | None) -> tuple[np.ndarray, bool]:
        """(cold-start scores in [0, 0.999], whether they are the tier's) — read-only arrays."""
        i = self.tier_index.get(tier_pk) if tier_pk is not None else None
        if i is not None and i in self._tier_unit:
            return self._tier_unit[i], True
        return self._global_unit, False

    # item-item ---------------------------------------------------------------------------------
    def neighbours(self, col: int) -> tuple[np.ndarray, np.ndarray]:
        if self.nb is None:
            return np.empty(0, dtype=np.int64), np.empty(0)
        lo, hi = self.nb.indptr[col], self.nb.indptr[col + 1]
        return self.nb.indices[lo:hi].astype(np.int64), self.nb.data[lo:hi].astype(np.float64)
