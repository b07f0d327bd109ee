"""Serving: GET /api/v1/customers/{id}/recommendations/ and /items/{id}/similar/ — seen items,
filters, availability, cold start, tier rules, cache and its invalidation through the real
ingest path, the customer's events since training, API errors."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from accounts.models import Customer
from recommendations.models import Item
from recommendations.serving import customer_cache_key, customer_recommendations
from recommendations.services import recommender_activate, recommender_train, tier_rule_create
from segmentation.models import Membership, Tier

from .conftest import DAY, customer, event

pytestmark = pytest.mark.django_db
URL = "/api/v1/customers/{}/recommendations/"


def recs(client, ext: str, **params) -> dict:
    response = client.get(URL.format(ext), params)
    assert response.status_code == 200, response.content
    return response.json()


def ids(data: dict) -> list[str]:
    return [x["item"] for x in data["items"]]


def bought(c: Customer) -> set[str]:
    return set(c.events.filter(type="purchase").values_list("item__external_id", flat=True))


# --- personal recommendations --------------------------------------------------------------------

def test_a_reader_gets_books_they_have_not_bought_with_reasons_and_a_rec_id(api_client, trained, shop):
    reader = shop["readers"][3]
    data = recs(api_client, "reader-3", limit=3)
    assert data["known_customer"] is True
    assert data["model"] == trained.pk
    assert data["rec_id"].startswith(f"m{trained.pk}.x0.")
    assert len(data["items"]) == 3
    assert all(x["category"] == "Books" for x in data["items"])
    assert not set(ids(data)) & bought(reader)  # seen (bought) items are excluded
    first = data["items"][0]
    assert first["reason_code"] == "bought" and first["reason"].startswith("Because you bought ")
    assert first["reason_item"] in bought(reader)


def test_items_already_bought_come_back_when_the_configuration_allows_it(api_client, trained, shop):
    trained.serving_config = {"exclude_purchased": False, "category_cap": 0}
    trained.save()
    Item.objects.exclude(category="Books").update(active=False)
    from recommendations.model_store import state_changed

    state_changed()
    data = recs(api_client, "reader-3", limit=12)
    assert set(ids(data)) & bought(shop["readers"][3])


def test_category_cap_spreads_the_list_over_categories(api_client, trained):
    data = recs(api_client, "reader-3", limit=5)
    cats = [x["category"] for x in data["items"]]
    assert cats.count("Books") == 3  # default cap 3, then the next categories
    assert len(cats) == 5


# --- filters -------------------------------------------------------------------------------------

def test_category_filter_returns_only_that_category(api_client, trained):
    data = recs(api_client, "reader-3", category="Sports", limit=5)
    assert len(data["items"]) == 5
    assert {x["category"] for x in data["items"]} == {"Sports"}


def test_exclude_leaves_out_the_given_items(api_client, trained):
    first = ids(recs(api_client, "reader-3", limit=2))
    data = recs(api_client, "reader-3", limit=5, exclude=",".join(first))
    assert not set(first) & set(ids(data))


def test_inactive_and_out_of_stock_items_are_never_recommended(api_client, trained, shop):
    top = ids(recs(api_client, "reader-3", limit=2))
    Item.objects.filter(external_id=top[0]).update(active=False)
    Item.objects.filter(external_id=top[1]).update(in_stock=False)
    data = recs(api_client, "reader-3", limit=10)
    assert not set(top) & set(ids(data))
    similar = api_client.get(f"/api/v1/items/{top[0]}/similar/").json()  # the item exists, still answers
    assert top[1] not in ids(similar)


# --- cold start ----------------------------------------------------------------------------------

def test_an_unknown_customer_gets_cold_start_recommendations_not_an_error(api_client, trained):
    data = recs(api_client, "never-seen", limit=4)
    assert data["known_customer"] is False and data["strategy"] == "cold_start"
    assert len(data["items"]) == 4
    assert {x["reason_code"] for x in data["items"]} <= {"trending", "popular"}
    assert any(x["reason"].startswith("Trending in ") for x in data["items"])
    assert not Customer.objects.filter(external_id="never-seen").exists()  # reading creates nobody


def test_a_new_customer_gets_what_is_popular_in_their_tier(api_client, shop, dimensions):
    vip = Tier.objects.get(dimension__slug="value", slug="high")
    for runner in shop["runners"]:  # the VIPs are the runners
        Membership.objects.create(customer=runner, dimension=vip.dimension, tier=vip, since=timezone.now())
    model = recommender_activate(model=recommender_train(algorithm="ease", params={"l2": 10}, holdout_days=0))
    newcomer = customer("newcomer")
    Membership.objects.create(customer=newcomer, dimension=vip.dimension, tier=vip, since=timezone.now())
    data = recs(api_client, "newcomer", limit=3)
    assert data["model"] == model.pk and data["strategy"] == "cold_start" and data["known_customer"] is True
    assert all(x["category"] == "Sports" for x in data["items"])
    assert data["items"][0]["reason"] == "Popular with VIP customers"


def test_a_tier_reason_names_the_tier_in_the_language_it_is_shown_in(shop, dimensions):
    """Reasons are text for people: "Popular with <tier> customers" in Chinese names the tier by
    its Chinese name (its translations), in English by its stored name, from the same cached list."""
    from django.utils import translation

    mid = Tier.objects.get(dimension__slug="value", slug="mid")
    mid.name, mid.translations = "Regulars", {"zh-hans": {"name": "常客"}}
    mid.save()
    for runner in shop["runners"]:
        Membership.objects.create(customer=runner, dimension=mid.dimension, tier=mid, since=timezone.now())
    recommender_activate(model=recommender_train(algorithm="ease", params={"l2": 10}, holdout_days=0))
    newcomer = customer("newcomer")
    Membership.objects.create(customer=newcomer, dimension=mid.dimension, tier=mid, since=timezone.now())
    with translation.override("zh-hans"):
        zh = customer_recommendations(external_id="newcomer", limit=2)["items"][0]
    en = customer_recommendations(external_id="newcomer", limit=2)["items"][0]
    assert zh["reason_code"] == en["reason_code"] == "tier_popular"
    assert "常客" in zh["reason"] and "Regulars" not in zh["reason"] and "Popular" not in zh["reason"]
    assert en["reason"] == "Popular with Regulars customers"


def test_events_since_training_count_without_retraining(api_client, trained, shop):
    """A customer unknown at training time views sports items: sports come back, explained."""
    late = customer("late-runner")
    event(late, shop["sports"][0], "view", at=timezone.now() - timedelta(hours=1))
    event(late, shop["sports"][1], "add_to_cart", at=timezone.now() - timedelta(minutes=5))
    data = recs(api_client, "late-runner", limit=3, category="Sports")
    assert data["strategy"] != "cold_start"
    assert {x["reason_code"] for x in data["items"]} <= {"viewed", "carted"}
    assert any(x["reason"].startswith(("Similar to Sport", "Because you added Sport")) for x in data["items"])


# --- tier rules ----------------------------------------------------------------------------------

def test_tier_rules_boost_a_category_and_pin_an_item(api_client, trained, shop, dimensions):
    low = Tier.objects.get(dimension__slug="value", slug="low")
    reader = shop["readers"][3]
    Membership.objects.create(customer=reader, dimension=low.dimension, tier=low, since=timezone.now())
    before = recs(api_client, "reader-3", limit=3)
    assert all(x["category"] == "Books" for x in before["items"])

    tier_rule_create(tier=low, action="boost", category="Toys", weight=3.0)
    boosted = recs(api_client, "reader-3", limit=3)
    assert boosted["items"][0]["category"] == "Toys"

    pinned_item = shop["sports"][7]
    tier_rule_create(tier=low, action="pin", item=pinned_item)
    pinned = recs(api_client, "reader-3", limit=3)
    assert pinned["items"][0]["item"] == pinned_item.external_id
    assert pinned["items"][0]["reason_code"] == "pinned"
    assert pinned["items"][0]["reason"] == f"Picked for {low.name} customers"
    other = recs(api_client, "reader-4", limit=3)  # not in the tier: untouched
    assert pinned_item.external_id not in ids(other)


# --- cache ---------------------------------------------------------------------------------------

def test_a_cache_hit_does_no_database_query(trained, django_assert_num_queries):
    customer_recommendations(external_id="reader-3", limit=5)
    with django_assert_num_queries(1):  # RECS_CATALOG_TTL=0 in tests: only the catalog refresh
        customer_recommendations(external_id="reader-3", limit=5)


def test_a_new_event_through_the_ingest_api_invalidates_the_customer_cache(api_client, trained, shop,
                                                                           django_capture_on_commit_callbacks):
    first = recs(api_client, "reader-3", limit=1)["items"][0]["item"]
    assert cache.get(customer_cache_key("reader-3"))
    # Without ingest (a direct insert), the cached answer stands: the cache is in effect.
    event(shop["readers"][3], Item.objects.get(external_id=first), "purchase")
    assert recs(api_client, "reader-3", limit=1)["items"][0]["item"] == first

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/api/v1/events/", {"events": [{
            "event_id": "ingested-1", "customer": "reader-3", "type": "view", "item": "toy-0",
            "occurred_at": (timezone.now() - DAY).isoformat()}]}, format="json")
    assert response.status_code in (200, 201, 207), response.content
    # The entry made before the event is gone; what is there now is the ready list a worker
    # (in process in tests) re-made with the event (tests/recommendations/test_ready.py).
    assert all(p.get("ready") for p in (cache.get(customer_cache_key("reader-3")) or {}).values())
    after = recs(api_client, "reader-3", limit=5)
    assert first not in ids(after)  # the purchase is now seen


def test_other_customers_cache_survives_an_ingest(api_client, trained, django_capture_on_commit_callbacks):
    recs(api_client, "reader-3", limit=1)
    recs(api_client, "reader-4", limit=1)
    before = cache.get(customer_cache_key("reader-3")), cache.get(customer_cache_key("reader-4"))
    with django_capture_on_commit_callbacks(execute=True):
        api_client.post("/api/v1/events/", {"events": [{
            "event_id": "ingested-2", "customer": "reader-3", "type": "view", "item": "toy-0",
            "occurred_at": timezone.now().isoformat()}]}, format="json")
    assert cache.get(customer_cache_key("reader-3")) != before[0]  # dropped (and re-made as a ready list)
    assert cache.get(customer_cache_key("reader-4")) == before[1]


def test_a_tier_change_drops_the_customer_cache_so_tier_rules_apply_at_once(
        api_client, trained, shop, dimensions, django_capture_on_commit_callbacks):
    """A pin to a tier with a boost rule (an override, as customer service sets it) changes the
    list on the next request, not when the cache entry ages out."""
    from segmentation.services import tier_override_create

    low = Tier.objects.get(dimension__slug="value", slug="low")
    tier_rule_create(tier=low, action="boost", category="Toys", weight=3.0)
    before = recs(api_client, "reader-3", limit=3)
    assert all(x["category"] == "Books" for x in before["items"])  # not in the tier yet
    recs(api_client, "reader-4", limit=3)
    with django_capture_on_commit_callbacks(execute=True):
        tier_override_create(customer=shop["readers"][3], tier=low, reason="test", expires_at=timezone.now() + DAY)
    assert cache.get(customer_cache_key("reader-3")) is None
    assert cache.get(customer_cache_key("reader-4"))  # others keep theirs
    assert recs(api_client, "reader-3", limit=3)["items"][0]["category"] == "Toys"


def test_a_run_changing_very_many_tiers_retires_every_cached_list_at_once(api_client, trained, shop, dimensions,
                                                                          monkeypatch):
    from recommendations import serving
    from segmentation.models import TierChange

    low = Tier.objects.get(dimension__slug="value", slug="low")
    recs(api_client, "reader-3", limit=1)
    key = customer_cache_key("reader-3")
    entry = cache.get(key)
    assert entry
    for c in shop["readers"][:3]:
        TierChange.objects.create(customer=c, dimension=low.dimension, to_tier=low, at=timezone.now(), cause="rule")
    monkeypatch.setattr(serving, "TIER_INVALIDATE_ONE_BY_ONE", 2)
    serving.on_tiers_changed(changes=TierChange.objects.all())
    assert cache.get(key) == entry  # the entry itself stays (it ages out of Redis) ...
    recs(api_client, "reader-3", limit=1)
    assert len(cache.get(key)) == len(entry) + 1  # ... but no request reads it: a new signature


# --- similar items -------------------------------------------------------------------------------

def test_similar_items_of_a_book_are_books(api_client, trained):
    response = api_client.get("/api/v1/items/book-1/similar/?limit=4")
    assert response.status_code == 200
    data = response.json()
    assert len(data["items"]) == 4 and "book-1" not in ids(data)
    assert {x["category"] for x in data["items"]} == {"Books"}
    assert data["items"][0]["reason_code"] == "similar" and data["items"][0]["reason_item"] == "book-1"


def test_a_new_item_gets_popular_items_of_its_category(api_client, trained):
    Item.objects.create(external_id="book-new", title="Brand new book", category="Books")
    data = api_client.get("/api/v1/items/book-new/similar/?limit=3").json()
    assert [x["reason_code"] for x in data["items"]] == ["same_category"] * 3


# --- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("limit", ["0", "101", "ten", "-3", "1.5"])
def test_a_bad_limit_is_a_400_with_a_message(api_client, trained, limit):
    response = api_client.get(URL.format("reader-3"), {"limit": limit})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and "limit" in body["message"] and "limit" in body["extra"]["fields"]


def test_an_unknown_category_is_a_400_naming_it(api_client, trained):
    response = api_client.get(URL.format("reader-3"), {"category": "Garden"})
    assert response.status_code == 400
    assert "Unknown category 'Garden'" in response.json()["message"]
    assert "Books" in response.json()["message"]


def test_unknown_item_is_a_404(api_client, trained):
    response = api_client.get("/api/v1/items/nope/similar/")
    assert response.status_code == 404 and "nope" in response.json()["message"]


def test_the_scope_recommendations_read_is_required(make_api_client, trained):
    client = make_api_client(scopes=["events:write"])
    response = client.get(URL.format("reader-3"))
    assert response.status_code == 403 and "recommendations:read" in response.json()["message"]
    assert make_api_client(scopes=["recommendations:read"]).get(URL.format("reader-3")).status_code == 200


def test_without_an_active_model_the_api_says_so(api_client, shop):
    response = api_client.get(URL.format("reader-3"))
    assert response.status_code == 503 and response.json()["code"] == "no_active_model"


def test_ping_answers_any_valid_key_and_refuses_none(make_api_client, client):
    assert make_api_client(scopes=["events:write"]).get("/api/v1/ping/").json() == {"ok": True}
    assert client.get("/api/v1/ping/").status_code in (401, 403)


def test_campaign_emails_get_the_same_recommendations_as_plain_values(trained, shop):
    """campaigns.rendering's default recommender uses recommendations_for_customers."""
    from campaigns.rendering import recommendations_for

    reader = shop["readers"][3]
    Item.objects.filter(category="Books").update(url="https://shop.example/b", price=Decimal("12.50"))
    recs = recommendations_for([reader.pk])[reader.pk]
    assert 1 <= len(recs) <= 3
    assert all(r["category"] == "Books" and r["url"] == "https://shop.example/b" and r["price"] == "12.50" for r in recs)
    assert all(set(r) == {"title", "url", "price", "category"} for r in recs)


@pytest.mark.django_db(transaction=True)  # so that the connection can be closed and opened again
def test_the_context_query_is_prepared_once_per_database_session(trained):
    """PostgreSQL: the serving query is prepared on first use in a session, executed after, and
    prepared again in a new session (a dropped connection, a restarted server)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are used on PostgreSQL only")
    first = customer_recommendations(external_id="reader-3", limit=5, use_cache=False)
    with connection.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM pg_prepared_statements WHERE name = 'stratum_recs_context'")
        assert cur.fetchone()[0] == 1
    connection.close()  # what a dropped connection or CONN_MAX_AGE leads to
    assert ids(customer_recommendations(external_id="reader-3", limit=5, use_cache=False)) == ids(first)
