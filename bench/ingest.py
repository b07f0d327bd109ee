#!/usr/bin/env python
"""Ingest benchmark: POST N events in batches to /api/v1/events/ and print events/s.

Against a running server:
    STRATUM_URL=http://127.0.0.1:8000 STRATUM_API_KEY=sk_... python bench/ingest.py

Or let it start gunicorn itself on a database of your choice (it migrates it, makes an API
key with the events:write scope, runs, and stops the server):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/stratum_bench python bench/ingest.py --serve

Bodies are built before the clock starts (so the figure is the server's, not the client's
JSON encoder), and sent by --concurrency client threads over keep-alive connections.
Events look like a shop's traffic: views, clicks, carts and purchases of --customers
customers over --items items, with properties, about 220 bytes of JSON each.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
TYPES = ["view"] * 60 + ["click"] * 15 + ["add_to_cart"] * 10 + ["purchase"] * 6 + ["search"] * 5 + ["login"] * 4
PLATFORMS = ["web", "web", "ios", "android", "store"]

try:
    import orjson

    def dumps(obj) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # the benchmark only needs the standard library
    def dumps(obj) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


def make_bodies(n: int, batch: int, customers: int, items: int, seed: int, run: str) -> list[bytes]:
    """n events in bodies of `batch`, event ids unique to this run, times in the last 30 days."""
    rnd = random.Random(seed)
    now = datetime.now(UTC) - timedelta(minutes=1)
    bodies = []
    for start in range(0, n, batch):
        events = []
        for i in range(start, min(start + batch, n)):
            etype = rnd.choice(TYPES)
            ev = {
                "event_id": f"{run}-{i}",
                "customer": f"bench-c{rnd.randrange(customers)}",
                "type": etype,
                "occurred_at": (now - timedelta(seconds=rnd.randrange(30 * 86400))).isoformat(),
                "platform": rnd.choice(PLATFORMS),
            }
            if etype != "login" and etype != "search":
                ev["item"] = f"bench-sku{rnd.randrange(items)}"
            if etype == "purchase":
                ev["amount"] = f"{rnd.randrange(100, 50000) / 100:.2f}"
                ev["quantity"] = rnd.randrange(1, 4)
            ev["properties"] = {"session": f"s{rnd.randrange(10**6)}", "referrer": rnd.choice(["ads", "seo", "mail", ""])}
            if etype == "search":
                ev["properties"]["query"] = rnd.choice(["kettle", "running shoes", "茶壶", "usb cable"])
            events.append(ev)
        bodies.append(dumps({"events": events}))
    return bodies


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, url: str, key: str):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.path = (parts.path.rstrip("/") or "") + "/api/v1/events/"
        self.headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
        self.conn = None

    def post(self, body: bytes) -> tuple[int, dict, dict]:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                self.conn.request("POST", self.path, body=body, headers=self.headers)
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, dict(resp.getheaders()), json.loads(data or b"{}")
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def run_load(url: str, key: str, bodies: list[bytes], concurrency: int) -> dict:
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0, "throttled": 0, "errors": 0}
    latencies: list[float] = []
    lock = threading.Lock()
    next_index = iter(range(len(bodies)))

    def worker():
        client = Client(url, key)
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            while True:
                t0 = time.perf_counter()
                status, headers, body = client.post(bodies[i])
                dt = time.perf_counter() - t0
                if status == 429:  # honour Retry-After, then resend the same batch
                    with lock:
                        totals["throttled"] += 1
                    time.sleep(float(headers.get("Retry-After", "1")))
                    continue
                break
            with lock:
                latencies.append(dt)
                if status == 200:
                    totals["accepted"] += body["accepted"]
                    totals["duplicates"] += body["duplicates"]
                    totals["rejected"] += len(body["rejected"])
                else:
                    totals["errors"] += 1
                    if totals["errors"] <= 3:
                        print(f"  HTTP {status}: {str(body)[:300]}", file=sys.stderr)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    totals["seconds"] = time.perf_counter() - t0
    totals["latencies"] = sorted(latencies)
    return totals


# --- --serve: gunicorn on a database of our own ----------------------------------------------------

def _manage(env: dict, *args: str, capture: bool = False) -> str:
    out = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, check=True,
                         capture_output=capture, text=True)
    return out.stdout if capture else ""


def _make_key(env: dict) -> str:
    code = ("from accounts.services.api_keys import api_key_create; "
            "print(api_key_create(name='bench ingest', scopes=['events:write'])[1])")
    return _manage(env, "shell", "-c", code, capture=True).strip().splitlines()[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    parts = urlsplit(url)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}")
        try:
            socket.create_connection((parts.hostname, parts.port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start in time")


def serve(args) -> tuple[subprocess.Popen, str, str]:
    database_url = args.database_url or os.environ.get("DATABASE_URL", "")
    if not database_url:
        raise SystemExit("--serve needs DATABASE_URL (or --database-url): the benchmark writes to that database.")
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "crm.settings.base",
           "DJANGO_DEBUG": "0", "STRATUM_PRODUCTION": "0", "LOG_LEVEL": "WARNING",
           # The benchmark measures ingest, not the per-key throttle (1,200 requests/min by default).
           "API_THROTTLE_RATE": args.throttle_rate}
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    print("migrating ...", flush=True)
    _manage(env, "migrate", "--noinput", "-v", "0")
    key = _make_key(env)
    port = args.port or _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "gunicorn", "crm.wsgi:application", "--bind", f"127.0.0.1:{port}",
           "--workers", str(args.workers), "--worker-class", args.worker_class, "--threads", str(args.threads),
           "--timeout", "120", "--keep-alive", "30", "--log-level", "warning"]
    print(f"starting: {' '.join(cmd[2:])}", flush=True)
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    _wait_up(url, proc)
    return proc, url, key


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default=os.environ.get("STRATUM_URL", "http://127.0.0.1:8000"))
    p.add_argument("--key", default=os.environ.get("STRATUM_API_KEY", ""), help="an API key with events:write")
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=4, help="client threads, one connection each")
    p.add_argument("--customers", type=int, default=50_000)
    p.add_argument("--items", type=int, default=5_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--warmup", type=int, default=4, help="batches sent before the clock starts")
    p.add_argument("--serve", action="store_true", help="start gunicorn against DATABASE_URL, run, stop it")
    p.add_argument("--database-url", default="")
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--workers", type=int, default=3, help="gunicorn workers (--serve)")
    p.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker (--serve)")
    p.add_argument("--worker-class", default="sync", help="gunicorn worker class (--serve)")
    p.add_argument("--throttle-rate", default="1000000/min", help="API_THROTTLE_RATE for the served app (--serve)")
    args = p.parse_args()

    proc = None
    url, key = args.url, args.key
    if args.serve:
        proc, url, key = serve(args)
    elif not key:
        raise SystemExit("Give an API key with --key or STRATUM_API_KEY (or use --serve).")
    try:
        run = uuid.uuid4().hex[:10]
        t0 = time.perf_counter()
        bodies = make_bodies(args.events, args.batch, args.customers, args.items, args.seed, run)
        warm = make_bodies(args.warmup * args.batch, args.batch, args.customers, args.items, args.seed + 1, run + "w")
        size = sum(map(len, bodies))
        print(f"built {len(bodies)} bodies ({size / 2**20:.1f} MiB, {size / max(args.events, 1):.0f} B/event) "
              f"in {time.perf_counter() - t0:.1f}s", flush=True)
        if warm:
            run_load(url, key, warm, args.concurrency)
        r = run_load(url, key, bodies, args.concurrency)
        lat = r["latencies"] or [0.0]
        rate = r["accepted"] / r["seconds"] if r["seconds"] else 0.0
        print(f"events: {args.events}  batch: {args.batch}  client threads: {args.concurrency}"
              + (f"  gunicorn: {args.workers} {args.worker_class} workers x {args.threads} threads" if args.serve else ""))
        print(f"accepted {r['accepted']}  duplicates {r['duplicates']}  rejected {r['rejected']}  "
              f"HTTP errors {r['errors']}  throttled {r['throttled']}")
        print(f"batch latency: p50 {statistics.median(lat) * 1000:.0f} ms  "
              f"p95 {lat[int(len(lat) * 0.95) - 1 if len(lat) > 1 else 0] * 1000:.0f} ms  max {lat[-1] * 1000:.0f} ms")
        print(f"{r['seconds']:.1f} s  ->  {rate:,.0f} events/s")
        if r["errors"] or r["accepted"] != args.events:
            sys.exit(1)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
