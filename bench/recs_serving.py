#!/usr/bin/env python
"""Serving benchmark of recommendations: GET /api/v1/customers/{id}/recommendations/ against a
trivial authenticated DRF endpoint (GET /api/v1/ping/) on the same gunicorn, in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/stratum_recs_bench \
    REDIS_URL=redis://127.0.0.1:6379/11 .venv/bin/python bench/recs_serving.py

What it does:
1. Migrates the database (created if missing; it must be a dedicated one: the shop tables are
   TRUNCATEd) and fills it with COPY: --items items in 25 categories, --customers customers with
   --events events each (views, carts, purchases; each customer has two favourite categories,
   popularity within a category is skewed), tiers on the "value" dimension and one tier rule.
   --reuse keeps data from a previous run of the same size.
2. Trains the model (--algorithm, default EASE; holdout of the last 7 days) and activates it.
3. Starts gunicorn (--workers workers of --worker-class, persistent database connections) and measures with
   wrk (a Python client when wrk is missing) for --duration seconds each:
   - ping: the trivial endpoint;
   - recs (ready lists): a random customer of all --customers, after a refresh of every
     customer's ready list (recommendations/ready.py, what workers keep up to date in
     production; its time is printed too, and the time to re-make 20,000 customers' lists
     from the pending set, as the worker does after their events) — how a storefront is
     served; then, with a real Celery worker, the time from an event's ingest to the
     customer's list being ready again;
   - recs (ranked on request): a random customer of all --customers with the cache emptied
     first, so nearly every request ranks from scratch (one query, numpy over every item, a
     cache write): a customer whose events arrived a moment ago, before a worker re-made
     their list.
   Latency (p50, p99) at 8 concurrent clients; throughput at 32.
Prints every figure and the throughput ratio recs / ping. Stops the server it started.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CATEGORIES = [f"Category {c:02d}" for c in range(25)]
TYPES = np.array(["view", "add_to_cart", "purchase"])
TYPE_P = [0.72, 0.14, 0.14]
TARGET_P50_MS, TARGET_P99_MS, TARGET_RATIO = 10.0, 50.0, 0.5
POOL = 2000
READY, RANKED = "recs (ready lists)", "recs (ranked on request)"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=10_000)
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--events", type=int, default=20, help="events per customer")
    p.add_argument("--algorithm", default="ease")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--worker-class", default="sync", choices=["sync", "gthread"],
                   help="gunicorn worker class (gthread keeps connections alive)")
    p.add_argument("--threads", type=int, default=2, help="threads per gthread worker")
    p.add_argument("--duration", type=int, default=15, help="seconds per measurement")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--reuse", action="store_true", help="keep data of the same size from an earlier run")
    p.add_argument("--seed", type=int, default=42)
    return p.parse_args()


# --- setup --------------------------------------------------------------------------------------

def django_setup(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["API_THROTTLE_RATE"] = "100000000/min"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.base")
    import django

    django.setup()


def ensure_database(url: str) -> None:
    import psycopg2

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres", query=""))
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if not cur.fetchone():
            cur.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")
    conn.close()


def _copy(table: str, columns: list[str], buf: StringIO) -> None:
    from django.db import connection

    buf.seek(0)
    with connection.cursor() as cur:
        cur.cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buf)


def generate(args) -> None:
    """Items, customers, events, memberships and a tier rule, with COPY (about a minute)."""
    from django.db import connection

    from segmentation.models import Dimension, Tier

    rng = np.random.default_rng(args.seed)
    now = datetime.now(UTC) - timedelta(minutes=5)
    stamp = now.isoformat()
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("TRUNCATE accounts_event, segmentation_membership, recommendations_tierrule, "
                    "recommendations_experiment, recommendations_trainedmodel, accounts_customer, recommendations_item "
                    "RESTART IDENTITY CASCADE")
    # Items: sorted by category so that category c holds ids [start[c], start[c] + size[c]).
    sizes = rng.multinomial(args.items - len(CATEGORIES), np.full(len(CATEGORIES), 1 / len(CATEGORIES))) + 1
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    cat_of = np.repeat(np.arange(len(CATEGORIES)), sizes)
    unavailable = rng.random(args.items) < 0.02
    buf = StringIO()
    for i in range(args.items):
        active = "f" if unavailable[i] and i % 2 else "t"
        in_stock = "f" if unavailable[i] and not i % 2 else "t"
        buf.write(f"bi{i}\tItem {i}\t{CATEGORIES[cat_of[i]]}\tBrand {i % 97}\t{(5 + i % 200):.2f}\t[]\t{{}}\t\t"
                  f"{active}\t{in_stock}\t{stamp}\t{stamp}\n")
    _copy("recommendations_item", ["external_id", "title", "category", "brand", "price", "tags", "attributes", "url",
                                   "active", "in_stock", "created_at", "updated_at"], buf)
    buf = StringIO()
    first = (now - timedelta(days=200)).isoformat()
    for c in range(args.customers):
        buf.write(f"bc{c}\t\t\t\t{{}}\t\\N\t{first}\t{stamp}\tweb\tf\t\\N\t\t\\N\t\\N\t{stamp}\t{stamp}\n")
    _copy("accounts_customer", ["external_id", "email", "name", "phone", "attributes", "signup_at", "first_seen_at",
                                "last_seen_at", "source_platform", "marketing_consent", "consent_at", "consent_source",
                                "unsubscribed_at", "erased_at", "created_at", "updated_at"], buf)
    t_meta = time.perf_counter() - t0

    # Events: 70% from the customer's two favourite categories (skewed to each category's first
    # items), 30% from the whole catalogue (skewed to the low ids: a global best-seller list).
    n = args.customers * args.events
    cust = np.repeat(np.arange(args.customers), args.events)
    fav = rng.integers(0, len(CATEGORIES), size=(args.customers, 2))
    pick = rng.integers(0, 2, size=n)
    cat = fav[cust, pick]
    within = np.floor(sizes[cat] * rng.random(n) ** 2.5).astype(np.int64)
    item = np.where(rng.random(n) < 0.7, starts[cat] + within, np.floor(args.items * rng.random(n) ** 3).astype(np.int64))
    etype = rng.choice(len(TYPES), size=n, p=TYPE_P)
    age = rng.random(n) * 180 * 86400
    when = [(now - timedelta(seconds=float(a))).isoformat() for a in age]
    buf = StringIO()
    write = buf.write
    for k in range(n):
        t = TYPES[etype[k]]
        amount = f"{(5 + item[k] % 200):.2f}" if etype[k] == 2 else "\\N"
        write(f"be{k}\t{cust[k] + 1}\t{t}\t{item[k] + 1}\t{amount}\t\\N\tweb\t{when[k]}\t{when[k]}\t{{}}\n")
    t_build = time.perf_counter() - t0
    _copy("accounts_event", ["event_id", "customer_id", "type", "item_id", "amount", "quantity", "platform", "occurred_at",
                             "received_at", "properties"], buf)
    t_events = time.perf_counter() - t0

    value = Dimension.objects.get(slug="value")
    tiers = list(Tier.objects.filter(dimension=value).order_by("order").values_list("pk", "slug"))
    tier_ids = [pk for pk, _ in tiers]
    probs = np.array([0.1, 0.3, 0.6][: len(tier_ids)])
    which = rng.choice(len(tier_ids), size=args.customers, p=probs / probs.sum())
    buf = StringIO()
    for c in range(args.customers):
        buf.write(f"{c + 1}\t{value.pk}\t{tier_ids[which[c]]}\t{stamp}\tf\n")
    _copy("segmentation_membership", ["customer_id", "dimension_id", "tier_id", "since", "overridden"], buf)
    from recommendations.models import TierRule

    TierRule.objects.create(tier_id=tier_ids[0], action="boost", category=CATEGORIES[3], weight=0.3, note="bench")
    with connection.cursor() as cur:
        cur.execute("ANALYZE accounts_event; ANALYZE accounts_customer; ANALYZE recommendations_item; "
                    "ANALYZE segmentation_membership")
    print(f"data: {args.items:,} items, {args.customers:,} customers, {n:,} events "
          f"(items+customers {t_meta:.1f} s, events built {t_build - t_meta:.1f} s, COPY {t_events - t_build:.1f} s; "
          f"total {time.perf_counter() - t0:.1f} s)")


def data_matches(args) -> bool:
    from accounts.models import Customer, Event
    from recommendations.models import Item

    return (Item.objects.count() == args.items and Customer.objects.count() == args.customers
            and Event.objects.count() == args.customers * args.events)


def train(args):
    from recommendations.services import recommender_activate, recommender_train

    t0 = time.perf_counter()
    model = recommender_train(algorithm=args.algorithm, window_days=365, holdout_days=7)
    if model.status != "succeeded":
        sys.exit(f"training failed: {model.error}")
    recommender_activate(model=model)
    m = model.metrics
    print(f"model #{model.pk} {model.algorithm}: {model.n_users:,} customers x {model.n_items:,} items, "
          f"{model.n_interactions:,} interactions; trained in {time.perf_counter() - t0:.1f} s "
          f"(fit {m.get('fit_seconds', 0):.1f} s); artefact {model.artefact_bytes / 1e6:.1f} MB; "
          f"holdout nDCG@10 {m.get('ndcg', 0):.4f} vs popularity {m.get('baseline_popularity', {}).get('ndcg', 0):.4f}")
    return model


# --- server -------------------------------------------------------------------------------------

def start_server(args, database_url: str, redis_url: str) -> subprocess.Popen:
    sep = "&" if "?" in database_url else "?"
    env = {**os.environ, "DATABASE_URL": f"{database_url}{sep}conn_max_age=600", "REDIS_URL": redis_url,
           "DJANGO_SETTINGS_MODULE": "crm.settings.base", "API_THROTTLE_RATE": "100000000/min", "DJANGO_DEBUG": "0"}
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    kind = ["-k", "gthread", "--threads", str(args.threads)] if args.worker_class == "gthread" else []
    proc = subprocess.Popen([gunicorn, "crm.wsgi:application", "-w", str(args.workers), *kind, "-b", f"127.0.0.1:{args.port}",
                             "--log-level", "warning", "--timeout", "120"], cwd=ROOT, env=env, start_new_session=True)
    return proc


def wait_ready(base: str, key: str, proc: subprocess.Popen) -> None:
    for _ in range(120):
        if proc.poll() is not None:
            sys.exit("gunicorn exited")
        try:
            req = urllib.request.Request(f"{base}/api/v1/ping/", headers={"Authorization": f"Api-Key {key}"})
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    sys.exit("gunicorn did not answer")


WORKER_LOG = Path(tempfile.gettempdir()) / "recs_serving_worker.log"


def start_worker(database_url: str, redis_url: str) -> subprocess.Popen:
    """A Celery worker on the default queue, where ready lists are made (its output goes to
    WORKER_LOG)."""
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "DJANGO_SETTINGS_MODULE": "crm.settings.base", "CELERY_TASK_ALWAYS_EAGER": "false"}
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "crm", "worker", "-Q", "default", "-c", "1",
                             "-n", f"recs-bench-{os.getpid()}@localhost", "--purge", "--without-gossip", "--without-mingle",
                             "-l", "warning"], cwd=ROOT, env=env, start_new_session=True,
                            stdout=WORKER_LOG.open("wb"), stderr=subprocess.STDOUT)


def freshness(base: str, customers: int, database_url: str, redis_url: str, n: int = 300) -> dict:
    """Time from a storefront's event (the ingest API's answer) to the customer's ready list
    made again by a real worker: the window in which their requests are ranked on request.
    One event at a time, for random customers, with the worker idle otherwise."""
    import json

    from django.core.cache import cache

    from accounts.services.api_keys import api_key_create
    from crm.celery import app
    from recommendations.serving import customer_cache_key

    from recommendations.ready import DRAIN_KEY

    _key, plain = api_key_create(name="recs bench events", scopes=["events:write"])
    worker = start_worker(database_url, redis_url)  # --purge: messages of earlier runs that had no worker
    cache.delete(DRAIN_KEY)  # a flag of such a message would hold new drains back
    try:
        for _ in range(120):
            if app.control.ping(timeout=0.5):
                break
        else:
            sys.exit(f"the Celery worker did not answer a ping (see {WORKER_LOG})")
        rnd = random.Random(5)
        waits, missing = [], 0
        for k in range(n):
            ext = f"bc{rnd.randrange(customers)}"
            body = json.dumps({"events": [{"event_id": f"fresh-{time.time_ns()}-{k}", "customer": ext, "type": "view",
                                           "item": f"bi{rnd.randrange(1000)}",
                                           "occurred_at": datetime.now(UTC).isoformat()}]}).encode()
            req = urllib.request.Request(f"{base}/api/v1/events/", data=body, method="POST", headers={
                "Authorization": f"Api-Key {plain}", "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as r:
                assert r.status in (200, 201, 207), r.status
            t0 = time.perf_counter()
            key = customer_cache_key(ext)
            while True:
                entry = cache.get(key)
                if entry and any(p.get("ready") for p in entry.values()):
                    waits.append((time.perf_counter() - t0) * 1000)
                    break
                if time.perf_counter() - t0 > 10:
                    missing += 1
                    break
                time.sleep(0.001)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    waits.sort()
    return {"n": n, "p50": waits[len(waits) // 2] if waits else float("nan"),
            "p99": waits[int(len(waits) * 0.99)] if waits else float("nan"), "missing": missing}


# --- load ---------------------------------------------------------------------------------------

LUA = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
"""


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_wrk(base: str, key: str, paths: list[str], clients: int, duration: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path_file = Path(tmp) / "paths.txt"
        path_file.write_text("\n".join(paths) + "\n")
        script = Path(tmp) / "paths.lua"
        script.write_text(LUA % path_file)
        out = subprocess.run(["wrk", "-t", str(min(clients, 2)), "-c", str(clients), "-d", f"{duration}s", "--latency",
                              "-H", f"Authorization: Api-Key {key}", "-s", str(script), base], capture_output=True,
                             text=True, check=True).stdout
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"p50": _ms(lat["50"]), "p99": _ms(lat["99"]), "rps": rps, "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1) if errors else ""}


def run_python(base: str, key: str, paths: list[str], clients: int, duration: int) -> dict:
    """Fallback load generator: `clients` threads over keep-alive connections."""
    import http.client

    host = urlsplit(base)
    stop = time.perf_counter() + duration
    lat: list[float] = []
    bad = [0]
    lock = threading.Lock()

    def worker(seed):
        rnd = random.Random(seed)
        conn = http.client.HTTPConnection(host.hostname, host.port)
        mine = []
        while time.perf_counter() < stop:
            t = time.perf_counter()
            conn.request("GET", rnd.choice(paths), headers={"Authorization": f"Api-Key {key}"})
            r = conn.getresponse()
            r.read()
            mine.append((time.perf_counter() - t) * 1000)
            if r.status != 200:
                bad[0] += 1
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat.sort()
    return {"p50": lat[len(lat) // 2], "p99": lat[int(len(lat) * 0.99)], "rps": len(lat) / (time.perf_counter() - t0),
            "non2xx": bad[0], "socket_errors": ""}


def measure(base, key, paths, clients, duration) -> dict:
    if shutil.which("wrk"):
        return run_wrk(base, key, paths, clients, duration)
    return run_python(base, key, paths, clients, duration)


def cpu_per_request(key: str, customers: int, n: int = 300) -> dict:
    """CPU milliseconds per request in this process (Django test client, no HTTP, no queueing):
    a figure that other load on the machine does not distort."""
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Api-Key {key}")
    rnd = random.Random(7)
    ids = [f"bc{rnd.randrange(customers)}" for _ in range(n)]
    pool = [f"/api/v1/customers/{c}/recommendations/?limit=10" for c in ids]

    def run(paths, repeat: int = 1):  # the lowest of `repeat` passes (a pass ranks what it does not find)
        best = float("inf")
        for _ in range(repeat):
            t = time.process_time()
            for path in paths:
                assert client.get(path).status_code == 200
            best = min(best, (time.process_time() - t) / len(paths) * 1000)
        return best

    run(["/api/v1/ping/"] * 50)
    drop_recs_cache()
    out = {"ping": run(["/api/v1/ping/"] * n, repeat=3), RANKED: run(pool)}
    from recommendations.ready import refresh_customers

    drop_recs_cache()
    refresh_customers(ids)
    out[READY] = run(pool, repeat=3)
    return out


def drain_after_events(customers: int, n: int = 20_000) -> tuple[int, float]:
    """The per-customer path: n random customers pending after their events (as ingest leaves
    them), their lists re-made by the drain a worker runs (here in this process)."""
    from recommendations.ready import drain_pending, enqueue_refresh_customers

    rnd = random.Random(11)
    ids = sorted({f"bc{rnd.randrange(customers)}" for _ in range(n)})
    from recommendations.serving import invalidate_customers

    invalidate_customers(ids)
    enqueue_refresh_customers(ids)  # queues one drain message (no worker here: this process drains)
    t0 = time.perf_counter()
    stored = drain_pending()
    return stored, time.perf_counter() - t0


def refresh_ready() -> dict:
    from recommendations.ready import refresh_all

    drop_recs_cache()
    status = refresh_all()
    if status is None:
        sys.exit("a ready-list refresh is running already (recs:ready:lock in Redis)")
    return status


def drop_recs_cache() -> None:
    from django.core.cache import cache

    cache.delete_pattern("recs:c:*")


def main() -> None:
    args = parse_args()
    database_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/stratum_recs_bench")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/11")
    if not database_url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must point at a dedicated PostgreSQL database (its shop tables are truncated).")
    os.environ["REDIS_URL"] = redis_url
    ensure_database(database_url)
    django_setup(database_url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from recommendations.models import TrainedModel

    if args.reuse and data_matches(args):
        print("data: reusing the existing shop")
        model = TrainedModel.objects.filter(active=True, use="customer", algorithm=args.algorithm).defer("artefact").first()
        if model is not None:
            print(f"model: reusing #{model.pk} {model.algorithm} (trained in {model.training_seconds:.1f} s, "
                  f"holdout nDCG@10 {model.metrics.get('ndcg', 0):.4f})")
        else:
            model = train(args)
    else:
        generate(args)
        model = train(args)

    from accounts.services.api_keys import api_key_create

    _key, plain = api_key_create(name="recs bench", scopes=["recommendations:read"])
    cpu = cpu_per_request(plain, args.customers)  # before the server starts: nothing else runs
    base = f"http://127.0.0.1:{args.port}"
    proc = start_server(args, database_url, redis_url)
    try:
        wait_ready(base, plain, proc)
        rnd = random.Random(args.seed)
        ping = ["/api/v1/ping/"]
        pool_ids = [f"bc{rnd.randrange(args.customers)}" for _ in range(POOL)]
        pool = [f"/api/v1/customers/{c}/recommendations/?limit=10" for c in pool_ids]
        everyone = [f"/api/v1/customers/bc{c}/recommendations/?limit=10" for c in range(args.customers)]
        rnd.shuffle(everyone)
        measure(base, plain, ping, 8, 2)
        # Every worker loads the model's artefact on its first answer ranked on request (as a
        # server does once after start or a new model): warm that, on customers outside the
        # timed runs.
        drop_recs_cache()
        measure(base, plain, everyone[-5000:], 8, 3)
        results = {}
        for clients in (8, 32):
            results[("ping", clients)] = measure(base, plain, ping, clients, args.duration)
        for clients in (8, 32):
            drop_recs_cache()
            results[(RANKED, clients)] = measure(base, plain, everyone, clients, args.duration)
        ready = refresh_ready()
        drained = drain_after_events(args.customers)
        measure(base, plain, pool, 8, 2)
        for clients in (8, 32):
            results[(READY, clients)] = measure(base, plain, everyone, clients, args.duration)
        fresh = freshness(base, args.customers, database_url, redis_url)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)

    loader = "wrk" if shutil.which("wrk") else "python threads"
    workers = (f"{args.workers} gthread workers x {args.threads} threads" if args.worker_class == "gthread"
               else f"{args.workers} sync workers")
    print(f"\nserver: gunicorn, {workers}, PostgreSQL + Redis, model #{model.pk} ({model.algorithm}); "
          f"load: {loader}, {args.duration} s per run, {os.cpu_count()} CPUs shared by server and client")
    print(f"ready lists: {ready['stored']:,} of {ready['customers']:,} customers ranked and stored in "
          f"{ready['seconds']:.1f} s ({ready['customers'] / max(ready['seconds'], 1e-9):,.0f} customers/s, one process, "
          f"{ready['depth']} items each)")
    print(f"lists re-made after events: {drained[0]:,} customers drained from the pending set in {drained[1]:.1f} s "
          f"({drained[0] / max(drained[1], 1e-9):,.0f} customers/s, one process)")
    print(f"after an event, the list is ready again (real worker, {fresh['n']} events one at a time): "
          f"p50 {fresh['p50']:.1f} ms, p99 {fresh['p99']:.1f} ms from the ingest API's answer"
          + (f"; {fresh['missing']} not within 10 s" if fresh["missing"] else ""))
    print(f"{'endpoint':<25} {'p50 @8 (ms)':>12} {'p99 @8 (ms)':>12} {'req/s @8':>10} {'req/s @32':>10} {'p50 @32':>8} "
          f"{'p99 @32':>8} {'errors':>7}")
    for name in ("ping", READY, RANKED):
        a, b = results[(name, 8)], results[(name, 32)]
        errors = a["non2xx"] + b["non2xx"]
        print(f"{name:<25} {a['p50']:>12.2f} {a['p99']:>12.2f} {a['rps']:>10.0f} {b['rps']:>10.0f} {b['p50']:>8.2f} "
              f"{b['p99']:>8.2f} {errors:>7}")
    print("CPU per request in-process (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
          + f"; ratio ping/recs: ready lists {cpu['ping'] / cpu[READY]:.2f}, "
            f"ranked on request {cpu['ping'] / cpu[RANKED]:.2f}")
    try:
        load = os.getloadavg()
        print(f"load average during the run: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min) on {os.cpu_count()} CPUs")
    except OSError:
        pass
    ping32 = results[("ping", 32)]["rps"]
    for name in (READY, RANKED):
        a, b = results[(name, 8)], results[(name, 32)]
        ratio = b["rps"] / ping32
        ok = a["p50"] < TARGET_P50_MS and a["p99"] < TARGET_P99_MS and ratio >= TARGET_RATIO
        print(f"{name}: throughput ratio to ping at 32 clients {ratio:.2f} (target >= {TARGET_RATIO}); "
              f"p50 {a['p50']:.2f} ms (< {TARGET_P50_MS}), p99 {a['p99']:.2f} ms (< {TARGET_P99_MS}) at 8 clients: "
              f"{'MET' if ok else 'NOT MET'}")


if __name__ == "__main__":
    main()
