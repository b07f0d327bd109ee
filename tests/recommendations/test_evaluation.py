"""Reading interaction files, the evaluation run and the evaluate_recommenders command."""
from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from recommendations.algorithms import EASE, Popularity
from recommendations.evaluation import (
    InteractionFileError,
    evaluate_all,
    format_table,
    load_interactions,
    prepare_split,
)


def synthetic_csv(path, n_users=40, n_items=15, seed=0):
    """Two taste communities with a popular item each."""
    rng = np.random.default_rng(seed)
    lines = ["user,item,rating,timestamp"]
    for u in range(n_users):
        items = range(0, 8) if u % 2 == 0 else range(7, 15)
        for i in items:
            if rng.random() < 0.6:
                lines.append(f"u{u},i{i},{rng.integers(1, 6)},{880000000 + rng.integers(0, 10**6)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_load_csv_and_movielens(tmp_path):
    csv_file = tmp_path / "log.csv"
    csv_file.write_text("user,item,rating,timestamp\nu1,a,5,100\nu2,b,3,\n")
    data = load_interactions(csv_file, "csv")
    assert data.users.tolist() == ["u1", "u2"] and data.ratings.tolist() == [5.0, 3.0]
    assert data.timestamps.tolist() == [100.0, 0.0]
    ml = tmp_path / "u.data"
    ml.write_text("1\t10\t4\t881250949\n2\t10\t1\t881250950\n")
    data = load_interactions(ml, "movielens")
    assert data.items.tolist() == ["10", "10"] and data.item_features is None


@pytest.mark.parametrize(
    "fmt,content,message",
    [
        ("csv", "user,item,score,timestamp\nu,a,1,1\n", "line 1: header must be user,item,rating,timestamp"),
        ("csv", "user,item,rating,timestamp\nu,a,1,1\nu,b,x,1\n", "line 3: rating 'x' is not a number"),
        ("csv", "user,item,rating,timestamp\nu,a,1\n", "line 2: expected 4 fields"),
        ("csv", "user,item,rating,timestamp\n", "no interactions"),
        ("csv", "", "empty file"),
        ("movielens", "1\t2\t3\t4\n1\t2\t3\tyesterday\n", "line 2: timestamp 'yesterday' is not a number"),
        ("movielens", "1,2,3,4\n", "line 1: expected 4 fields"),
        ("movielens", "1\t\t3\t4\n", "line 1: empty user or item id"),
    ],
)
def test_bad_files_name_the_line(tmp_path, fmt, content, message):
    f = tmp_path / "bad.txt"
    f.write_text(content)
    with pytest.raises(InteractionFileError, match=message):
        load_interactions(f, fmt)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(InteractionFileError, match="no such file"):
        load_interactions(tmp_path / "nope.csv", "csv")
    f = tmp_path / "bin.csv"
    f.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InteractionFileError, match="not UTF-8"):
        load_interactions(f, "csv")


def test_evaluation_never_recommends_train_items_and_scores_sensibly(tmp_path):
    data = load_interactions(synthetic_csv(tmp_path / "s.csv"), "csv")
    split = prepare_split(data, seed=1)
    # train and test are disjoint pairs
    train_pairs = set(zip(split.train.users, split.train.items))
    assert not train_pairs & set(zip(split.test.users, split.test.items))
    results = evaluate_all(data, k=5, seed=1, algorithms=[("popularity", Popularity), ("ease", lambda: EASE(l2=10))])
    by_name = {r.name: r for r in results}
    assert by_name["ease"].ndcg > by_name["popularity"].ndcg  # communities beat global popularity
    for r in results:
        assert 0 <= r.precision <= 1 and 0 <= r.ndcg <= 1 and 0 < r.coverage <= 1
    assert "nDCG@5" in format_table(results, k=5)


def test_command_prints_every_algorithm_and_writes_json(tmp_path, capsys):
    src = synthetic_csv(tmp_path / "s.csv")
    out = tmp_path / "out.json"
    call_command("evaluate_recommenders", interactions=str(src), format="csv", k=5, seed=3, json_out=str(out))
    printed = capsys.readouterr().out
    rows = json.loads(out.read_text())
    names = [r["name"] for r in rows]
    assert names[:3] == ["popularity", "popularity_trending", "popularity_by_group"]
    assert {"item_knn", "user_knn", "als", "bpr", "ease", "hybrid", "rp3beta"} <= set(names)
    for r in rows:
        assert set(r) >= {"precision_at_k", "recall_at_k", "ndcg_at_k", "map", "catalog_coverage", "train_seconds",
                          "recommend_ms_per_user"}
        assert r["name"] in printed
    assert "P@5" in printed and "wrote" in printed


def test_command_bad_input_is_a_command_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,rating,timestamp\nu,a,1,1\nu,b,oops,1\n")
    with pytest.raises(CommandError, match="line 3"):
        call_command("evaluate_recommenders", interactions=str(bad), format="csv")
    with pytest.raises(CommandError, match="no such file"):
        call_command("evaluate_recommenders", interactions=str(tmp_path / "missing"), format="movielens")
    src = synthetic_csv(tmp_path / "s.csv")
    with pytest.raises(CommandError, match="unknown algorithm"):
        call_command("evaluate_recommenders", interactions=str(src), format="csv", only="nope")
