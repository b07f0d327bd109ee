#!/usr/bin/env python
"""Recompute benchmark: full and incremental tier recompute over 1M customers, 10M events.

    python bench/recompute.py                 # create, fill and migrate stratum_bench_recompute, then time
    python bench/recompute.py --reuse         # keep the data of an earlier run (no regeneration)
    python bench/recompute.py --drop          # drop the benchmark database and exit

The database (default ``stratum_bench_recompute`` on postgres@127.0.0.1:5432; --server to
change) is created and migrated by the script. Data is generated inside PostgreSQL with
generate_series (no ORM, no round trips): per-customer activity is lognormal (most
customers have a handful of events, a few have hundreds), each customer is active over
their own span within the last ~2 years (so recency spreads over new/active/silent/churned),
about 10% of events are purchases with lognormal amounts, and events are stored in time
order as an ingest would store them (which the BRIN index on occurred_at relies on).

Timed in the same run, side by side:
  (a) baseline: the bare per-customer aggregation with NTILE scores, as a SELECT (same work_mem
      as the engine), with PostgreSQL's default JIT and without; the faster is the figure the
      issue compares against;
  (b) full recompute through services.recompute_tiers (features, every built-in dimension,
      memberships, changes, snapshot): "cold" (nothing computed yet) and "steady" (the next
      day's run over existing memberships; what the nightly schedule does);
  (c) incremental recompute 15 minutes later, after 10,000 new events.
It prints each figure, the ratio full / baseline and the per-stage timings.
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

# The data ends here (fixed, so repeated runs over --reuse data are comparable).
DATA_END = datetime(2026, 11, 1, tzinfo=UTC)
SPAN_DAYS = 730


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server URL (no database)")
    p.add_argument("--db", default="stratum_bench_recompute")
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--new-events", type=int, default=10_000)
    p.add_argument("--reuse", action="store_true", help="keep the existing data if the database is filled")
    p.add_argument("--skip-cold", action="store_true", help="do not time the cold (first) full recompute")
    p.add_argument("--drop", action="store_true", help="drop the benchmark database and exit")
    return p.parse_args()


def admin_connection(server: str):
    import psycopg2

    conn = psycopg2.connect(f"{server}/postgres")
    conn.autocommit = True
    return conn


def ensure_database(args) -> bool:
    """Create the database if needed; returns whether it already existed."""
    conn = admin_connection(args.server)
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [args.db])
        exists = cur.fetchone() is not None
        if exists and not args.reuse:
            cur.execute(f'DROP DATABASE "{args.db}"')
            exists = False
        if not exists:
            cur.execute(f'CREATE DATABASE "{args.db}"')
    conn.close()
    return exists


def drop_database(args) -> None:
    conn = admin_connection(args.server)
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{args.db}"')
    conn.close()
    print(f"dropped {args.db}")


def step(label: str):
    class _T:
        def __enter__(self):
            self.t = time.perf_counter()
            print(f"  {label} ...", end="", flush=True)
            return self

        def __exit__(self, *exc):
            self.elapsed = time.perf_counter() - self.t
            print(f" {self.elapsed:.1f} s", flush=True)

    return _T()


def generate(cur, *, customers: int, events: int) -> None:
    """Fill customers and events with set-based SQL inside the server."""
    end = DATA_END.isoformat()
    cur.execute("SET work_mem = '512MB'")
    cur.execute("SET maintenance_work_mem = '1GB'")
    cur.execute("SET synchronous_commit = off")
    with step(f"{customers:,} customers"):
        # Each customer lives from `born` (uniform over the 2 years) to `dies` (some time after,
        # skewed towards the end so that a fair share is still active), with a lognormal
        # activity level (mean ~events/customers, heavy right tail).
        cur.execute("DROP TABLE IF EXISTS bench_life")
        cur.execute(f"""
            CREATE UNLOGGED TABLE bench_life AS
            SELECT id, born, born + (TIMESTAMPTZ '{end}' - born) * sqrt(random()) AS dies,
                   weight
              FROM (SELECT g AS id,
                           TIMESTAMPTZ '{end}' - random() * INTERVAL '{SPAN_DAYS} days' AS born,
                           exp(1.2 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS weight
                      FROM generate_series(1, %s) g) x""", [customers])
        cur.execute(f"""
            INSERT INTO accounts_customer (id, created_at, updated_at, external_id, email, name, phone, attributes,
                   signup_at, first_seen_at, last_seen_at, source_platform, marketing_consent, consent_source)
            SELECT id, born, born, 'c' || id, 'c' || id || '@example.com', 'Customer ' || id, '',
                   jsonb_build_object('city', (ARRAY['Berlin','Paris','Madrid','Rome','Vienna'])[1 + id % 5]),
                   CASE WHEN id % 4 = 0 THEN NULL ELSE born END, born, dies, 'web', id % 3 = 0, ''
              FROM bench_life""")
        cur.execute("SELECT setval(pg_get_serial_sequence('accounts_customer', 'id'), %s)", [customers])
    with step(f"{events:,} events (lognormal per customer, in time order)"):
        # Drop the indexes and foreign keys while loading (a deferred FK queues one check per
        # row); building them afterwards is several times faster.
        cur.execute("""SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
                        WHERE conrelid = 'accounts_event'::regclass AND contype IN ('u', 'f')""")
        constraints = cur.fetchall()
        for name, _ in constraints:
            cur.execute(f"ALTER TABLE accounts_event DROP CONSTRAINT {name}")
        cur.execute("""SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'accounts_event'
                       AND indexname <> 'accounts_event_pkey'""")
        indexes = cur.fetchall()
        for name, _ in indexes:
            cur.execute(f"DROP INDEX {name}")
        cur.execute("SELECT SUM(weight) FROM bench_life")
        scale = events / float(cur.fetchone()[0])
        # Per customer round(weight * scale) events (randomised rounding), at uniform times in
        # their life; 10% purchases with lognormal amounts (median ~30).
        cur.execute(f"""
            INSERT INTO accounts_event (event_id, type, amount, quantity, platform, occurred_at, received_at,
                                        properties, customer_id)
            SELECT 'e' || row_number() OVER (), type,
                   CASE WHEN type = 'purchase' THEN round(CAST(exp(3.4 + 0.8 * sqrt(-2 * ln(1 - random()))
                                                         * cos(2 * pi() * random())) AS numeric), 2) END,
                   CASE WHEN type = 'purchase' THEN 1 END, 'web', at, at, '{{}}'::jsonb, id
              FROM (SELECT id, at,
                           CASE WHEN r < 0.10 THEN 'purchase' WHEN r < 0.55 THEN 'view' WHEN r < 0.70 THEN 'click'
                                WHEN r < 0.82 THEN 'add_to_cart' WHEN r < 0.92 THEN 'search' ELSE 'login' END AS type
                      FROM (SELECT l.id, l.born + (l.dies - l.born) * random() AS at, random() AS r
                              FROM bench_life l
                              CROSS JOIN LATERAL generate_series(1, floor(l.weight * %s + random())::int) g) x) e
             ORDER BY at""", [scale])
        print(f" ({cur.rowcount:,} rows)", end="")
    with step("indexes and constraints on events"):
        for _, definition in indexes:
            cur.execute(definition)
        for name, definition in constraints:
            cur.execute(f"ALTER TABLE accounts_event ADD CONSTRAINT {name} {definition}")
    with step("customers' first/last seen from their events; VACUUM ANALYZE"):
        cur.execute("""UPDATE accounts_customer c SET first_seen_at = e.f, last_seen_at = e.l,
                              signup_at = CASE WHEN c.signup_at IS NULL THEN NULL ELSE LEAST(c.signup_at, e.f) END
                         FROM (SELECT customer_id, MIN(occurred_at) f, MAX(occurred_at) l FROM accounts_event
                                GROUP BY customer_id) e WHERE e.customer_id = c.id""")
        cur.execute("DROP TABLE bench_life")
        cur.execute("CREATE TABLE bench_meta (filled_at timestamptz, base_max_event_id bigint)")
        cur.execute("INSERT INTO bench_meta SELECT now(), MAX(id) FROM accounts_event")
        cur.execute("VACUUM ANALYZE accounts_customer")
        cur.execute("VACUUM ANALYZE accounts_event")


def baseline_sql(work_mem: str, *, jit: bool = True) -> list[str]:
    """The bare per-customer aggregation with NTILE scores (the issue's reference SELECT)."""
    return [f"SET work_mem = '{work_mem}'", f"SET jit = {'on' if jit else 'off'}", """
        SELECT COUNT(*), SUM(r), SUM(f), SUM(m) FROM (
          SELECT customer_id, COUNT(*) AS events, COUNT(*) FILTER (WHERE type = 'purchase') AS orders,
                 SUM(amount) FILTER (WHERE type = 'purchase') AS revenue, MAX(occurred_at) AS last_at,
                 NTILE(5) OVER (ORDER BY MAX(occurred_at)) AS r,
                 NTILE(5) OVER (ORDER BY COUNT(*) FILTER (WHERE type = 'purchase')) AS f,
                 NTILE(5) OVER (ORDER BY SUM(amount) FILTER (WHERE type = 'purchase')) AS m
            FROM accounts_event
           GROUP BY customer_id) x"""]


def main() -> None:
    args = parse()
    if args.drop:
        drop_database(args)
        return
    existed = ensure_database(args)
    os.environ["DATABASE_URL"] = f"{args.server}/{args.db}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.base")
    os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    print(f"database {args.db} ({'reused' if existed else 'new'})")
    with step("migrate"):
        call_command("migrate", verbosity=0)
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass('bench_meta') IS NOT NULL")
        filled = cur.fetchone()[0]
        if not filled:
            print("generating data")
            generate(cur, customers=args.customers, events=args.events)
        cur.execute("SELECT base_max_event_id FROM bench_meta")
        base_max = cur.fetchone()[0]
        # Leftovers of an earlier run's incremental step, and its results.
        cur.execute("DELETE FROM accounts_event WHERE id > %s", [base_max])
        cur.execute("SELECT COUNT(*) FROM accounts_customer")
        n_customers = cur.fetchone()[0]
        cur.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'accounts_event'")
        n_events = cur.fetchone()[0]
    print(f"{n_customers:,} customers, ~{n_events:,} events; PostgreSQL work_mem for the run: {settings.SEGMENTATION_WORK_MEM}")

    run_bench(args, base_max)


def timed_select(statements: list[str]) -> float:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cur:
        t = time.perf_counter()
        for sql in statements:
            cur.execute(sql)
        cur.fetchall()
        elapsed = time.perf_counter() - t
        cur.execute("RESET work_mem")
        cur.execute("RESET jit")
    return elapsed


def run_recompute(*, as_of: datetime, mode: str):
    from segmentation import services

    run = services.recompute_run_create(as_of=as_of, mode=mode)
    t = time.perf_counter()
    run = services.recompute_tiers(run=run)
    elapsed = time.perf_counter() - t
    if run.status != "succeeded":
        raise SystemExit(f"recompute {mode} ended {run.status}: {run.error}")
    return run, elapsed


def print_run(label: str, run, elapsed: float) -> None:
    timings = {k: v for k, v in run.timings.items() if k != "changes_by_dimension"}
    print(f"{label}: {elapsed:.2f} s  ({run.customers:,} customers, {run.changes:,} changes "
          f"{run.timings.get('changes_by_dimension', {})})")
    print("    stages: " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))


def run_bench(args, base_max: int) -> None:
    from django.conf import settings
    from django.db import connection

    from segmentation.models import CustomerFeatures, Membership, RecomputeRun, TierChange, TierSnapshot

    as_of = DATA_END
    # Warm the cache the same way for everyone: one untimed pass over the events.
    with step("warm-up scan of the events"):
        timed_select(["SELECT COUNT(*), MAX(occurred_at) FROM accounts_event"])

    # The engine runs without JIT (see engine.sql._session_tuning); the baseline is timed both ways
    # and the ratio taken against the faster, so the engine's setting is not an advantage.
    with_jit = timed_select(baseline_sql(settings.SEGMENTATION_WORK_MEM, jit=True))
    without_jit = timed_select(baseline_sql(settings.SEGMENTATION_WORK_MEM, jit=False))
    baseline = min(with_jit, without_jit)
    print(f"(a) baseline SELECT (aggregation + NTILE, work_mem={settings.SEGMENTATION_WORK_MEM}): {baseline:.2f} s "
          f"(JIT on {with_jit:.2f} s, JIT off {without_jit:.2f} s)")

    results = {}
    if not args.skip_cold:
        with connection.cursor() as cur:
            for model in (TierChange, Membership, CustomerFeatures, TierSnapshot, RecomputeRun):
                cur.execute(f"TRUNCATE {model._meta.db_table} CASCADE")
        run, elapsed = run_recompute(as_of=as_of, mode="full")
        print_run("(b1) full recompute, cold (every membership new)", run, elapsed)
        results["cold"] = elapsed
    # Steady state: the next day's nightly run over existing memberships.
    steady_as_of = as_of + timedelta(days=1)
    last = RecomputeRun.objects.filter(status="succeeded").order_by("-id").first()
    if last is None or last.as_of != as_of:  # tiers as of the data's end first (untimed)
        run_recompute(as_of=as_of, mode="full")
    run, elapsed = run_recompute(as_of=steady_as_of, mode="full")
    print_run("(b2) full recompute, steady (next day)", run, elapsed)
    results["steady"] = elapsed

    # (c) 10,000 new events for random customers, then an incremental run 15 minutes later.
    inc_as_of = steady_as_of + timedelta(minutes=15)
    with connection.cursor() as cur:
        cur.execute("""
            INSERT INTO accounts_event (event_id, type, amount, quantity, platform, occurred_at, received_at, properties,
                                        customer_id)
            SELECT 'inc' || %(base)s || '-' || g, CASE WHEN mod(g, 10) = 0 THEN 'purchase' ELSE 'view' END,
                   CASE WHEN mod(g, 10) = 0 THEN 42.50 END, NULL, 'web',
                   %(t)s - random() * INTERVAL '14 minutes', %(t)s, '{}'::jsonb,
                   1 + floor(random() * (SELECT MAX(id) FROM accounts_customer))::bigint
              FROM generate_series(1, %(n)s) g""", {"base": base_max, "t": inc_as_of, "n": args.new_events})
    run, elapsed = run_recompute(as_of=inc_as_of, mode="incremental")
    print_run(f"(c) incremental recompute after {args.new_events:,} new events", run, elapsed)
    results["incremental"] = elapsed

    print()
    print("summary")
    print(f"  baseline SELECT        {baseline:8.2f} s")
    if "cold" in results:
        print(f"  full, cold             {results['cold']:8.2f} s   ratio {results['cold'] / baseline:.2f}x")
    print(f"  full, steady           {results['steady']:8.2f} s   ratio {results['steady'] / baseline:.2f}x"
          f"   (target <= 2x and < 60 s)")
    print(f"  incremental            {results['incremental']:8.2f} s   (target < 5 s)")


if __name__ == "__main__":
    main()
