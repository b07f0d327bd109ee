"""Every algorithm on a tiny dataset with a known answer; seen items; cold start; artefacts."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.algorithms import (
    ALS,
    BPR,
    EASE,
    NO_ITEM,
    ContentBased,
    Hybrid,
    IdIndex,
    ItemKNN,
    Popularity,
    RP3beta,
    UserKNN,
    interaction_matrix,
    interaction_weights,
    item_tokens,
    registry,
    top_k,
)

DAY = 86400.0


def csr(rows):
    return sp.csr_matrix(np.array(rows, dtype=np.float32))


# Two communities: users 0-3 like items 0-2, users 4-7 like items 3-5; item 6 is unseen.
COMMUNITIES = csr(
    [
        [1, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0],  # has not seen item 2 yet
        [0, 0, 0, 1, 1, 1, 0],
        [0, 0, 0, 1, 1, 1, 0],
        [0, 0, 0, 1, 1, 1, 0],
        [0, 0, 0, 0, 1, 1, 0],  # has not seen item 3 yet
    ]
)


# -- helpers ------------------------------------------------------------------------------------


def test_top_k_orders_breaks_ties_by_index_and_pads():
    s = np.array([[0.5, 0.9, 0.5, -np.inf, 0.1]])
    idx, val = top_k(s, 3)
    assert idx.tolist() == [[1, 0, 2]]
    assert val.tolist() == [[0.9, 0.5, 0.5]]
    idx, val = top_k(s, 6)
    assert idx.tolist() == [[1, 0, 2, 4, NO_ITEM, NO_ITEM]]
    assert np.isneginf(val[0, 4:]).all()


def test_interaction_weights_event_types_ratings_and_decay():
    weights = {"view": 1, "click": 2, "add_to_cart": 4, "purchase": 8, "rate": 1}
    w = interaction_weights(["view", "click", "add_to_cart", "purchase", "rate", "login"], values=[0, 0, 0, 0, 4, 0],
                            event_weights=weights)
    assert w.tolist() == [1, 2, 4, 8, 4, 0]
    # half-life of 10 days: an event 10 days before as_of counts half, 20 days a quarter
    now = 1_000 * DAY
    w = interaction_weights(["purchase"] * 3, timestamps=[now, now - 10 * DAY, now - 20 * DAY], event_weights=weights,
                            half_life_days=10, as_of=now)
    assert w == pytest.approx([8, 4, 2])


def test_interaction_matrix_sums_repeats_and_drops_ignored_types():
    users, items = IdIndex(["u1", "u2"]), IdIndex(["a", "b"])
    X = interaction_matrix(
        users.encode(["u1", "u1", "u2", "u2"]), items.encode(["a", "a", "b", "a"]), shape=(2, 2),
        event_types=["view", "purchase", "click", "login"],
    )
    assert X.toarray().tolist() == [[9.0, 0.0], [0.0, 2.0]]
    assert X.nnz == 2


# -- popularity ---------------------------------------------------------------------------------


def test_popularity_global_excludes_seen():
    X = csr([[1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 1, 0], [0, 0, 0, 0]])
    m = Popularity().fit(X)
    assert m.item_scores_.tolist() == [3, 1, 2, 0]
    idx, _ = m.recommend([3], k=3)
    assert idx.tolist() == [[0, 2, 1]]
    idx, _ = m.recommend([0], k=3)  # items 0 and 1 seen
    assert idx.tolist() == [[2, 3, NO_ITEM]]
    idx, _ = m.recommend([0], k=2, exclude_seen=False)
    assert idx.tolist() == [[0, 2]]


def test_popularity_per_group_then_global():
    # group "vip" (users 0, 1) loves item 3; global favourite is item 0
    X = csr([[0, 0, 0, 1], [0, 1, 0, 1], [1, 0, 1, 0], [1, 0, 0, 0], [1, 0, 0, 0]])
    m = Popularity(by_group=True).fit(X, user_groups=["vip", "vip", "std", "std", None])
    empty = csr([[0, 0, 0, 0]] * 2)
    idx, _ = m.recommend([0, 4], k=4, exclude_seen=False)
    assert idx[0].tolist() == [3, 1, 0, 2]  # vip: 3 (2 users), 1 (1 user); then global: 0, 2
    assert idx[1].tolist() == [0, 3, 1, 2]  # no group: global (ties 3 vs 1 vs 2 by count, index)
    assert m.group_scores("std").argmax() == 0
    assert np.array_equal(m.group_scores("unknown"), m.group_scores(None))
    # a history without a training row falls back to global
    idx, _ = m.recommend(X=empty, k=1)
    assert idx.tolist() == [[0], [0]]


def test_trending_prefers_recent_interactions():
    now = 100 * DAY
    # item 0: 3 interactions 60 days old; item 1: 2 interactions today
    X = csr([[1, 0], [1, 0], [1, 1], [0, 1]])
    T = csr([[now - 60 * DAY, 0], [now - 60 * DAY, 0], [now - 60 * DAY, now], [0, now]])
    assert Popularity().fit(X).item_scores_.argmax() == 0
    m = Popularity(half_life_days=7).fit(X, timestamps=T, as_of=now)
    assert m.item_scores_.argmax() == 1
    assert m.item_scores_[0] == pytest.approx(3 * 0.5 ** (60 / 7))
    with pytest.raises(ValueError):
        Popularity(half_life_days=7).fit(X)


# -- neighbourhood models -------------------------------------------------------------------------


def test_item_knn_cosine_values_and_recommendation():
    X = csr([[1, 1, 0], [1, 1, 1], [0, 0, 1]])
    m = ItemKNN(neighbours=5, shrink=0).fit(X)
    S = m.S_.toarray()
    # items 0 and 1 co-occur twice, each seen twice: cosine 2 / (sqrt2 * sqrt2) = 1
    assert S[0, 1] == pytest.approx(1.0)
    # items 0 and 2 co-occur once: 1 / (sqrt2 * sqrt2) = 0.5
    assert S[0, 2] == pytest.approx(0.5)
    assert np.diag(S).sum() == 0
    idx, vals = m.recommend(X=csr([[1, 0, 0]]), k=2)
    assert idx.tolist() == [[1, 2]] and vals[0].tolist() == pytest.approx([1.0, 0.5])
    sim_idx, _ = m.similar_items(0, k=2)
    assert sim_idx.tolist() == [[1, 2]]


def test_item_knn_keeps_top_k_neighbours_sparse():
    m = ItemKNN(neighbours=1, shrink=0).fit(COMMUNITIES)
    assert (m.S_.getnnz(axis=1) <= 1).all()
    assert sp.issparse(m.S_)


def test_user_knn_borrows_from_the_closest_user():
    m = UserKNN(neighbours=2, shrink=0).fit(COMMUNITIES)
    idx, _ = m.recommend([3, 7], k=1)
    assert idx.tolist() == [[2], [3]]
    # a user is not their own neighbour: user 0's only unseen in-community item... none left,
    # so scores come from other users only and item 6 (never seen) never outranks them
    assert m.score([0])[0, 6] == 0


@pytest.mark.parametrize(
    "model",
    [
        lambda: ItemKNN(shrink=0),
        lambda: UserKNN(shrink=0),
        lambda: RP3beta(beta=0.0),
        lambda: EASE(l2=1.0),
        lambda: ALS(factors=4, iterations=20, regularization=0.01, random_state=0, num_threads=1),
        lambda: BPR(factors=8, iterations=300, learning_rate=0.05, popularity_correction=0, random_state=0),
    ],
    ids=["item_knn", "user_knn", "rp3beta", "ease", "als", "bpr"],
)
def test_collaborative_models_recommend_within_the_community(model):
    m = model().fit(COMMUNITIES)
    idx, _ = m.recommend([3, 7], k=1)
    assert idx.tolist() == [[2], [3]]


def test_rp3beta_three_step_walk():
    X = csr([[1, 1, 0], [0, 1, 1]])
    m = RP3beta(alpha=1.0, beta=0.0, neighbours=10).fit(X)
    # item 0 -> user 0 (prob 1) -> item 1 (prob 1/2): 0.5; item 0 -> item 2: no path
    W = m.W_.toarray()
    assert W[0, 1] == pytest.approx(0.5) and W[0, 2] == 0
    # item 1 -> users 0/1 (1/2 each) -> item 0 / item 2 (1/2 each): 0.25 each
    assert W[1, 0] == pytest.approx(0.25) and W[1, 2] == pytest.approx(0.25)
    m = RP3beta(alpha=1.0, beta=1.0, neighbours=10).fit(X)  # divided by popularity
    assert m.W_.toarray()[0, 1] == pytest.approx(0.5 / 2)


# -- EASE ----------------------------------------------------------------------------------------


def test_ease_matches_per_item_ridge_regression():
    rng = np.random.default_rng(0)
    X = (rng.random((30, 6)) < 0.4).astype(np.float32)
    lam = 2.0
    m = EASE(l2=lam).fit(sp.csr_matrix(X))
    G = X.T.astype(np.float64) @ X
    for j in range(6):
        others = [i for i in range(6) if i != j]
        # item j predicted from the other items: (G_-j,-j + lam I)^-1 G_-j,j
        coef = np.linalg.solve(G[np.ix_(others, others)] + lam * np.eye(5), G[others, j])
        assert m.B_[others, j] == pytest.approx(coef, abs=1e-5)
        assert m.B_[j, j] == 0
    assert m.score([0])[0] == pytest.approx(X[0] @ m.B_, abs=1e-5)


def test_ease_dropout_penalises_popular_items_more():
    rng = np.random.default_rng(1)
    X = sp.csr_matrix((rng.random((40, 5)) < 0.5).astype(np.float32))
    plain, drop = EASE(l2=1.0).fit(X), EASE(l2=1.0, dropout=0.5).fit(X)
    assert np.abs(drop.B_).sum() < np.abs(plain.B_).sum()
    with pytest.raises(ValueError):
        EASE(dropout=1.0)


# -- matrix factorisation --------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [ALS, BPR])
def test_factorisation_is_reproducible_with_random_state(cls):
    a = cls(factors=8, iterations=10, random_state=3).fit(COMMUNITIES)
    b = cls(factors=8, iterations=10, random_state=3).fit(COMMUNITIES)
    assert np.array_equal(a.item_factors_, b.item_factors_)
    assert np.array_equal(a.user_factors_, b.user_factors_)
    state = a.get_state()
    assert state["item_factors"].shape == (7, a.item_factors_.shape[1])


def test_bpr_popularity_correction_adds_log_popularity():
    raw = BPR(factors=8, iterations=10, popularity_correction=0, random_state=1).fit(COMMUNITIES)
    corrected = BPR(factors=8, iterations=10, popularity_correction=2.0, random_state=1).fit(COMMUNITIES)
    counts = np.asarray(COMMUNITIES.getnnz(axis=0))  # [4, 4, 3, 3, 4, 4, 0]
    diff = corrected.score([0])[0] - raw.score([0])[0]
    assert diff == pytest.approx(2.0 * np.log1p(counts), abs=1e-5)
    assert "item_log_popularity" in corrected.get_state()


def test_als_fold_in_of_a_new_history():
    m = ALS(factors=4, iterations=20, regularization=0.01, random_state=0, num_threads=1).fit(COMMUNITIES)
    idx, _ = m.recommend(X=csr([[0, 0, 0, 1, 1, 0, 0]]), k=1)
    assert idx.tolist() == [[5]]


# -- content -------------------------------------------------------------------------------------


TOKENS = [
    item_tokens("books", "acme", ["scifi", "space"]),  # 0
    item_tokens("books", "acme", ["scifi"]),  # 1
    item_tokens("books", "other", ["romance"]),  # 2
    item_tokens("garden", "other", ["tools"]),  # 3
]


def test_item_tokens_are_namespaced():
    assert item_tokens("Books", "ACME", ["Sci-Fi", " "]) == ["category:books", "brand:acme", "tag:sci-fi"]


def test_content_profile_recommends_similar_items():
    X = csr([[1, 0, 0, 0], [0, 0, 0, 1]])
    m = ContentBased().fit(X, item_features=TOKENS)
    idx, _ = m.recommend([0, 1], k=1)
    assert idx.tolist() == [[1], [2]]  # user 0 (sci-fi book) -> other sci-fi; user 1 -> the "other"-brand item
    sim_idx, sims = m.similar_items(0, k=3)
    assert sim_idx[0, 0] == 1
    assert 3 not in sim_idx[0][np.isfinite(sims[0])]  # nothing in common with the garden tool


def test_content_jaccard_similarity():
    X = csr([[1, 0, 0, 0]])
    m = ContentBased(jaccard=True).fit(X, item_features=TOKENS)
    # items 0 and 1 share {category:books, brand:acme, tag:scifi} of 4 distinct tokens
    assert m.item_similarity([0])[0, 1] == pytest.approx(3 / 4)
    assert m.item_similarity([0])[0, 3] == 0


def test_content_needs_features():
    with pytest.raises(ValueError):
        ContentBased().fit(csr([[1]]))


# -- hybrid and cold start -------------------------------------------------------------------------


def _hybrid():
    return Hybrid([(ItemKNN(shrink=0), 1.0), (UserKNN(shrink=0), 0.5)], cold_item_weight=1.0)


def test_hybrid_cold_user_gets_group_then_global_popular():
    X = csr([[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]])
    groups = ["vip", "vip", "std", "std", "vip"]
    m = _hybrid().fit(X, user_groups=groups)
    idx, _ = m.recommend([4], k=3)  # user 4: vip without history
    assert idx.tolist() == [[1, 0, 2]]  # vip favourite 1, then 0 (also in vip), then global
    idx, _ = m.cold_start(k=2)  # no group: global popular
    assert idx.tolist() == [0, 1]
    idx, _ = m.cold_start(k=2, group="std", exclude=[0])
    assert idx.tolist() == [2, 1]
    idx, _ = m.recommend(X=csr([[0, 0, 0, 0]]), k=1)  # brand-new customer, no group
    assert idx.tolist() == [[0]]


def test_hybrid_cold_item_by_content_similarity():
    # item 3 has no interactions yet but shares the sci-fi tags of item 0
    tokens = [item_tokens("books", "acme", ["scifi"]), item_tokens("garden", "x", ["tools"]),
              item_tokens("garden", "x", ["tools", "hose"]), item_tokens("books", "acme", ["scifi"])]
    X = csr([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0]])
    m = _hybrid().fit(X, item_features=tokens)
    assert m.cold_items_.tolist() == [False, False, False, True]
    sim_idx, _ = m.similar_items(3, k=1)
    assert sim_idx.tolist() == [[0]]
    idx, _ = m.recommend(X=csr([[1, 0, 0, 0]]), k=3)
    assert idx.tolist() == [[1, 3, 2]]  # the new sci-fi book beats the garden item without CF evidence
    m = Hybrid([(ItemKNN(shrink=0), 1.0), (UserKNN(shrink=0), 0.5)], cold_item_weight=3.0).fit(X, item_features=tokens)
    idx, _ = m.recommend(X=csr([[1, 0, 0, 0]]), k=1)
    assert idx.tolist() == [[3]]  # weighted up, content similarity comes first
    # without item features a cold item is never promoted
    m = _hybrid().fit(X)
    idx, _ = m.recommend(X=csr([[1, 0, 0, 0]]), k=1)
    assert idx.tolist() == [[1]]


def test_hybrid_with_one_component_ranks_like_it():
    base = ItemKNN(shrink=0).fit(COMMUNITIES)
    hyb = Hybrid([(ItemKNN(shrink=0), 2.0)]).fit(COMMUNITIES)
    assert np.array_equal(base.recommend(k=3)[0], hyb.recommend(k=3)[0])


# -- all algorithms: seen items never come back; artefacts are numpy -----------------------------


@pytest.mark.parametrize("name,factory", registry(seed=0, threads=1, content=True), ids=lambda v: v if isinstance(v, str) else "")
def test_every_algorithm_excludes_seen_items_and_exports_arrays(name, factory):
    rng = np.random.default_rng(5)
    X = sp.csr_matrix((rng.random((25, 12)) < 0.3).astype(np.float32))
    T = X.copy()
    T.data = np.linspace(0, 50 * DAY, T.nnz)
    tokens = [[f"tag:{i % 3}", f"category:{i % 2}"] for i in range(12)]
    m = factory().fit(X, timestamps=T, item_features=tokens, user_groups=[u % 3 for u in range(25)])
    idx, vals = m.recommend(np.arange(25), k=12)
    for u in range(25):
        seen = set(X[u].indices)
        recommended = [i for i in idx[u] if i != NO_ITEM]
        assert not seen & set(recommended)
        assert len(recommended) == 12 - len(seen)
        assert list(vals[u][: len(recommended)]) == sorted(vals[u][: len(recommended)], reverse=True)
    scores = m.score([0, 1])
    assert scores.shape == (2, 12)
    state = m.get_state()
    assert state and all(isinstance(v, np.ndarray) for v in state.values())


def test_unfitted_and_bad_input_are_clear():
    with pytest.raises(RuntimeError, match="not fitted"):
        EASE().recommend([0])
    m = EASE().fit(COMMUNITIES)
    with pytest.raises(IndexError):
        m.recommend([99])
    with pytest.raises(ValueError, match="item columns"):
        m.recommend(X=csr([[1, 0]]))
    assert math.isfinite(m.score([0]).sum())


@pytest.mark.parametrize(
    "model",
    [
        lambda: Popularity(),
        lambda: ItemKNN(shrink=0),
        lambda: UserKNN(shrink=0),
        lambda: RP3beta(),
        lambda: EASE(l2=1.0),
        lambda: ALS(factors=4, iterations=5, random_state=0, num_threads=1),
        lambda: BPR(factors=4, iterations=5, random_state=0),
        lambda: ContentBased(),
    ],
    ids=["popularity", "item_knn", "user_knn", "rp3beta", "ease", "als", "bpr", "content"],
)
def test_restored_from_arrays_serves_like_the_fitted_model(model):
    """A registry stores get_state(); serving rebuilds the model without retraining."""
    fitted = model().fit(COMMUNITIES, item_features=[[f"tag:{i % 2}"] for i in range(7)])
    restored = type(fitted).from_state(fitted.get_state(), **fitted.get_params())
    recent = csr([[1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 0]])
    a_idx, a_val = fitted.recommend(X=recent, k=4)
    b_idx, b_val = restored.recommend(X=recent, k=4)
    assert np.array_equal(a_idx, b_idx)
    assert np.allclose(a_val, b_val)


def test_item_similarity_is_a_capability_some_models_lack_and_the_base_is_abstract():
    from recommendations.algorithms.base import NotSupported, Recommender

    with pytest.raises(TypeError):
        Recommender()  # fit, _score_rows and get_state are abstract
    m = UserKNN(neighbours=2, shrink=0).fit(COMMUNITIES)
    with pytest.raises(NotSupported, match="no item-item similarity"):
        m.similar_items(0, k=2)
    # A hybrid asks its components in turn: UserKNN has none, ItemKNN answers.
    hybrid = Hybrid([(UserKNN(shrink=0), 1.0), (ItemKNN(shrink=0), 1.0)]).fit(COMMUNITIES)
    idx, _ = hybrid.similar_items(0, k=2)
    assert idx.shape == (1, 2)
