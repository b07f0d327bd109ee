"""Neighbourhood models: item-based and user-based cosine kNN on implicit feedback."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .base import Recommender, as_csr, binarize, csr_from_state, csr_state, similar_from_matrix, top_k_sparse


def cosine_similarity_sparse(A: sp.csr_matrix, B: sp.csr_matrix | None = None, shrink: float = 0.0) -> sp.csr_matrix:
    """Row-wise cosine similarity between the rows of A (and B), sparse.

    With `shrink` > 0 the denominator gets `+ shrink` (the usual support shrinkage: pairs seen
    together only a few times count less).
    """
    B = A if B is None else B
    num = (A @ B.T).tocsr().astype(np.float64)
    na = np.sqrt(np.asarray(A.multiply(A).sum(axis=1)).ravel())
    nb = np.sqrt(np.asarray(B.multiply(B).sum(axis=1)).ravel())
    num = num.tocoo()
    den = na[num.row] * nb[num.col] + shrink
    with np.errstate(divide="ignore", invalid="ignore"):
        data = np.where(den > 0, num.data / den, 0.0)
    out = sp.csr_matrix((data, (num.row, num.col)), shape=num.shape)
    out.eliminate_zeros()
    return out


class ItemKNN(Recommender):
    """Item-based CF: cosine similarity between item columns, top-`neighbours` per item.

    The neighbour matrix S (items x items, sparse; row i holds i's neighbours) is the artefact.
    Score of item j for a user: sum over the user's items i of S[i, j].
    Defaults (neighbours=10, shrink=10): best of neighbours 5..400 x shrink {0, 10, 50} by
    nDCG@10 on the validation split (bench/tune_recommenders.py).
    """

    name = "item_knn"
    params = ("neighbours", "shrink", "implicit")

    def __init__(self, neighbours: int = 10, shrink: float = 10.0, implicit: bool = True):
        super().__init__()
        self.neighbours = neighbours
        self.shrink = shrink
        self.implicit = implicit
        self.S_: sp.csr_matrix | None = None

    def fit(self, X, **side):
        X = as_csr(X)
        self.X_ = X
        Xb = binarize(X) if self.implicit else X
        S = cosine_similarity_sparse(Xb.T.tocsr(), shrink=self.shrink).tolil()
        S.setdiag(0)
        S = S.tocsr()
        S.eliminate_zeros()
        self.S_ = top_k_sparse(S, self.neighbours)
        return self

    def _score_rows(self, X_rows, users):
        Xr = binarize(X_rows) if self.implicit else X_rows
        return np.asarray((Xr @ self.S_).toarray())

    def similar_items(self, items, k: int = 10):
        return similar_from_matrix(self.S_, items, k)

    def get_state(self) -> dict:
        return csr_state(self.S_)

    def _set_state(self, state):
        self.S_ = csr_from_state(state)
        self._no_history(self.S_.shape[1])


class UserKNN(Recommender):
    """User-based CF: cosine similarity between users, top-`neighbours` per user.

    Score of item j for user u: sum over u's neighbours v of sim(u, v) * X[v, j].
    A history given as `X` rows (a new customer) is compared with every training user.
    Defaults (neighbours=200, shrink=0): best of neighbours 20..400 x shrink {0, 10, 50} by
    nDCG@10 on the validation split (bench/tune_recommenders.py).
    """

    name = "user_knn"
    params = ("neighbours", "shrink", "implicit")

    def __init__(self, neighbours: int = 200, shrink: float = 0.0, implicit: bool = True):
        super().__init__()
        self.neighbours = neighbours
        self.shrink = shrink
        self.implicit = implicit
        self.Xb_: sp.csr_matrix | None = None

    def fit(self, X, **side):
        X = as_csr(X)
        self.X_ = X
        self.Xb_ = binarize(X) if self.implicit else X
        return self

    def _score_rows(self, X_rows, users):
        Xr = binarize(X_rows) if self.implicit else X_rows
        S = cosine_similarity_sparse(Xr, self.Xb_, shrink=self.shrink).tolil()
        if users is not None:  # a training user is not their own neighbour
            S[np.arange(len(users)), users] = 0
        S = top_k_sparse(S.tocsr(), self.neighbours)
        return np.asarray((S @ self.Xb_).toarray())

    def get_state(self) -> dict:
        return csr_state(self.Xb_)

    def _set_state(self, state):
        self.Xb_ = csr_from_state(state)
        self.X_ = self.Xb_  # the training matrix is this model's artefact
