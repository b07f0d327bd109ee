"""Export (everything stored about a customer) and erasure (personal data gone, aggregates kept)."""
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from accounts.choices import ConsentSource
from accounts.models import Customer, Event, Feedback
from accounts.services import privacy
from accounts.services.bulk import EventRow, events_store
from accounts.services.feedback import feedback_create

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def mei():
    """A customer with a profile, two events (one purchase with personal properties) and feedback."""
    customer = Customer.objects.create(
        external_id="c-1", email="mei@example.com", name="Li Mei", phone="+86 138 0000 0000",
        attributes={"city": "Shanghai"}, marketing_consent=True, consent_source=ConsentSource.API, consent_at=T0,
    )
    events_store([
        EventRow(event_id="e1", customer="c-1", type="view", occurred_at=T0, item="sku-1", platform="web"),
        EventRow(event_id="e2", customer="c-1", type="purchase", occurred_at=T0, item="sku-1", amount=Decimal("19.90"),
                 quantity=2, platform="web", properties={"ship_to": "1 Nanjing Rd", "order": "A-77"}),
    ])
    feedback_create(customer_external_id="c-1", text="Great shirt, I love it", rating=5, item_external_id="sku-1")
    customer.refresh_from_db()
    return customer


def test_export_holds_profile_events_and_feedback(api_client, mei):
    response = api_client.get("/api/v1/customers/c-1/export/")
    assert response.status_code == 200
    data = response.json()
    assert data["customer"] == "c-1" and data["exported_at"].endswith("Z")
    assert {"profile", "events", "feedback"} <= set(data)
    assert data["profile"]["email"] == "mei@example.com" and data["profile"]["attributes"] == {"city": "Shanghai"}
    assert [e["event_id"] for e in data["events"]] == ["e1", "e2"]
    purchase = data["events"][1]
    assert (purchase["type"], purchase["item"], purchase["amount"], purchase["quantity"]) == ("purchase", "sku-1", "19.90", 2)
    assert purchase["properties"] == {"ship_to": "1 Nanjing Rd", "order": "A-77"}
    assert data["feedback"][0]["text"] == "Great shirt, I love it"
    assert data["feedback"][0]["sentiment_label"] == "positive"


def test_export_sections_come_from_the_registry(mei, monkeypatch):
    """Later apps (tiers, messages, coupons) add a section by registering it."""
    monkeypatch.setattr(privacy, "_EXPORT_SECTIONS", dict(privacy._EXPORT_SECTIONS))
    privacy.export_section("coupons")(lambda customer: [{"code": "X", "customer": customer.external_id}])
    assert privacy.customer_export(customer=mei)["coupons"] == [{"code": "X", "customer": "c-1"}]


def test_export_unknown_customer_is_404_and_needs_customers_read(make_api_client, mei):
    assert make_api_client(["customers:read"]).get("/api/v1/customers/nobody/export/").status_code == 404
    assert make_api_client(["customers:write"]).get("/api/v1/customers/c-1/export/").status_code == 403


def test_erase_removes_personal_data_and_keeps_aggregates(api_client, mei):
    response = api_client.post("/api/v1/customers/c-1/erase/")

    assert response.status_code == 200
    body = response.json()
    assert (body["email"], body["name"], body["phone"], body["attributes"]) == ("", "", "", {})
    assert body["marketing_consent"] is False and body["erased_at"] is not None
    customer = Customer.objects.get(external_id="c-1")
    assert customer.is_erased and not customer.can_be_contacted
    assert customer.consent_source == ConsentSource.API
    # Aggregates stay: the events with their types, items and amounts; ratings and sentiment.
    events = {e.event_id: e for e in Event.objects.filter(customer=customer)}
    assert set(events) == {"e1", "e2"}
    assert (events["e2"].amount, events["e2"].quantity, events["e2"].item.external_id) == (Decimal("19.90"), 2, "sku-1")
    assert all(e.properties == {} for e in events.values())
    feedback = Feedback.objects.get()
    assert feedback.text == "" and feedback.rating == 5 and feedback.sentiment_label == "positive"
    # What the export shows afterwards holds no personal data.
    export = api_client.get("/api/v1/customers/c-1/export/").json()
    assert "mei" not in str(export).lower() and "Nanjing" not in str(export)


def test_erase_is_idempotent(api_client, mei):
    first = api_client.post("/api/v1/customers/c-1/erase/").json()
    second = api_client.post("/api/v1/customers/c-1/erase/")
    assert second.status_code == 200
    assert second.json() == first


def test_erasing_again_scrubs_what_arrived_since(mei):
    erased = privacy.customer_erase(customer=mei)
    events_store([EventRow(event_id="e3", customer="c-1", type="search", occurred_at=T0, properties={"q": "mei's gift"})])

    again = privacy.customer_erase(customer=mei)

    assert again.erased_at == erased.erased_at
    assert Event.objects.get(event_id="e3").properties == {}


def test_erase_by_staff_records_the_source_and_updates_the_callers_instance(mei):
    staff = get_user_model().objects.create_user("ops", password="x")
    result = privacy.customer_erase(customer=mei, by=staff)
    assert result.consent_source == ConsentSource.STAFF
    assert mei.erased_at == result.erased_at and mei.email == ""


def test_erase_needs_customers_write_and_a_known_customer(make_api_client, mei):
    assert make_api_client(["customers:read"]).post("/api/v1/customers/c-1/erase/").status_code == 403
    assert make_api_client(["customers:write"]).post("/api/v1/customers/nobody/erase/").status_code == 404
    assert not Customer.objects.get().is_erased
