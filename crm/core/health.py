"""GET /healthz: database, cache, broker and worker status.

200 when every component is up; 503 with the names of the components that are down.
In the embedded default (no broker) tasks run in process, so broker and worker report
"in-process" and count as up.
"""
from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def _check_database() -> dict:
    with connection.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchone()
    return {"status": "up", "vendor": connection.vendor}


def _check_cache() -> dict:
    key = "healthz:probe"
    token = str(time.time())
    cache.set(key, token, 10)
    if cache.get(key) != token:
        raise RuntimeError("cache did not return the value just written")
    return {"status": "up", "backend": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]}


def _check_broker() -> dict:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"status": "up", "mode": "in-process"}
    from crm.celery import app

    # The URL from settings (not the app's cached pool), so the check sees the broker as configured now.
    with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return {"status": "up", "mode": "broker"}


def _check_worker() -> dict:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"status": "up", "mode": "in-process"}
    from crm.celery import app

    replies = app.control.ping(timeout=1.0) or []
    if not replies:
        raise RuntimeError("no Celery worker answered a ping within 1 s")
    return {"status": "up", "workers": sorted(name for reply in replies for name in reply)}


CHECKS = {"database": _check_database, "cache": _check_cache, "broker": _check_broker, "worker": _check_worker}


def health_status() -> tuple[bool, dict]:
    components, down = {}, []
    for name, check in CHECKS.items():
        if name == "worker" and "broker" in down:
            components[name] = {"status": "down", "error": "broker is down"}
            down.append(name)
            continue
        try:
            components[name] = check()
        except Exception as exc:  # noqa: BLE001 - a health check reports every failure, whatever its type
            components[name] = {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
            down.append(name)
    return not down, {"status": "ok" if not down else "down", "down": down, "components": components}


@never_cache
@require_GET
def healthz(request):
    healthy, body = health_status()
    return JsonResponse(body, status=200 if healthy else 503)
