"""Recommendation algorithms: numpy/scipy/scikit-learn/implicit, no Django, no ORM.

Every model follows `base.Recommender`: fit(X users x items csr, **side) -> self;
score(users | X) -> dense scores; recommend(users, k, exclude_seen=True) -> (items, scores);
similar_items(items, k) where it makes sense; get_state() -> numpy arrays for the registry.

The defaults of every constructor were tuned on a validation split cut from the MovieLens
100k training data (bench/tune_recommenders.py); see docs/recommendations.md.
"""
from __future__ import annotations

from typing import Callable

from .base import NO_ITEM, Recommender, top_k
from .content import ContentBased, item_tokens
from .ease import EASE
from .factorization import ALS, BPR
from .graph import RP3beta
from .hybrid import Hybrid, normalise_rows
from .knn import ItemKNN, UserKNN
from .popularity import Popularity
from .weighting import DEFAULT_EVENT_WEIGHTS, IdIndex, interaction_matrix, interaction_weights

__all__ = [
    "ALS",
    "BPR",
    "ContentBased",
    "DEFAULT_EVENT_WEIGHTS",
    "EASE",
    "Hybrid",
    "IdIndex",
    "ItemKNN",
    "NO_ITEM",
    "Popularity",
    "RP3beta",
    "Recommender",
    "UserKNN",
    "best_hybrid",
    "interaction_matrix",
    "interaction_weights",
    "item_tokens",
    "normalise_rows",
    "registry",
    "top_k",
]

#: Trending popularity's half-life in days: a product choice (what is hot this month), not an
#: accuracy optimum; on MovieLens' validation split longer half-lives score higher (365 d best).
TRENDING_HALF_LIFE_DAYS = 30.0


def best_hybrid(seed: int = 42, threads: int = 2) -> Hybrid:
    """The blend with the best validation nDCG@10 (bench/tune_recommenders.py): tuned EASE
    and tuned ALS, z-scored per user, weights 1 : 4 (of EASE + w x {ALS, RP3beta, UserKNN},
    w in 0.2..4)."""
    return Hybrid([(EASE(), 1.0), (ALS(random_state=seed, num_threads=threads), 4.0)])


def registry(seed: int = 42, threads: int = 2, content: bool = True) -> list[tuple[str, Callable[[], Recommender]]]:
    """(name, factory) of every algorithm with its tuned defaults, cheapest first."""
    algos: list[tuple[str, Callable[[], Recommender]]] = [
        ("popularity", lambda: Popularity()),
        ("popularity_trending", lambda: Popularity(half_life_days=TRENDING_HALF_LIFE_DAYS)),
        ("popularity_by_group", lambda: Popularity(by_group=True)),  # global when no user groups
    ]
    if content:
        algos.append(("content", lambda: ContentBased()))
    algos += [
        ("item_knn", lambda: ItemKNN()),
        ("user_knn", lambda: UserKNN()),
        ("rp3beta", lambda: RP3beta()),
        ("als", lambda: ALS(random_state=seed, num_threads=threads)),
        ("bpr", lambda: BPR(random_state=seed)),
        ("ease", lambda: EASE()),
        ("hybrid", lambda: best_hybrid(seed, threads)),
    ]
    return algos
