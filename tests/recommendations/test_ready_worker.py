"""Ready lists with a real Celery worker: an event ingested through the API reaches the worker
through Redis, and the worker re-makes the customer's list with the event in it."""
from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.utils import timezone

from accounts.models import Customer
from crm.celery import app
from recommendations.serving import customer_cache_key, customer_recommendations
from tests.workers import celery_worker, require_real_services

from .conftest import DAY

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_worker_remakes_the_ready_list_of_a_customer_after_their_event(api_client, trained, monkeypatch, tmp_path,
                                                                          settings):
    require_real_services()
    Customer.objects.update(last_seen_at=timezone.now() - DAY)
    first = customer_recommendations(external_id="reader-3", limit=1)["items"][0]["item"]
    key = customer_cache_key("reader-3")
    assert cache.get(key)
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    prefix = {"CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"]}  # the worker sees this test's keys
    with celery_worker(queues="default", name="ready", log=tmp_path / "worker.log", extra_env=prefix):
        response = api_client.post("/api/v1/events/", {"events": [{
            "event_id": "ready-w1", "customer": "reader-3", "type": "purchase", "item": first, "amount": "12.00",
            "occurred_at": timezone.now().isoformat()}]}, format="json")
        assert response.status_code in (200, 201, 207), response.content
        deadline = time.monotonic() + 30
        entry = None
        while time.monotonic() < deadline:
            entry = cache.get(key)
            if entry and all(p.get("ready") for p in entry.values()):
                break
            time.sleep(0.1)
    log = (tmp_path / "worker.log").read_text()
    assert entry and all(p.get("ready") for p in entry.values()), log[-3000:]
    assert "recs_refresh_customers" in log
    served = customer_recommendations(external_id="reader-3", limit=10)
    assert first not in [x["item"] for x in served["items"]]  # the purchase the worker saw
    assert served == {**served, "items": customer_recommendations(external_id="reader-3", limit=10,
                                                                  use_cache=False)["items"]}
