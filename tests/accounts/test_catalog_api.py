"""PUT /api/v1/items/: set-based catalog upsert with per-item rejection."""
from decimal import Decimal

import pytest

from accounts.services.bulk import items_ensure
from recommendations.models import Item

pytestmark = pytest.mark.django_db

URL = "/api/v1/items/"
SHIRT = {"external_id": "sku-1", "title": "Linen shirt", "category": "apparel", "brand": "Aster", "price": "39.90",
         "tags": ["linen", "summer"], "attributes": {"colour": "white"}, "url": "https://shop.example.com/p/sku-1",
         "active": True, "in_stock": True}


def put(client, items):
    return client.put(URL, {"items": items}, format="json")


def test_creates_then_updates_and_counts_each(api_client):
    first = put(api_client, [SHIRT, {"external_id": "sku-2", "title": "Mug", "price": "8"}])
    assert first.status_code == 200
    assert first.json() == {"created": 2, "updated": 0, "rejected": []}
    item = Item.objects.get(external_id="sku-1")
    assert (item.title, item.category, item.brand, item.price) == ("Linen shirt", "apparel", "Aster", Decimal("39.90"))
    assert item.tags == ["linen", "summer"] and item.attributes == {"colour": "white"}
    assert Item.objects.get(external_id="sku-2").price == Decimal("8.00")

    again = put(api_client, [{**SHIRT, "price": "29.90"}, {"external_id": "sku-3", "title": "Cap"}])
    assert again.json() == {"created": 1, "updated": 1, "rejected": []}
    assert Item.objects.get(external_id="sku-1").price == Decimal("29.90")
    assert Item.objects.count() == 3


def test_fields_left_out_keep_their_value(api_client):
    put(api_client, [SHIRT])
    put(api_client, [{"external_id": "sku-1", "in_stock": False}])
    item = Item.objects.get()
    assert item.in_stock is False
    assert (item.title, item.price, item.tags) == ("Linen shirt", Decimal("39.90"), ["linen", "summer"])


def test_item_created_inactive_by_an_event_is_activated_by_the_catalog(api_client):
    items_ensure(["sku-9", "sku-10"])  # what the ingest of an event with an unknown item does
    assert not Item.objects.filter(active=True).exists()

    response = put(api_client, [{"external_id": "sku-9", "title": "Found it"},
                                {"external_id": "sku-10", "title": "Retired", "active": False}])

    assert response.json() == {"created": 0, "updated": 2, "rejected": []}
    assert Item.objects.get(external_id="sku-9").active is True
    assert Item.objects.get(external_id="sku-10").active is False


def test_bad_items_are_rejected_one_by_one_and_the_good_ones_stored(api_client):
    response = put(api_client, [
        SHIRT,
        {"external_id": "sku-2", "price": "-1"},
        {"external_id": "sku-3", "price": "cheap"},
        {"external_id": "sku-4", "tags": "linen"},
        {"external_id": "sku-5", "url": "not a url"},
        {"title": "no id"},
        "not an object",
        {"external_id": "sku-6", "colour": "red"},
        {"external_id": "sku-1", "title": "again"},
        {"external_id": "sku-7", "tags": ["ok", ""]},
    ])
    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["updated"]) == (1, 0)
    rejected = {r["index"]: r for r in body["rejected"]}
    assert set(rejected) == {1, 2, 3, 4, 5, 6, 7, 8, 9}
    assert "price" in rejected[1]["errors"] and rejected[1]["external_id"] == "sku-2"
    assert "price" in rejected[2]["errors"]
    assert "tags" in rejected[3]["errors"]
    assert "url" in rejected[4]["errors"]
    assert "external_id" in rejected[5]["errors"] and rejected[5]["external_id"] is None
    assert "non_field_errors" in rejected[6]["errors"]
    assert "colour" in rejected[7]["errors"]
    assert rejected[8]["errors"] == {"external_id": ["Repeats the item at index 0."]}
    assert "tags.1" in rejected[9]["errors"]
    assert list(Item.objects.values_list("external_id", "title")) == [("sku-1", "Linen shirt")]


def test_a_batch_is_a_few_statements_not_one_per_item(api_client, django_assert_max_num_queries):
    items = [{"external_id": f"sku-{n}", "title": f"Item {n}", "price": "1.00"} for n in range(300)]
    put(api_client, items[:100])
    # auth + throttle + savepoints aside, the store is one read and one upsert per 500 items.
    with django_assert_max_num_queries(12):
        response = put(api_client, items)
    assert response.json() == {"created": 200, "updated": 100, "rejected": []}


def test_more_than_1000_items_is_413(api_client):
    response = put(api_client, [{"external_id": f"sku-{n}"} for n in range(1001)])
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert "1000" in response.json()["message"]
    assert not Item.objects.exists()


@pytest.mark.parametrize("body", [{"products": []}, {"items": {"external_id": "x"}}, ["x"]])
def test_body_without_an_items_list_is_400(api_client, body):
    response = api_client.put(URL, body, format="json")
    assert response.status_code == 400
    assert "items" in response.json()["message"]


def test_malformed_json_is_400(api_client):
    response = api_client.put(URL, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_needs_catalog_write(make_api_client):
    response = put(make_api_client(["customers:write", "events:write"]), [SHIRT])
    assert response.status_code == 403
    assert not Item.objects.exists()
