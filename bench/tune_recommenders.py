"""Tune the recommenders' hyper-parameters on a VALIDATION split, never on the test split.

    .venv/bin/python bench/tune_recommenders.py [--data ../shared/data/movielens-100k/u.data]
        [--format movielens] [--seed 42] [--split item] [--k 10] [--only ease,als]

Protocol: the data is split 75/25 exactly as in the evaluation (Microsoft Recommenders'
python_stratified_split, per item, seed 42); the 75% training part is split again the same
way into 75% fit / 25% validation. Every grid point is fitted on the fit part and scored on
the validation part (nDCG@10 first, Precision@10 second). The test 25% is never read. The
winners become the constructors' defaults in recommendations/algorithms/.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommendations.algorithms import ALS, BPR, EASE, Hybrid, ItemKNN, Popularity, RP3beta, UserKNN  # noqa: E402
from recommendations.evaluation import (  # noqa: E402
    evaluate_model,
    format_table,
    load_interactions,
    prepare_split,
    stratified_split,
)

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "movielens-100k" / "u.data"


def grid(**axes):
    keys = list(axes)
    for values in itertools.product(*(axes[k] for k in keys)):
        yield dict(zip(keys, values))


def grids(seed: int):
    return {
        "popularity": [(f"trending half_life={h}", lambda h=h: Popularity(half_life_days=h)) for h in (7, 30, 90, 365)],
        "ease": [
            (f"ease l2={p['l2']} dropout={p['dropout']}", lambda p=p: EASE(**p))
            for p in grid(l2=[100, 200, 300, 450, 600, 800, 1200], dropout=[0.0, 0.1, 0.25])
        ],
        "item_knn": [
            (f"item_knn k={p['neighbours']} shrink={p['shrink']}", lambda p=p: ItemKNN(**p))
            for p in grid(neighbours=[5, 10, 20, 50, 100, 400], shrink=[0, 10, 50])
        ],
        "user_knn": [
            (f"user_knn k={p['neighbours']} shrink={p['shrink']}", lambda p=p: UserKNN(**p))
            for p in grid(neighbours=[50, 100, 200, 400], shrink=[0, 10])
        ],
        "rp3beta": [
            (f"rp3beta a={p['alpha']} b={p['beta']} k={p['neighbours']}", lambda p=p: RP3beta(**p))
            for p in grid(alpha=[0.5, 0.8, 1.0], beta=[0.2, 0.4, 0.6, 0.8], neighbours=[100, 200, 400])
        ],
        "als": [
            (
                f"als f={p['factors']} reg={p['regularization']} alpha={p['alpha']} it={p['iterations']}",
                lambda p=p: ALS(random_state=seed, num_threads=2, **p),
            )
            # a first pass (factors 32-128, regularization 0.01-10, alpha 0.5-10) pointed here
            for p in grid(factors=[32, 64], regularization=[10.0, 20.0, 30.0, 50.0], alpha=[2.0, 4.0, 6.0, 8.0], iterations=[15, 30])
        ],
        "bpr": [
            (
                f"bpr f={p['factors']} lr={p['learning_rate']} reg={p['regularization']} "
                f"it={p['iterations']} popcorr={p['popularity_correction']}",
                lambda p=p: BPR(random_state=seed, **p),
            )
            # Without the popularity correction (popcorr=0) a first pass over factors 32-200,
            # lr 0.001-0.1, reg 0.0001-1, iterations 30-1000 never beat popularity (best 0.18).
            for p in grid(factors=[64, 128], learning_rate=[0.01, 0.05], regularization=[0.001, 0.01],
                          iterations=[100], popularity_correction=[1.0, 2.0, 3.0, 4.0])
        ],
    }


def best(results):
    return max(results, key=lambda r: (round(r.ndcg, 6), r.precision))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--format", default="movielens", choices=["movielens", "csv"])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--split", default="item", choices=["item", "user"])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--only", default="", help="comma-separated families (popularity,ease,item_knn,user_knn,rp3beta,als,bpr,hybrid)")
    args = ap.parse_args(argv)

    data = load_interactions(args.data, args.format)
    # The evaluation's training part only ...
    train = data.subset(stratified_split(data.users, data.items, filter_by=args.split, seed=args.seed))
    # ... split again the same way: fit on 75% of it, validate on the other 25%.
    val = prepare_split(train, filter_by=args.split, seed=args.seed)
    print(f"validation protocol: {len(val.train)} fit / {len(val.test)} validation interactions "
          f"(test split untouched), k={args.k}, seed={args.seed}, split by {args.split}\n")

    families = grids(args.seed)
    only = [f for f in args.only.split(",") if f]
    winners = {}
    for family, candidates in families.items():
        if only and family not in only:
            continue
        t0 = time.perf_counter()
        results = [evaluate_model(name, make(), val, k=args.k) for name, make in candidates]
        results.sort(key=lambda r: (-r.ndcg, -r.precision))
        print(f"== {family} ({len(results)} settings, {time.perf_counter() - t0:.0f} s), best first")
        print(format_table(results[:8], k=args.k), "\n", flush=True)
        winners[family] = (results[0], dict(candidates)[results[0].name])

    if not only or "hybrid" in only:
        # Blends of the tuned EASE with one other tuned model, weights on the same validation split.
        base = winners.get("ease")
        ease_make = base[1] if base else (lambda: EASE())
        partners = {f: w[1] for f, w in winners.items() if f in ("als", "user_knn", "rp3beta")}
        if not partners:
            partners = {"als": lambda: ALS(random_state=args.seed), "user_knn": UserKNN}
        cands = []
        for fam, make in partners.items():
            for w in (0.2, 0.5, 1.0, 2.0, 4.0):
                cands.append((f"hybrid ease+{w}*{fam}", lambda make=make, w=w: Hybrid([(ease_make(), 1.0), (make(), w)])))
        results = [evaluate_model(name, make(), val, k=args.k) for name, make in cands]
        results.sort(key=lambda r: (-r.ndcg, -r.precision))
        print("== hybrid (EASE + one partner), best first")
        print(format_table(results[:10], k=args.k), "\n")
        winners["hybrid"] = (results[0], None)

    print("== winners (validation)")
    print(format_table([w[0] for w in winners.values()], k=args.k))
    for fam, (res, _) in winners.items():
        print(f"{fam}: {res.name}  params={res.params}")


if __name__ == "__main__":
    main()
