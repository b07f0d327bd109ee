"""Offline evaluation of every recommender on an interactions file (no database access).

    python manage.py evaluate_recommenders --interactions ../shared/data/movielens-100k/u.data \
        --format movielens --k 10 --seed 42 --split item --json results.json

The protocol and metrics live in recommendations/evaluation.py.
"""
from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from recommendations import evaluation


class Command(BaseCommand):
    help = (
        "Evaluate every recommendation algorithm on an interactions file (MovieLens u.data or CSV "
        "user,item,rating,timestamp): stratified 75/25 split, Precision/Recall/nDCG@k, MAP, coverage, timings."
    )
    requires_system_checks: list = []  # reads a file, never the application database

    def add_arguments(self, parser):
        parser.add_argument("--interactions", required=True, help="the interactions file")
        parser.add_argument("--format", default="movielens", choices=["movielens", "csv"])
        parser.add_argument("--k", type=int, default=10, help="length of each recommendation list (default 10)")
        parser.add_argument("--seed", type=int, default=42, help="random seed of the split and the models (default 42)")
        parser.add_argument("--split", default="item", choices=["item", "user"], help="stratify per item (default) or per user")
        parser.add_argument("--json", dest="json_out", help="write the results to this JSON file")
        parser.add_argument("--only", default="", help="comma-separated algorithm names (default: all)")
        parser.add_argument("--threads", type=int, default=2, help="threads for ALS (default 2)")

    def handle(self, *args, **opts):
        k = opts["k"]
        if k < 1:
            raise CommandError("--k must be at least 1")
        try:
            data = evaluation.load_interactions(opts["interactions"], opts["format"])
        except evaluation.InteractionFileError as exc:
            raise CommandError(str(exc)) from None
        algos = evaluation.default_algorithms(
            seed=opts["seed"], threads=opts["threads"], content=data.item_features is not None
        )
        if opts["only"]:
            wanted = [n.strip() for n in opts["only"].split(",") if n.strip()]
            unknown = sorted(set(wanted) - {n for n, _ in algos})
            if unknown:
                raise CommandError(f"unknown algorithm(s): {', '.join(unknown)}; known: {', '.join(n for n, _ in algos)}")
            algos = [(n, f) for n, f in algos if n in wanted]
        self.stdout.write(
            f"{len(data)} interactions, {len(set(data.users))} users, {len(set(data.items))} items; "
            f"split per {opts['split']} 75/25, seed {opts['seed']}, k={k}"
        )
        try:
            results = evaluation.evaluate_all(
                data, k=k, seed=opts["seed"], split=opts["split"], algorithms=algos, threads=opts["threads"]
            )
        except ValueError as exc:
            raise CommandError(f"cannot evaluate this data: {exc}") from None
        self.stdout.write(evaluation.format_table(results, k=k))
        if opts["json_out"]:
            out = Path(opts["json_out"])
            try:
                out.write_text(json.dumps([r.as_dict() for r in results], indent=2, default=str) + "\n")
            except OSError as exc:
                raise CommandError(f"cannot write {out}: {exc}") from None
            self.stdout.write(f"wrote {out}")
