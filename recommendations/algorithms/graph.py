"""RP3beta (Paudel et al. 2017, "Updatable, accurate, diverse, and scalable recommendations for
interactive applications"): a 3-step random walk user -> item -> user -> item with transition
probabilities raised to `alpha`, divided by item popularity ** `beta` to favour less obvious
items; top-`neighbours` per item, stored sparse like ItemKNN.

Defaults (alpha=0.8, beta=0.6, neighbours=400): best of alpha {0.5, 0.8, 1} x beta 0..0.8 x
neighbours 50..400 by nDCG@10 on the validation split (bench/tune_recommenders.py).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from .base import Recommender, as_csr, binarize, csr_from_state, csr_state, similar_from_matrix, top_k_sparse


class RP3beta(Recommender):
    name = "rp3beta"
    params = ("alpha", "beta", "neighbours")

    def __init__(self, alpha: float = 0.8, beta: float = 0.6, neighbours: int = 400):
        super().__init__()
        self.alpha, self.beta, self.neighbours = alpha, beta, neighbours
        self.W_: sp.csr_matrix | None = None

    def fit(self, X, **side):
        X = as_csr(X)
        self.X_ = X
        Xb = binarize(X)
        Pui = normalize(Xb, norm="l1", axis=1)
        Piu = normalize(Xb.T.tocsr(), norm="l1", axis=1)
        if self.alpha != 1.0:
            Pui = Pui.power(self.alpha)
            Piu = Piu.power(self.alpha)
        W = (Piu @ Pui).tocsr()  # item -> user -> item
        pop = np.asarray(Xb.sum(axis=0)).ravel()
        with np.errstate(divide="ignore"):
            scale = np.where(pop > 0, np.power(np.maximum(pop, 1e-12), -self.beta), 0.0)
        W = W @ sp.diags(scale)
        W = W.tolil()
        W.setdiag(0)
        W = W.tocsr()
        W.eliminate_zeros()
        self.W_ = top_k_sparse(W, self.neighbours)
        return self

    def _score_rows(self, X_rows, users):
        return np.asarray((binarize(X_rows) @ self.W_).toarray())

    def similar_items(self, items, k: int = 10):
        return similar_from_matrix(self.W_, items, k)

    def get_state(self) -> dict:
        return csr_state(self.W_)

    def _set_state(self, state):
        self.W_ = csr_from_state(state)
        self._no_history(self.W_.shape[1])
