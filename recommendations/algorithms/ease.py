"""EASE: the closed-form linear item-item model of Steck (2019), "Embarrassingly Shallow
Autoencoders for Sparse Data".  B = argmin ||X - XB||^2 + lambda ||B||^2 with diag(B) = 0,
solved as P = (X'X + lambda I)^-1, B = -P / diag(P), diag(B) = 0.  Scores: X_u B.

With `dropout` p > 0 the penalty on item i grows with its popularity: lambda + p/(1-p) * G_ii,
the emphasised-denoising variant (EDLAE) of Steck, "Autoencoders that don't overfit towards
the Identity" (NeurIPS 2020); dropout=0 is plain EASE.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from .base import Recommender, as_csr, binarize, similar_from_matrix


class EASE(Recommender):
    """EASE with L2 penalty `l2` (lambda).

    Default l2=600, dropout=0: the best of l2 in 100..1200 x dropout in {0, 0.1, 0.25} by
    nDCG@10 on a validation split cut from the MovieLens 100k training data
    (bench/tune_recommenders.py), never on the test split.
    `implicit=True` binarises X (every interaction counts 1).
    """

    name = "ease"
    params = ("l2", "dropout", "implicit")

    def __init__(self, l2: float = 600.0, dropout: float = 0.0, implicit: bool = True):
        super().__init__()
        if not 0 <= dropout < 1:
            raise ValueError("dropout must be in [0, 1)")
        self.l2 = l2
        self.dropout = dropout
        self.implicit = implicit
        self.B_: np.ndarray | None = None

    def fit(self, X, **side):
        X = as_csr(X)
        self.X_ = X
        Xb = binarize(X) if self.implicit else X
        G = (Xb.T @ Xb).toarray().astype(np.float64)
        diag = np.diag_indices_from(G)
        G[diag] += self.l2 + self.dropout / (1.0 - self.dropout) * G[diag]
        P = scipy.linalg.inv(G, overwrite_a=True, check_finite=False)
        B = P / (-np.diag(P))
        B[np.diag_indices_from(B)] = 0.0
        self.B_ = B.astype(np.float32)
        return self

    def _score_rows(self, X_rows, users):
        Xr = binarize(X_rows) if self.implicit else X_rows
        return np.asarray(Xr @ self.B_)

    def similar_items(self, items, k: int = 10):
        return similar_from_matrix(self.B_.T, items, k)

    def get_state(self) -> dict:
        return {"B": self.B_}

    def _set_state(self, state):
        self.B_ = np.asarray(state["B"], dtype=np.float32)
        self._no_history(self.B_.shape[0])
