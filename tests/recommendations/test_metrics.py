"""The split and the metrics against hand-computed values (Microsoft Recommenders' definitions)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from recommendations.evaluation import (
    catalog_coverage,
    map_at_k,
    mean_average_precision,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    stratified_split,
)

# A: 3 test items, hits at ranks 1 and 3.  B: 1 test item, no hit.  C: test items but no
# recommendations.  D: recommendations but no test items.
TRUTH = {"A": {"a", "b", "c"}, "B": {"d"}, "C": {"e", "f"}}
RECS = {"A": ["a", "x", "b", "y"], "B": ["z", "w"], "D": ["a"]}


def test_precision_divides_by_k_over_common_users():
    # common users: A and B.  A: 2 hits in the top 3; B: 0 (and only 2 items recommended,
    # still divided by k, as Spark/Recommenders do).
    assert precision_at_k(TRUTH, RECS, k=3) == pytest.approx((2 / 3 + 0 / 3) / 2)
    assert precision_at_k(TRUTH, RECS, k=2) == pytest.approx((1 / 2 + 0) / 2)


def test_recall_divides_by_the_users_test_items():
    assert recall_at_k(TRUTH, RECS, k=3) == pytest.approx((2 / 3 + 0) / 2)
    assert recall_at_k(TRUTH, RECS, k=2) == pytest.approx((1 / 3 + 0) / 2)


def test_map_is_sum_of_precisions_at_hits_over_number_of_test_items():
    # A: precision at rank 1 = 1/1, at rank 3 = 2/3; divided by |test items| = 3.
    assert mean_average_precision(TRUTH, RECS, k=3) == pytest.approx(((1 + 2 / 3) / 3 + 0) / 2)
    # k=2: only the rank-1 hit counts, still divided by 3 ...
    assert mean_average_precision(TRUTH, RECS, k=2) == pytest.approx((1 / 3 + 0) / 2)
    # ... whereas map_at_k divides by min(3, k=2).
    assert map_at_k(TRUTH, RECS, k=2) == pytest.approx((1 / 2 + 0) / 2)


def test_ndcg_binary_relevance_ideal_over_min_k_and_every_truth_user():
    # A: DCG = 1/log(2) + 1/log(4); IDCG = 1/log(2) + 1/log(3) + 1/log(4) (min(k=3, 3 items)).
    ndcg_a = (1 / math.log(2) + 1 / math.log(4)) / (1 / math.log(2) + 1 / math.log(3) + 1 / math.log(4))
    assert ndcg_a == pytest.approx(1.5 / (1 + 1 / math.log2(3) + 0.5))  # the log base cancels
    # averaged over every user with test items (A, B, C), C without recommendations counting 0
    assert ndcg_at_k(TRUTH, RECS, k=3) == pytest.approx(ndcg_a / 3)
    # k=1: A's ideal DCG has a single term; B's only item missed.
    assert ndcg_at_k(TRUTH, RECS, k=1) == pytest.approx(1 / 3)


def test_ideal_dcg_capped_by_the_number_of_test_items():
    truth = {"u": {"a"}}
    assert ndcg_at_k(truth, {"u": ["a", "b", "c"]}, k=3) == pytest.approx(1.0)
    assert ndcg_at_k(truth, {"u": ["b", "a", "c"]}, k=3) == pytest.approx(math.log(2) / math.log(3))


def test_no_hits_at_all_is_zero():
    truth = {"u": {"a"}}
    recs = {"u": ["b"]}
    for metric in (precision_at_k, recall_at_k, ndcg_at_k, mean_average_precision, map_at_k):
        assert metric(truth, recs, k=5) == 0.0
    assert precision_at_k({}, {}, k=5) == 0.0


def test_perfect_lists():
    truth = {"u": {"a", "b"}, "v": {"c"}}
    recs = {"u": ["b", "a"], "v": ["c"]}
    assert precision_at_k(truth, recs, k=2) == pytest.approx((2 / 2 + 1 / 2) / 2)
    assert recall_at_k(truth, recs, k=2) == 1.0
    assert ndcg_at_k(truth, recs, k=2) == pytest.approx(1.0)
    assert mean_average_precision(truth, recs, k=2) == pytest.approx(1.0)


def test_catalog_coverage():
    recs = {"u": ["a", "b"], "v": ["b", "c"], "w": ["zz"]}
    assert catalog_coverage(recs, ["a", "b", "c", "d"]) == pytest.approx(3 / 4)
    assert catalog_coverage(recs, []) == 0.0


# -- stratified split -----------------------------------------------------------------------


def test_split_per_item_counts_like_recommenders():
    # item x: 4 ratings -> 3 train (ranks 1/4, 2/4, 3/4 <= 0.75) and 1 test; item y: 1 rating
    # -> test (rank 1/1); item z: 2 ratings -> 1 train, 1 test; item w: 3 -> 2 train, 1 test.
    items = ["x"] * 4 + ["y"] + ["z"] * 2 + ["w"] * 3
    users = [f"u{i}" for i in range(len(items))]
    mask = stratified_split(users, items, ratio=0.75, filter_by="item", seed=1)
    counts = {it: (mask[np.array(items) == it].sum(), (~mask[np.array(items) == it]).sum()) for it in "xyzw"}
    assert counts == {"x": (3, 1), "y": (0, 1), "z": (1, 1), "w": (2, 1)}


def test_split_sends_the_highest_random_draws_to_test():
    items = ["x"] * 4 + ["z"] * 2
    users = list("abcdef")
    mask = stratified_split(users, items, filter_by="item", seed=7)
    np.random.seed(7)
    draws = np.random.rand(len(items))  # their draw: np.random.seed(seed); np.random.rand(n), file order
    assert not mask[int(np.argmax(draws[:4]))]
    assert not mask[4 + int(np.argmax(draws[4:]))]
    assert mask.sum() == 4


def test_split_per_user_and_reproducible():
    users = ["a"] * 8 + ["b"] * 4
    items = [str(i) for i in range(12)]
    m1 = stratified_split(users, items, filter_by="user", seed=42)
    m2 = stratified_split(users, items, filter_by="user", seed=42)
    assert (m1 == m2).all()
    assert m1[:8].sum() == 6 and m1[8:].sum() == 3


def test_split_rejects_bad_arguments():
    with pytest.raises(ValueError):
        stratified_split(["a"], ["x"], filter_by="both")
    with pytest.raises(ValueError):
        stratified_split(["a"], ["x"], ratio=1.5)
