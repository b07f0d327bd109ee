"""Matrix factorisation on implicit feedback with the `implicit` library: ALS and BPR.

Threads are set explicitly and results are reproducible for a given `random_state`
(BPR's Hogwild SGD is only deterministic with one thread, so that is its default).
"""
from __future__ import annotations

from abc import abstractmethod

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from .base import Recommender, as_csr, binarize, top_k


def _as_numpy(a) -> np.ndarray:
    return np.asarray(a.to_numpy() if hasattr(a, "to_numpy") else a, dtype=np.float32)


class _ImplicitMF(Recommender):
    """Shared plumbing: fit an `implicit` model on the (optionally binarised) matrix and keep
    user and item factors as numpy arrays; score = user factors . item factors."""

    implicit = True

    @abstractmethod
    def _make(self):
        """The `implicit` model to fit, built from this model's hyper-parameters."""

    def _train_matrix(self, X: sp.csr_matrix) -> sp.csr_matrix:
        return binarize(X) if self.implicit else X

    def fit(self, X, **side):
        X = as_csr(X)
        self.X_ = X
        # implicit's own threads do the work; BLAS stays single-threaded (implicit warns otherwise).
        with threadpool_limits(1, "blas"):
            model = self._make()
            model.fit(self._train_matrix(X), show_progress=False)
        self.model_ = model
        self.user_factors_ = _as_numpy(model.user_factors)
        self.item_factors_ = _as_numpy(model.item_factors)
        return self

    def _score_rows(self, X_rows, users):
        if users is not None:
            U = self.user_factors_[users]
        else:
            U = self._fold_in(self._train_matrix(X_rows))
        return U @ self.item_factors_.T

    def _fold_in(self, X_rows: sp.csr_matrix) -> np.ndarray:
        # users unseen in training: least squares on their history against the item factors
        V = self.item_factors_.astype(np.float64)
        A = V.T @ V + getattr(self, "regularization", 0.01) * np.eye(V.shape[1])
        return np.linalg.solve(A, (X_rows @ V).T).T.astype(np.float32)

    def similar_items(self, items, k: int = 10):
        V = self.item_factors_.astype(np.float64)
        norms = np.linalg.norm(V, axis=1)
        norms[norms == 0] = 1.0
        Vn = V / norms[:, None]
        items = np.atleast_1d(np.asarray(items, dtype=np.int64))
        sims = Vn[items] @ Vn.T
        sims[np.arange(len(items)), items] = -np.inf
        return top_k(sims, k)

    def get_state(self) -> dict:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    def _set_state(self, state):
        self.user_factors_ = np.asarray(state["user_factors"], dtype=np.float32)
        self.item_factors_ = np.asarray(state["item_factors"], dtype=np.float32)
        self._no_history(len(self.item_factors_), n_users=len(self.user_factors_))


class ALS(_ImplicitMF):
    """implicit's AlternatingLeastSquares (Hu, Koren & Volinsky 2008), confidence 1 + alpha * x.

    Defaults (factors=64, regularization=50, alpha=6, iterations=30): best by nDCG@10 on the
    validation split (bench/tune_recommenders.py) of two grids, factors 16-128 x
    regularization 0.01-100 x alpha 0.5-10 (implicit's regularization is not scaled by the
    number of interactions, hence the large value).
    """

    name = "als"
    params = ("factors", "regularization", "alpha", "iterations", "random_state", "num_threads")

    def __init__(self, factors=64, regularization=50.0, alpha=6.0, iterations=30, random_state=42, num_threads=2):
        super().__init__()
        self.factors, self.regularization, self.alpha = factors, regularization, alpha
        self.iterations, self.random_state, self.num_threads = iterations, random_state, num_threads

    def _make(self):
        from implicit.cpu.als import AlternatingLeastSquares

        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.random_state,
            num_threads=self.num_threads,
            calculate_training_loss=False,
        )


class BPR(_ImplicitMF):
    """implicit's BayesianPersonalizedRanking (Rendle et al. 2009), with a popularity correction.

    implicit draws each negative item as the item of a random interaction, i.e. in proportion
    to its popularity, so the learned score is roughly the true preference minus log(popularity)
    and the model under-recommends popular items. `popularity_correction` g adds
    g * log(1 + item count) back at scoring time (the "logQ" correction of sampled training);
    g = 0 gives implicit's raw scores.

    One thread by default: with more, its lock-free SGD is not reproducible.
    Defaults (factors=128, learning_rate=0.01, regularization=0.01, iterations=100,
    popularity_correction=1): best by nDCG@10 on the validation split
    (bench/tune_recommenders.py), see docs/recommendations.md. Without the correction no
    setting beat plain popularity on that split.
    """

    name = "bpr"
    params = (
        "factors", "learning_rate", "regularization", "iterations", "popularity_correction", "random_state", "num_threads",
    )

    def __init__(
        self,
        factors=128,
        learning_rate=0.01,
        regularization=0.01,
        iterations=100,
        popularity_correction=1.0,
        random_state=42,
        num_threads=1,
    ):
        super().__init__()
        self.factors, self.learning_rate, self.regularization = factors, learning_rate, regularization
        self.iterations, self.random_state, self.num_threads = iterations, random_state, num_threads
        self.popularity_correction = popularity_correction

    def fit(self, X, **side):
        super().fit(X, **side)
        self.item_log_popularity_ = np.log1p(np.asarray(self.X_.getnnz(axis=0), dtype=np.float64)).astype(np.float32)
        return self

    def _score_rows(self, X_rows, users):
        scores = super()._score_rows(X_rows, users)
        if self.popularity_correction:
            scores = scores + self.popularity_correction * self.item_log_popularity_
        return scores

    def get_state(self) -> dict:
        return {**super().get_state(), "item_log_popularity": self.item_log_popularity_}

    def _set_state(self, state):
        super()._set_state(state)
        self.item_log_popularity_ = np.asarray(state["item_log_popularity"], dtype=np.float32)

    def _make(self):
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            random_state=self.random_state,
            num_threads=self.num_threads,
            verify_negative_samples=True,
        )
