"""The set-based store behind ingest, imports and the demo: dedup and seen-times."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from accounts.models import Customer, Event
from accounts.services.bulk import EventRow, events_store
from recommendations.models import Item

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _row(n: int, customer: str = "c1", item: str | None = None, at: datetime = T0) -> EventRow:
    return EventRow(event_id=f"e{n}", customer=customer, type="purchase", occurred_at=at, item=item,
                    amount=Decimal("9.99"), quantity=1, properties={"n": n})


def test_replay_stores_nothing_new_and_counts_every_event_as_duplicate():
    rows = [_row(1), _row(2, customer="c2", item="sku-1")]
    first = events_store(rows)
    again = events_store(rows)
    assert (first.accepted, first.duplicates) == ({"e1", "e2"}, 0)
    assert (again.accepted, again.duplicates) == (set(), 2)
    assert Event.objects.count() == 2 and Customer.objects.count() == 2


def test_repeat_within_one_batch_is_a_duplicate():
    result = events_store([_row(1), _row(1)])
    assert (len(result.accepted), result.duplicates) == (1, 1)


def test_unknown_item_is_created_inactive():
    events_store([_row(1, item="sku-new")])
    item = Item.objects.get(external_id="sku-new")
    assert item.active is False
    assert Event.objects.get().item == item


def test_seen_times_widen_and_never_shrink():
    events_store([_row(1, at=T0)])
    events_store([_row(2, at=T0 - timedelta(days=3)), _row(3, at=T0 + timedelta(days=2))])
    events_store([_row(4, at=T0)])  # inside the span: changes nothing
    c = Customer.objects.get()
    assert (c.first_seen_at, c.last_seen_at) == (T0 - timedelta(days=3), T0 + timedelta(days=2))
    assert Event.objects.get(event_id="e1").amount == Decimal("9.99")
    assert Event.objects.get(event_id="e1").properties == {"n": 1}


def test_a_new_customer_whose_events_are_all_duplicates_has_no_seen_times():
    """Seen-times follow stored events only: an event_id reused for another customer is a
    duplicate, so the customer it names is created (nothing is lost) but was never seen."""
    events_store([_row(1, customer="first", at=T0)])
    result = events_store([_row(1, customer="second", at=T0 + timedelta(days=1))])
    assert (result.accepted, result.duplicates, result.customers_created) == (set(), 1, 1)
    second = Customer.objects.get(external_id="second")
    assert (second.first_seen_at, second.last_seen_at) == (None, None)


def test_a_new_customer_gets_the_span_of_its_stored_events_only():
    events_store([_row(1, customer="first", at=T0 - timedelta(days=9))])
    events_store([_row(1, customer="new", at=T0 - timedelta(days=9)),  # duplicate of first's event
                  _row(2, customer="new", at=T0), _row(3, customer="new", at=T0 + timedelta(hours=5))])
    new = Customer.objects.get(external_id="new")
    assert (new.first_seen_at, new.last_seen_at) == (T0, T0 + timedelta(hours=5))


def test_store_counts_created_customers_and_items():
    result = events_store([_row(1, customer="a", item="i1"), _row(2, customer="b", item="i1"), _row(3, customer="a")])
    assert (result.customers_created, result.items_created) == (2, 1)
    again = events_store([_row(4, customer="a", item="i1"), _row(5, customer="c")])
    assert (again.customers_created, again.items_created) == (1, 0)


@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_batches_count_each_event_once_and_do_not_deadlock():
    """Four batches at once, sharing customers (locked in pk order) and half their event ids:
    every event is stored once, accepted once across the batches, and seen-times are right."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serializes writers)")

    def batch(k: int) -> list[EventRow]:
        # batch k holds events k*100 .. k*100+199: each overlaps the next by 100 events.
        return [_row(n, customer=f"c{n % 37}", at=T0 + timedelta(minutes=n)) for n in range(k * 100, k * 100 + 200)]

    def store(k: int):
        try:
            return events_store(batch(k))
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(store, range(4)))
    assert sum(len(r.accepted) for r in results) == 500 == Event.objects.count()
    assert sum(r.duplicates for r in results) == 300
    assert sum(r.customers_created for r in results) == 37 == Customer.objects.count()
    c0 = Customer.objects.get(external_id="c0")
    assert (c0.first_seen_at, c0.last_seen_at) == (T0, T0 + timedelta(minutes=481))  # n = 0 .. 481 step 37
