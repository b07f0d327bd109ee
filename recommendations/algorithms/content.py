"""Content-based: items described by tokens (tags, category, brand), TF-IDF cosine.

A user's profile is the interaction-weighted mean of the TF-IDF vectors of the items they
consumed; an item's score is the cosine between the profile and the item's vector. Works for
items nobody has interacted with yet (the cold-item fallback of the hybrid).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from .base import Recommender, as_csr, csr_from_state, csr_state, top_k


def item_tokens(category: str | None = None, brand: str | None = None, tags: Sequence[str] | None = None) -> list[str]:
    """The token list for one item: namespaced so a brand and a tag with one name differ."""
    out = []
    if category:
        out.append(f"category:{category.strip().lower()}")
    if brand:
        out.append(f"brand:{brand.strip().lower()}")
    out.extend(f"tag:{t.strip().lower()}" for t in (tags or ()) if t and t.strip())
    return out


def _identity(tokens):
    return tokens


class ContentBased(Recommender):
    """fit(X, item_features=F): F is either a list with one token list per item (column of X)
    or an (n_items x n_features) sparse/dense matrix (used as given, then L2-normalised).

    `jaccard=True` uses binary token sets and Jaccard similarity for `similar_items`
    (the profile score stays cosine).
    """

    name = "content"
    params = ("sublinear_tf", "jaccard")

    def __init__(self, sublinear_tf: bool = True, jaccard: bool = False):
        super().__init__()
        self.sublinear_tf = sublinear_tf
        self.jaccard = jaccard
        self.F_: sp.csr_matrix | None = None
        self.vocabulary_: list[str] | None = None

    def fit(self, X, item_features=None, **side):
        X = as_csr(X)
        if item_features is None:
            raise ValueError("ContentBased needs fit(X, item_features=...)")
        if isinstance(item_features, (list, tuple)):
            if len(item_features) != X.shape[1]:
                raise ValueError(f"item_features has {len(item_features)} entries, X has {X.shape[1]} items")
            vec = TfidfVectorizer(analyzer=_identity, lowercase=False, sublinear_tf=self.sublinear_tf, norm="l2")
            docs = [list(t) for t in item_features]
            if not any(docs):
                raise ValueError("no item has any content token")
            F = vec.fit_transform(docs)
            self.vocabulary_ = list(vec.get_feature_names_out())
        else:
            F = sp.csr_matrix(item_features, dtype=np.float64)
            if F.shape[0] != X.shape[1]:
                raise ValueError(f"item_features has {F.shape[0]} rows, X has {X.shape[1]} items")
            F = normalize(F)
        self.F_ = sp.csr_matrix(F, dtype=np.float32)
        self.X_ = X
        return self

    def profiles(self, X_rows: sp.csr_matrix) -> sp.csr_matrix:
        """Weighted mean of consumed items' vectors, one row per user (L2-normalised)."""
        totals = np.asarray(X_rows.sum(axis=1)).ravel()
        totals[totals == 0] = 1.0
        P = sp.diags(1.0 / totals) @ (X_rows @ self.F_)
        return normalize(sp.csr_matrix(P))

    def _score_rows(self, X_rows, users):
        return np.asarray((self.profiles(X_rows) @ self.F_.T).toarray())

    def item_similarity(self, items) -> np.ndarray:
        items = np.atleast_1d(np.asarray(items, dtype=np.int64))
        if not self.jaccard:
            return np.asarray((self.F_[items] @ self.F_.T).toarray())
        B = self.F_.copy()
        B.data[:] = 1.0
        inter = np.asarray((B[items] @ B.T).toarray())
        size = np.asarray(B.sum(axis=1)).ravel()
        union = size[items][:, None] + size[None, :] - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(union > 0, inter / union, 0.0)

    def similar_items(self, items, k: int = 10):
        items = np.atleast_1d(np.asarray(items, dtype=np.int64))
        sims = self.item_similarity(items)
        return _top_others(sims, items, k)

    def get_state(self) -> dict:
        return csr_state(self.F_)

    def _set_state(self, state):
        self.F_ = csr_from_state(state).astype(np.float32)
        self._no_history(self.F_.shape[0])


def _top_others(sims: np.ndarray, items: np.ndarray, k: int):
    sims = sims.astype(np.float64).copy()
    sims[sims <= 0] = -np.inf
    sims[np.arange(len(items)), items] = -np.inf
    return top_k(sims, k)


def tokens_from_mapping(features: Mapping[str, Sequence[str]], item_ids: Sequence) -> list[list[str]]:
    """Token lists aligned with the matrix columns (missing items get no tokens)."""
    return [list(features.get(i, ())) for i in item_ids]
