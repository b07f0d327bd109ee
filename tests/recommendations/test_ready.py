"""Ready lists (recommendations/ready.py): every recently seen customer's recommendations ranked
ahead by a worker. They must be exactly what ranking on request gives, served without a
database query, re-made after the customer's events and after any change of what serves, and
never outlive an event that arrived while they were being made."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from accounts.models import Customer
from recommendations import ready
from recommendations.serving import customer_cache_key, customer_recommendations
from recommendations.services import experiment_create, tier_rule_create
from segmentation.models import Tier

from .conftest import DAY

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _ready_lists_on(settings):
    settings.RECS_READY_LISTS = True  # on by default where REDIS_URL is set (CI); the embedded default has them off


@pytest.fixture
def seen(shop):
    """Every shop customer seen yesterday (the ready population), except two: one seen long ago,
    one erased."""
    Customer.objects.update(last_seen_at=timezone.now() - DAY)
    Customer.objects.filter(external_id="runner-29").update(last_seen_at=timezone.now() - timedelta(days=400))
    Customer.objects.filter(external_id="runner-28").update(erased_at=timezone.now())
    return shop


def entry(ext: str) -> dict | None:
    return cache.get(customer_cache_key(ext))


def answer(ext: str, limit: int = 10, **kwargs) -> list[tuple]:
    data = customer_recommendations(external_id=ext, limit=limit, **kwargs)
    return [(x["item"], x["score"], x["reason"]) for x in data["items"]]


def test_a_full_refresh_ranks_every_recently_seen_customer_exactly_as_a_request_would(trained, seen):
    cache.clear()
    status = ready.refresh_all()
    assert status["customers"] == 58 and status["stored"] == 58  # 60 customers, one erased, one not seen
    assert entry("runner-29") is None  # not seen for 400 days: ranked on request, if ever
    assert entry("runner-28") is None
    for c in Customer.objects.filter(erased_at__isnull=True, external_id__in=["reader-3", "reader-17", "runner-5"]):
        (payload,) = entry(c.external_id).values()
        assert payload["ready"] is True and payload["depth"] == ready.ready_depth()
        for limit in (3, 10, 20):
            assert answer(c.external_id, limit) == answer(c.external_id, limit, use_cache=False)


def test_a_ready_list_is_served_without_a_database_query(trained, seen, django_assert_num_queries):
    ready.refresh_all()
    with django_assert_num_queries(1):  # RECS_CATALOG_TTL=0 in tests: only the catalog refresh
        assert len(answer("reader-3")) == 10


def test_a_request_deeper_than_the_ready_list_ranks_on_request_and_keeps_it_ready(trained, seen, settings):
    settings.RECS_READY_DEPTH = 12
    ready.refresh_all()
    (payload,) = entry("reader-3").values()
    assert len(payload["ranked"]) == 12 and not payload["complete"]
    deep = answer("reader-3", limit=20)  # 12 < 20 + the stock margin: ranked again
    assert deep == answer("reader-3", limit=20, use_cache=False)
    assert deep[:10] == answer("reader-3", limit=10)
    (payload,) = entry("reader-3").values()
    assert payload["ready"] is True and len(payload["ranked"]) > 12
    if hasattr(cache, "ttl"):  # Redis: the entry keeps the ready lists' lifetime, not the 10 minutes of others
        assert cache.ttl(customer_cache_key("reader-3")) > 3600


def test_an_ingested_event_remakes_the_customers_ready_list_with_it(api_client, trained, seen,
                                                                     django_capture_on_commit_callbacks):
    ready.refresh_all()
    first = answer("reader-3", limit=1)[0][0]
    other = entry("reader-4")
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/api/v1/events/", {"events": [{
            "event_id": "ready-1", "customer": "reader-3", "type": "purchase", "item": first, "amount": "12.00",
            "occurred_at": timezone.now().isoformat()}]}, format="json")
    assert response.status_code in (200, 201, 207), response.content
    (payload,) = entry("reader-3").values()  # re-made (tasks run in process in tests) ...
    assert payload["ready"] is True
    assert first not in [pk_item for pk_item, *_ in answer("reader-3")]  # ... with the purchase in it
    assert entry("reader-4") == other  # nobody else's list was touched


def test_an_event_arriving_while_a_list_is_made_drops_that_list(trained, seen, monkeypatch):
    """The event commits after the refresh read the database and before it stored the list: the
    marker moved, so the list it stored goes, and the next request ranks with the event."""
    from recommendations.serving import invalidate_customers

    read = ready._rows_by_customer

    def read_then_event(ids, history_events):
        rows = read(ids, history_events)
        invalidate_customers(["reader-3"])  # what events_stored does for an event committed now
        return rows

    monkeypatch.setattr(ready, "_rows_by_customer", read_then_event)
    cache.clear()
    status = ready.refresh_all()
    assert entry("reader-3") is None
    assert entry("reader-4") is not None
    assert status["stored"] == 57


def test_a_change_of_what_serves_remakes_every_ready_list_for_the_new_state(trained, seen, dimensions,
                                                                            django_capture_on_commit_callbacks):
    ready.refresh_all()
    (old_sig,) = entry("reader-3")
    low = Tier.objects.get(dimension__slug="value", slug="low")
    with django_capture_on_commit_callbacks(execute=True):
        tier_rule_create(tier=low, action="boost", category="Toys", weight=3.0)
    (new_sig,) = entry("reader-3")
    assert new_sig != old_sig  # the state version is part of the signature
    assert ready.ready_status()["current"] is True


def test_lists_of_an_experiment_follow_each_customers_arm(trained, seen, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        experiment_create(name="cap", model_a=trained, model_b=trained, config_a={}, config_b={"category_cap": 1},
                         traffic_b=0.5)
    arms = set()
    for c in ("reader-1", "reader-2", "reader-3", "reader-5", "reader-8", "runner-3", "runner-4", "runner-9"):
        (sig,) = entry(c)
        arms.add(sig.split(":")[2])
        assert answer(c) == answer(c, use_cache=False)
    assert arms == {"a", "b"}


def test_one_full_refresh_at_a_time_and_a_request_during_it_runs_it_again(trained, seen, monkeypatch):
    assert cache.add(ready.LOCK_KEY, "someone", 60)
    assert ready.refresh_all() is None  # another refresh holds the lock ...
    assert cache.get(ready.AGAIN_KEY)  # ... and is asked to run once more
    cache.delete(ready.LOCK_KEY)

    runs = []
    once = ready._refresh_all_once

    def run_and_get_asked_again():
        runs.append(1)
        if len(runs) == 1:
            assert ready.refresh_all() is None  # a change of what serves during the run
        return once()

    monkeypatch.setattr(ready, "_refresh_all_once", run_and_get_asked_again)
    assert ready.refresh_all()["stored"] == 58
    assert len(runs) == 2
    assert cache.get(ready.LOCK_KEY) is None


def test_a_broker_that_refuses_the_refresh_does_not_fail_the_ingest(api_client, trained, seen, monkeypatch,
                                                                    django_capture_on_commit_callbacks, caplog):
    from recommendations import tasks

    def refuse(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.recs_refresh_customers, "delay", refuse)
    ready.refresh_all()
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/api/v1/events/", {"events": [{
            "event_id": "ready-2", "customer": "reader-3", "type": "view", "item": "toy-0",
            "occurred_at": timezone.now().isoformat()}]}, format="json")
    assert response.status_code in (200, 201, 207), response.content
    assert entry("reader-3") is None  # dropped all the same: the next request ranks with the event
    assert "recs_ready_enqueue_failed" in caplog.text


def test_no_ready_lists_when_turned_off_or_nothing_serves(shop, settings):
    Customer.objects.update(last_seen_at=timezone.now())
    assert ready.refresh_all()["stored"] == 0  # no model is active
    settings.RECS_READY_LISTS = False
    assert ready.refresh_all() is None
    assert ready.refresh_customers(["reader-3"]) == 0


def test_ready_list_tasks_go_to_the_default_queue_not_behind_training():
    from crm.celery import app

    route = app.amqp.router.route({}, "recommendations.tasks.recs_refresh_ready")
    assert route["queue"].name == "default"
    assert app.amqp.router.route({}, "recommendations.tasks.recs_refresh_customers")["queue"].name == "default"
    assert app.amqp.router.route({}, "recommendations.tasks.recommender_train")["queue"].name == "train"


def test_the_models_page_shows_the_ready_lists_and_queues_a_refresh(admin_client, trained, seen):
    ready.refresh_all()
    page = admin_client.get("/recommendations/")
    assert page.status_code == 200
    assert "Made for 58 of 58 recently seen customers in" in page.content.decode()
    cache.clear()
    assert "None yet" in admin_client.get("/recommendations/").content.decode()
    response = admin_client.post("/recommendations/models/ready/refresh/")
    assert response.status_code == 302
    assert ready.ready_status()["stored"] == 58  # tasks run in process in tests


def test_the_models_page_says_when_ready_lists_are_off(admin_client, trained, settings):
    settings.RECS_READY_LISTS = False
    page = admin_client.get("/recommendations/").content.decode()
    assert "Off: every answer is ranked on its first request" in page
    assert "/recommendations/models/ready/refresh/" not in page


def test_customers_waiting_for_their_lists_share_one_queued_task_on_redis(trained, seen, monkeypatch):
    """However many ingest calls there are, one drain task is queued at a time; it takes every
    customer who joined the pending set until it is empty, and the next event queues a new one."""
    if ready.raw_redis() is None:
        pytest.skip("the pending set needs Redis (REDIS_URL); without it each call queues its own task")
    from recommendations import tasks

    queued = []
    monkeypatch.setattr(tasks.recs_refresh_customers, "delay", lambda *args: queued.append(args))
    cache.clear()
    ready.enqueue_refresh_customers(["reader-1"])
    ready.enqueue_refresh_customers(["reader-2", "runner-3"])
    assert queued == [()]  # one message, for both calls
    assert entry("reader-1") is None
    assert ready.drain_pending() == 3
    assert all(entry(c) for c in ("reader-1", "reader-2", "runner-3"))
    assert ready.raw_redis().scard(cache.make_key(ready.PENDING_KEY)) == 0
    ready.enqueue_refresh_customers(["reader-5"])
    assert queued == [(), ()]  # the drain ended: a new event queues a new one


def test_without_redis_each_call_queues_its_own_task(trained, seen, monkeypatch):
    from recommendations import tasks

    queued = []
    monkeypatch.setattr(ready, "raw_redis", lambda: None)
    monkeypatch.setattr(tasks.recs_refresh_customers, "delay", lambda *args: queued.append(args))
    ready.enqueue_refresh_customers({"reader-2", "reader-1"})
    ready.enqueue_refresh_customers(["reader-1"])
    assert queued == [(["reader-1", "reader-2"],), (["reader-1"],)]


def test_an_erased_customer_loses_their_lists_and_gets_no_ready_list_again(trained, seen,
                                                                          django_capture_on_commit_callbacks):
    from accounts.services.privacy import customer_erase

    ready.refresh_all()
    assert answer("reader-3")[0][2].startswith("Because you")
    with django_capture_on_commit_callbacks(execute=True):
        customer_erase(customer=Customer.objects.get(external_id="reader-3"))
    assert entry("reader-3") is None
    ready.refresh_all()
    assert entry("reader-3") is None
    data = customer_recommendations(external_id="reader-3", limit=3)
    assert data["known_customer"] is False  # ranked as unknown: nothing of their history
    assert not any(x["reason"].startswith("Because you") for x in data["items"])
