#!/usr/bin/env python
"""Predictive models on the CDNOW purchase log: churn AUC, calibration, value-model errors.

    python bench/cdnow_models.py                      # own SQLite file var/bench_cdnow_models.sqlite3
    python bench/cdnow_models.py --database-url postgres://postgres@127.0.0.1:5432/stratum_bench_cdnow
    python bench/cdnow_models.py --activate           # also activate the models and recompute

The database is migrated and CDNOW is imported (import_transactions, idempotent) when it is
not there yet. Everything is as of the end of the data, 1998-06-30. It prints:

1. Churn (logistic regression; label: no purchase in the next 90 days): trained on the features
   of 1998-01-01, tested out of time on those of 1998-04-01: ROC AUC, precision and recall at
   the threshold that maximised F1 on the training period, Brier score, reliability by decile.
2. Value: expected orders and revenue per customer against the naive baseline "the next period
   equals the last period" and BG/NBD + Gamma-Gamma:
   a. 90 days, out of time (regression trained on 1998-01-01 -> 1998-04-01, tested on
      1998-04-01 -> 1998-06-30);
   b. 365 days: too long for out of time on 18 months, so tested on 30% held-out customers at
      1997-06-30 -> 1998-06-30;
   c. the classic Fader-Hardie split: calibration 1997-01-01..1997-09-30, holdout the following
      39 weeks (regression again on 30% held-out customers; BG/NBD and naive need no training labels).
3. Clustering: k by silhouette and the named clusters.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CDNOW = ROOT.parent / "shared" / "data" / "cdnow" / "CDNOW_master.txt"


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", default=f"sqlite:///{ROOT / 'var' / 'bench_cdnow_models.sqlite3'}")
    p.add_argument("--file", default=str(CDNOW), help="CDNOW_master.txt")
    p.add_argument("--activate", action="store_true", help="activate the trained models and run a full recompute")
    return p.parse_args()


def main() -> None:
    args = parse()
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.base")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "2")
    import django

    django.setup()
    import logging

    logging.disable(logging.INFO)
    from django.core.management import call_command

    from accounts.models import Customer, DataImport
    from accounts.services.imports import transactions_import
    from segmentation import services as seg_services
    from segmentation.ml import report
    from segmentation.ml import services as ml

    call_command("migrate", verbosity=0)
    if not DataImport.objects.filter(format="cdnow", status="succeeded").exists():
        t = time.perf_counter()
        record = transactions_import(path=args.file, format="cdnow")
        print(f"Imported CDNOW: {record.customers_created:,} customers, {record.events_created:,} purchases "
              f"in {time.perf_counter() - t:.1f} s")
    as_of = seg_services.default_as_of()
    print(f"Database {args.database_url.split('@')[-1]}: {Customer.objects.count():,} customers; as of {as_of:%Y-%m-%d %H:%M} UTC\n")

    t = time.perf_counter()
    models = ml.models_train(as_of=as_of, bgnbd=True, activate=args.activate)
    print(f"Trained {len(models)} models in {time.perf_counter() - t:.1f} s\n")
    for model in models:
        print(report.model_report(model))
        print()

    # The Fader-Hardie split: calibration to 1997-09-30, holdout the next 39 weeks.
    cutoff = datetime(1997, 9, 30, 23, 59, 59, 999999, tzinfo=UTC)
    plan = ml.Plan("customer_holdout", cutoff, cutoff, timedelta(weeks=39))
    t = time.perf_counter()
    fh, _, _ = ml.value_evaluate(as_of=cutoff + plan.horizon, horizon_days=39 * 7, bgnbd=True, plan=plan)
    print("\n".join(report.value_table(fh, "Fader-Hardie split: calibration 1997-01-01..1997-09-30, holdout 39 weeks")))
    print(f"  ({time.perf_counter() - t:.1f} s)\n")

    if args.activate:
        run = seg_services.recompute_tiers(run=seg_services.recompute_run_create(as_of=as_of))
        print(f"Recompute #{run.pk}: {run.status}, {run.customers:,} customers, {run.changes:,} changes, "
              f"{run.timings.get('features', 0):.2f} s for the features with the models compiled to SQL")


if __name__ == "__main__":
    main()
