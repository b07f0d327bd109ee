"""Storefront API of segmentation: a customer's tiers with VIP status, dimensions and segments."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from accounts.services.bulk import EventRow, events_store
from segmentation.models import Segment
from segmentation.services import recompute_run_create, recompute_tiers

pytestmark = pytest.mark.django_db

AS_OF = datetime(2026, 6, 30, 12, tzinfo=UTC)


@pytest.fixture
def tiered():
    """Ten customers: c0..c8 bought once long ago, big spender c9 bought often and recently."""
    rows = [EventRow(event_id=f"p{i}", customer=f"c{i}", type="purchase", occurred_at=AS_OF - timedelta(days=200),
                     amount=Decimal("10.00"), quantity=1) for i in range(9)]
    rows += [EventRow(event_id=f"vip{k}", customer="c9", type="purchase", occurred_at=AS_OF - timedelta(days=k * 30 + 1),
                      amount=Decimal("500.00"), quantity=1) for k in range(6)]
    events_store(rows)
    recompute_tiers(run=recompute_run_create(as_of=AS_OF))


def test_customer_tiers_lists_one_entry_per_dimension_with_vip_and_service_level(api_client, tiered):
    response = api_client.get("/api/v1/customers/c9/tiers/")
    assert response.status_code == 200
    by_dim = {t["dimension"]: t for t in response.json()}
    assert set(by_dim) == {"behaviour", "value", "lifecycle", "rfm"}
    assert by_dim["value"]["tier"] == "high" and by_dim["value"]["is_vip"] is True
    assert "2 hours" in by_dim["value"]["service_level"]
    assert by_dim["behaviour"]["tier"] == "active"
    assert by_dim["rfm"]["tier"] == "champions"
    assert set(by_dim["value"]) == {"dimension", "tier", "tier_name", "since", "is_vip", "service_level", "overridden"}


def test_customer_get_includes_tiers_and_vip_flag(api_client, tiered):
    body = api_client.get("/api/v1/customers/c0/").json()
    assert body["is_vip"] is False
    assert {t["dimension"]: t["tier"] for t in body["tiers"]}["behaviour"] == "churned"


def test_unknown_customer_is_404_and_scope_is_enforced(api_client, make_api_client, tiered):
    assert api_client.get("/api/v1/customers/nobody/tiers/").status_code == 404
    events_only = make_api_client(scopes=["events:write"])
    assert events_only.get("/api/v1/customers/c9/tiers/").status_code == 403
    assert events_only.get("/api/v1/dimensions/").status_code == 403


def test_dimensions_list_counts_every_customer_once_per_dimension(api_client, tiered):
    dims = api_client.get("/api/v1/dimensions/").json()
    assert [d["slug"] for d in dims] == ["behaviour", "value", "lifecycle", "rfm"]
    for dim in dims:
        assert sum(t["customers"] for t in dim["tiers"]) == 10
    value = next(d for d in dims if d["slug"] == "value")
    assert {t["slug"]: t["customers"] for t in value["tiers"]}["high"] == 1


def test_segments_list_counts_matching_customers(api_client, tiered):
    Segment.objects.create(slug="big", name="Big spenders", rule={"field": "revenue_total", "op": ">=", "value": 1000})
    body = api_client.get("/api/v1/segments/").json()
    assert body == [{"slug": "big", "name": "Big spenders", "description": "",
                     "rule": {"field": "revenue_total", "op": ">=", "value": 1000}, "customers": 1, "error": ""}]


def test_a_segment_whose_rule_broke_is_listed_with_its_error_and_the_others_with_sizes(api_client, tiered):
    """A tier named by a rule was removed after the segment was saved: the list still answers."""
    Segment.objects.create(slug="big", name="Big spenders", rule={"field": "revenue_total", "op": ">=", "value": 1000})
    Segment.objects.create(slug="gone", name="Gone tier", rule={"field": "tier:value", "op": "=", "value": "platinum"})
    response = api_client.get("/api/v1/segments/")
    assert response.status_code == 200
    by_slug = {s["slug"]: s for s in response.json()}
    assert by_slug["big"]["customers"] == 1 and by_slug["big"]["error"] == ""
    assert by_slug["gone"]["customers"] is None
    assert "platinum" in by_slug["gone"]["error"]
