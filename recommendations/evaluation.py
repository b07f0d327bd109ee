"""Offline evaluation of recommenders: plain Python, no database.

The protocol and the metrics follow Microsoft Recommenders (recommenders-team/recommenders)
so that our figures can be compared with their published MovieLens benchmark:

- `stratified_split` is their `python_stratified_split`: every row gets a uniform random
  number from `np.random.seed(seed); np.random.rand(n)` (in file order); within each item
  (filter_by="item") or user (filter_by="user") the rows are ordered by that number and row r
  of n goes to train when r / n <= ratio (so an item rated once lands in test).
- Metrics are those of their `python_evaluation` with relevancy_method="top_k" and binary
  relevance; see each function. Training data is implicit feedback (every rating is an
  interaction), every test interaction is relevant, and items a user has in train are never
  recommended to them.

Inputs of the metric functions are plain mappings:
    truth: {user: iterable of relevant items}            (the test interactions)
    recs:  {user: ranked sequence of recommended items}  (best first)
"""
from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from recommendations.algorithms.weighting import IdIndex

# --------------------------------------------------------------------------------------------
# Reading interaction files
# --------------------------------------------------------------------------------------------


class InteractionFileError(ValueError):
    """An interactions file that cannot be read; the message names the line and the problem."""


@dataclass
class Interactions:
    """Raw interaction log: parallel arrays, ids as given in the file (strings)."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    item_features: dict | None = field(default=None)  # item id -> list of tokens (content)
    user_groups: dict | None = field(default=None)  # user id -> group (tier) label

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, mask: np.ndarray) -> "Interactions":
        return Interactions(
            self.users[mask],
            self.items[mask],
            self.ratings[mask],
            self.timestamps[mask],
            self.item_features,
            self.user_groups,
        )


def _parse_row(fields: Sequence[str], lineno: int, path: Path) -> tuple[str, str, float, float]:
    if len(fields) != 4:
        raise InteractionFileError(
            f"{path}, line {lineno}: expected 4 fields (user, item, rating, timestamp), got {len(fields)}"
        )
    user, item, rating, ts = (f.strip() for f in fields)
    if not user or not item:
        raise InteractionFileError(f"{path}, line {lineno}: empty user or item id")
    try:
        r = float(rating)
    except ValueError:
        raise InteractionFileError(f"{path}, line {lineno}: rating {rating!r} is not a number") from None
    try:
        t = float(ts) if ts else 0.0
    except ValueError:
        raise InteractionFileError(f"{path}, line {lineno}: timestamp {ts!r} is not a number (Unix seconds)") from None
    if not (math.isfinite(r) and math.isfinite(t)):
        raise InteractionFileError(f"{path}, line {lineno}: rating and timestamp must be finite numbers")
    return user, item, r, t


def load_interactions(path, fmt: str = "movielens") -> Interactions:
    """Read `movielens` (tab-separated u.data: user, item, rating, timestamp; no header) or
    `csv` (header `user,item,rating,timestamp`, then one interaction per line).

    For MovieLens, the genres in a `u.item` next to the file become the items' content
    features, and gender + age band from a `u.user` the users' groups, when present. Raises InteractionFileError naming the line on bad input.
    """
    path = Path(path)
    if fmt not in ("movielens", "csv"):
        raise InteractionFileError(f"unknown format {fmt!r}: use movielens or csv")
    if not path.is_file():
        raise InteractionFileError(f"{path}: no such file")
    rows = []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            if fmt == "movielens":
                for lineno, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    rows.append(_parse_row(line.rstrip("\r\n").split("\t"), lineno, path))
            else:
                reader = csv.reader(fh)
                header = next(reader, None)
                expected = ["user", "item", "rating", "timestamp"]
                if header is None:
                    raise InteractionFileError(f"{path}: empty file (expected a header line {','.join(expected)})")
                if [h.strip().lower() for h in header] != expected:
                    raise InteractionFileError(
                        f"{path}, line 1: header must be {','.join(expected)}, got {','.join(header)}"
                    )
                for fields in reader:
                    if not fields or all(not f.strip() for f in fields):
                        continue
                    rows.append(_parse_row(fields, reader.line_num, path))
    except UnicodeDecodeError as exc:
        raise InteractionFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not rows:
        raise InteractionFileError(f"{path}: no interactions")
    users, items, ratings, ts = zip(*rows)
    data = Interactions(
        np.array(users, dtype=object),
        np.array(items, dtype=object),
        np.array(ratings, dtype=np.float64),
        np.array(ts, dtype=np.float64),
    )
    if fmt == "movielens":
        data.item_features = _movielens_genres(path.parent)
        data.user_groups = _movielens_groups(path.parent)
    return data


def _movielens_groups(folder: Path) -> dict | None:
    """{user id: 'F:25-34' ...} from MovieLens' u.user, if it is there (a stand-in for tiers)."""
    user_file = folder / "u.user"
    if not user_file.is_file():
        return None
    bands = [(18, "<18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (55, "45-54"), (200, "55+")]
    out = {}
    for line in user_file.read_text(encoding="latin-1").splitlines():
        parts = line.split("|")
        if len(parts) >= 3 and parts[1].isdigit():
            age = int(parts[1])
            out[parts[0]] = f"{parts[2]}:{next(label for top, label in bands if age < top)}"
    return out or None


def _movielens_genres(folder: Path) -> dict | None:
    """{item id: [genre tokens, 'decade:1990s']} from MovieLens' u.item, if it is there."""
    item_file, genre_file = folder / "u.item", folder / "u.genre"
    if not (item_file.is_file() and genre_file.is_file()):
        return None
    genres = [line.split("|")[0] for line in genre_file.read_text(encoding="latin-1").splitlines() if line.strip()]
    out = {}
    for line in item_file.read_text(encoding="latin-1").splitlines():
        parts = line.split("|")
        if len(parts) < 5 + len(genres):
            continue
        flags = parts[-len(genres) :]
        tokens = [f"genre:{g}" for g, f in zip(genres, flags) if f == "1"]
        year = parts[2][-4:]
        if year.isdigit():
            tokens.append(f"decade:{year[:3]}0s")
        out[parts[0]] = tokens
    return out


# --------------------------------------------------------------------------------------------
# Split
# --------------------------------------------------------------------------------------------


def stratified_split(users, items, ratio: float = 0.75, filter_by: str = "item", seed: int = 42) -> np.ndarray:
    """Boolean train mask: Microsoft Recommenders' python_stratified_split (min_rating=1).

    Row order matters (the random numbers are drawn in that order), exactly as in theirs.
    The test set is `~mask`.
    """
    if filter_by not in ("user", "item"):
        raise ValueError("filter_by should be either 'user' or 'item'")
    if not 0 < ratio < 1:
        raise ValueError("ratio must be between 0 and 1")
    key = np.asarray(users if filter_by == "user" else items)
    n = len(key)
    np.random.seed(seed)  # their exact draw: the legacy global generator
    rand = np.random.rand(n)
    _, codes = np.unique(key, return_inverse=True)
    order = np.lexsort((rand, codes))
    sorted_codes = codes[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_codes)) + 1]
    counts = np.diff(np.r_[starts, n])
    group_start = np.repeat(starts, counts)
    group_count = np.repeat(counts, counts)
    rank = (np.arange(n) - group_start + 1) / group_count
    mask = np.empty(n, dtype=bool)
    mask[order] = rank <= ratio
    return mask


# --------------------------------------------------------------------------------------------
# Metrics (Microsoft Recommenders' python_evaluation, relevancy_method="top_k", binary relevance)
# --------------------------------------------------------------------------------------------


def _common(truth: Mapping, recs: Mapping, k: int):
    """Users with both truth and recommendations: (user, top-k list, relevant set)."""
    out = []
    for user, ranked in recs.items():
        if user in truth:
            rel = set(truth[user])
            if rel:
                out.append((user, list(ranked)[:k], rel))
    return out


def _hits(ranked: Sequence, rel: set) -> list[int]:
    """1-based ranks of the hits in a top-k list."""
    return [pos for pos, item in enumerate(ranked, start=1) if item in rel]


def precision_at_k(truth: Mapping, recs: Mapping, k: int = 10) -> float:
    """Sum over common users of hits@k / k, divided by the number of common users.

    As in theirs (and Spark), the denominator is k even when fewer than k items were
    recommended to a user.
    """
    rows = _common(truth, recs, k)
    if not rows:
        return 0.0
    return sum(len(_hits(r, rel)) / k for _, r, rel in rows) / len(rows)


def recall_at_k(truth: Mapping, recs: Mapping, k: int = 10) -> float:
    """Sum over common users of hits@k / |user's test items|, divided by the number of common users."""
    rows = _common(truth, recs, k)
    if not rows:
        return 0.0
    return sum(len(_hits(r, rel)) / len(rel) for _, r, rel in rows) / len(rows)


def ndcg_at_k(truth: Mapping, recs: Mapping, k: int = 10) -> float:
    """Binary-relevance nDCG@k, as their ndcg_at_k (score_type="binary"):

    DCG = sum over hits of 1 / log(1 + rank); ideal DCG = sum_{i=1..min(k, |test items|)} 1 / log(1 + i)
    (the log base cancels). Their final outer merge with the whole truth table means the mean
    runs over EVERY user with test items: one without recommendations counts 0 (unlike
    precision/recall/MAP, which average over users having both). Zero hits overall -> 0.
    """
    rows = _common(truth, recs, k)
    if not any(_hits(r, rel) for _, r, rel in rows):
        return 0.0
    by_user = {u: (r, rel) for u, r, rel in rows}
    total, n = 0.0, 0
    for user, items in truth.items():
        rel = set(items)
        if not rel:
            continue
        n += 1
        if user not in by_user:
            continue
        ranked, _ = by_user[user]
        dcg = sum(1.0 / math.log(1 + p) for p in _hits(ranked, rel))
        idcg = sum(1.0 / math.log(1 + i) for i in range(1, min(k, len(rel)) + 1))
        total += dcg / idcg
    return total / n if n else 0.0


def mean_average_precision(truth: Mapping, recs: Mapping, k: int = 10) -> float:
    """Their `map` (named map_at_k in releases before 1.2): per common user, the sum of
    precision at each hit's rank within the top k, divided by the number of the user's test
    items; averaged over common users."""
    rows = _common(truth, recs, k)
    total = 0.0
    for _, ranked, rel in rows:
        hits = _hits(ranked, rel)
        total += sum(n / p for n, p in enumerate(hits, start=1)) / len(rel)
    return total / len(rows) if rows else 0.0


def map_at_k(truth: Mapping, recs: Mapping, k: int = 10) -> float:
    """Their newer `map_at_k`: as `mean_average_precision` but divided by min(|test items|, k)."""
    rows = _common(truth, recs, k)
    total = 0.0
    for _, ranked, rel in rows:
        hits = _hits(ranked, rel)
        total += sum(n / p for n, p in enumerate(hits, start=1)) / min(len(rel), k)
    return total / len(rows) if rows else 0.0


def catalog_coverage(recs: Mapping, catalogue: Iterable, k: int | None = None) -> float:
    """Distinct recommended items / distinct items in the catalogue (their catalog_coverage,
    the catalogue being the training items)."""
    catalogue = set(catalogue)
    if not catalogue:
        return 0.0
    shown = set()
    for ranked in recs.values():
        shown.update(list(ranked)[:k] if k else ranked)
    return len(shown & catalogue) / len(catalogue)


# --------------------------------------------------------------------------------------------
# Running an evaluation
# --------------------------------------------------------------------------------------------


def build_matrix(data: Interactions, users: IdIndex, items: IdIndex, binary: bool = True) -> sp.csr_matrix:
    """users x items matrix of the interactions (1 each when binary, else the rating)."""
    vals = np.ones(len(data), dtype=np.float32) if binary else data.ratings.astype(np.float32)
    X = sp.csr_matrix(
        (vals, (users.encode(data.users), items.encode(data.items))), shape=(len(users), len(items)), dtype=np.float32
    )
    X.sum_duplicates()
    if binary:
        X.data[:] = 1.0
    return X


def timestamp_matrix(data: Interactions, users: IdIndex, items: IdIndex) -> sp.csr_matrix:
    """users x items matrix holding each pair's latest timestamp."""
    T = sp.coo_matrix(
        (data.timestamps, (users.encode(data.users), items.encode(data.items))), shape=(len(users), len(items))
    ).tocsr()
    T.sum_duplicates()  # duplicate pairs are rare; keep a sum -> replace by the max below
    if T.nnz and len(data) != T.nnz:
        M = {}
        for u, i, t in zip(users.encode(data.users), items.encode(data.items), data.timestamps):
            M[(u, i)] = max(t, M.get((u, i), -np.inf))
        r, c = zip(*M)
        T = sp.csr_matrix((list(M.values()), (r, c)), shape=T.shape)
    T.sort_indices()
    return T


def content_matrix(item_features: Mapping | None, items: IdIndex):
    """One token list per training item (empty when unknown), or None without features."""
    if not item_features:
        return None
    return [list(item_features.get(i, [])) for i in items.ids]


@dataclass
class EvalResult:
    name: str
    params: dict
    precision: float
    recall: float
    ndcg: float
    map: float
    coverage: float
    train_seconds: float
    recommend_ms_per_user: float
    n_users: int
    k: int

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "params": self.params,
            "k": self.k,
            "precision_at_k": self.precision,
            "recall_at_k": self.recall,
            "ndcg_at_k": self.ndcg,
            "map": self.map,
            "catalog_coverage": self.coverage,
            "train_seconds": self.train_seconds,
            "recommend_ms_per_user": self.recommend_ms_per_user,
            "n_users": self.n_users,
        }


@dataclass
class Split:
    train: Interactions
    test: Interactions
    users: IdIndex
    items: IdIndex
    X: sp.csr_matrix
    timestamps: sp.csr_matrix
    truth: dict
    item_features: list | None
    user_groups: list | None = None


def prepare_split(data: Interactions, ratio=0.75, filter_by="item", seed=42) -> Split:
    mask = stratified_split(data.users, data.items, ratio=ratio, filter_by=filter_by, seed=seed)
    train, test = data.subset(mask), data.subset(~mask)
    users, items = IdIndex(train.users), IdIndex(train.items)
    truth: dict = {}
    for u, i in zip(test.users, test.items):
        truth.setdefault(u, set()).add(i)
    return Split(
        train, test, users, items, build_matrix(train, users, items), timestamp_matrix(train, users, items), truth,
        content_matrix(data.item_features, items),
        [data.user_groups.get(u) for u in users.ids] if data.user_groups else None,
    )


def evaluate_model(name: str, model, split: Split, k: int = 10) -> EvalResult:
    """Fit on the training matrix, recommend k unseen items to every test user known in
    training, score against the test interactions."""
    side = {"timestamps": split.timestamps}
    if split.item_features is not None:
        side["item_features"] = split.item_features
    if split.user_groups is not None:
        side["user_groups"] = split.user_groups
    t0 = time.perf_counter()
    model.fit(split.X, **side)
    train_s = time.perf_counter() - t0
    test_users = [u for u in split.truth if u in split.users.index]
    rows = split.users.encode(test_users)
    t0 = time.perf_counter()
    idx, _ = model.recommend(rows, k=k, exclude_seen=True)
    rec_s = time.perf_counter() - t0
    ids = split.items.ids
    recs = {u: [ids[j] for j in row if j >= 0] for u, row in zip(test_users, idx)}
    return EvalResult(
        name=name,
        params=model.get_params(),
        precision=precision_at_k(split.truth, recs, k),
        recall=recall_at_k(split.truth, recs, k),
        ndcg=ndcg_at_k(split.truth, recs, k),
        map=mean_average_precision(split.truth, recs, k),
        coverage=catalog_coverage(recs, split.items.ids),
        train_seconds=train_s,
        recommend_ms_per_user=1000.0 * rec_s / max(len(test_users), 1),
        n_users=len(test_users),
        k=k,
    )


def default_algorithms(seed: int = 42, threads: int = 2, content: bool = True) -> list[tuple[str, Callable]]:
    """(name, factory) for every algorithm with its tuned defaults."""
    from recommendations.algorithms import registry

    return registry(seed=seed, threads=threads, content=content)


def evaluate_all(
    data: Interactions,
    k: int = 10,
    seed: int = 42,
    split: str = "item",
    algorithms: list[tuple[str, Callable]] | None = None,
    threads: int = 2,
    on_result: Callable[[EvalResult], None] | None = None,
) -> list[EvalResult]:
    """Evaluate every algorithm on one stratified split of `data`."""
    sp_ = prepare_split(data, filter_by=split, seed=seed)
    algos = algorithms or default_algorithms(seed=seed, threads=threads, content=sp_.item_features is not None)
    results = []
    for name, factory in algos:
        res = evaluate_model(name, factory(), sp_, k=k)
        results.append(res)
        if on_result:
            on_result(res)
    return results


TABLE_HEADER = ("algorithm", "P@{k}", "R@{k}", "nDCG@{k}", "MAP", "coverage", "train s", "rec ms/user")


def format_table(results: Sequence[EvalResult], k: int = 10) -> str:
    head = [h.format(k=k) for h in TABLE_HEADER]
    rows = [
        [
            r.name,
            f"{r.precision:.4f}",
            f"{r.recall:.4f}",
            f"{r.ndcg:.4f}",
            f"{r.map:.4f}",
            f"{r.coverage:.3f}",
            f"{r.train_seconds:.2f}",
            f"{r.recommend_ms_per_user:.3f}",
        ]
        for r in results
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])
