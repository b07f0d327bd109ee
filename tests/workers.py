"""Start and stop a real Celery worker process for tests that need one.

The worker runs the production settings module against the *test* database (the name
pytest-django created) and the REDIS_URL broker, so what it writes is visible to the test.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def require_real_services() -> None:
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs REDIS_URL (a real broker) to start a Celery worker; .ci/run sets it")
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: a worker process cannot share pytest's in-memory SQLite database")


def test_database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def worker_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="crm.settings.base",
        DATABASE_URL=test_database_url(),
        REDIS_URL=os.environ["REDIS_URL"],
        CELERY_TASK_ALWAYS_EAGER="false",
        STRATUM_VAR_DIR=str(settings.VAR_DIR),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def celery_worker(*, queues: str = "default,ingest,recompute,train,send", name: str = "test", log: Path | None = None,
                  extra_env: dict[str, str] | None = None, concurrency: int = 1):
    """Run `celery -A crm worker` until the block ends; yields the Popen. Waits until it answers a ping."""
    from crm.celery import app

    hostname = f"{name}-{os.getpid()}-{time.monotonic_ns()}@localhost"
    out = open(log, "ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "crm", "worker", "-Q", queues, "-n", hostname,
         "--pool", "prefork", "-c", str(concurrency), "--without-gossip", "--without-mingle", "-l", "info"],
        cwd=ROOT, env=worker_env(**(extra_env or {})), stdout=out, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"celery worker exited with {proc.returncode} before answering a ping")
            if app.control.ping(destination=[hostname], timeout=0.5):
                break
        else:
            raise RuntimeError("celery worker did not answer a ping within 60 s")
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if log:
            out.close()
