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
