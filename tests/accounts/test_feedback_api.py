"""POST /api/v1/feedback/: stored with the sentiment of its text, English and Chinese."""
import pytest

from accounts.models import Customer, Feedback
from recommendations.models import Item

pytestmark = pytest.mark.django_db

URL = "/api/v1/feedback/"


def post(client, body):
    return client.post(URL, body, format="json")


@pytest.mark.parametrize(
    ("text", "label", "language"),
    [
        ("Great quality, fast delivery. I love it!", "positive", "en"),
        ("Terrible. It broke after one day and support was useless.", "negative", "en"),
        ("质量非常好，物流很快，非常满意！", "positive", "zh"),
        ("质量太差了，用了一天就坏了，非常失望。", "negative", "zh"),
    ],
)
def test_sentiment_is_scored_in_english_and_chinese(api_client, text, label, language):
    response = post(api_client, {"customer": "c-1", "text": text})
    assert response.status_code == 201, response.data
    body = response.json()
    assert (body["sentiment_label"], body["language"]) == (label, language)
    assert (body["sentiment_score"] > 0) == (label == "positive")
    stored = Feedback.objects.get()
    assert (stored.text, stored.sentiment_label, stored.language) == (text, label, language)


def test_unknown_customer_and_item_are_created(api_client):
    response = post(api_client, {"customer": "new-c", "text": "Nice", "rating": 4, "item": "sku-new",
                                 "occurred_at": "2026-01-31T08:00:00+08:00"})
    assert response.status_code == 201
    body = response.json()
    assert (body["customer"], body["item"], body["rating"]) == ("new-c", "sku-new", 4)
    assert body["occurred_at"] == "2026-01-31T00:00:00Z"
    assert Customer.objects.filter(external_id="new-c").exists()
    assert Item.objects.get(external_id="sku-new").active is False  # like an unknown item in an event


def test_rating_alone_is_enough_and_has_no_sentiment(api_client):
    response = post(api_client, {"customer": "c-1", "rating": 2})
    assert response.status_code == 201
    assert (response.json()["sentiment_score"], response.json()["sentiment_label"]) == (None, "")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer": "c-1"}, "text"),
        ({"customer": "c-1", "text": "   "}, "text"),
        ({"customer": "c-1", "text": "ok", "rating": 6}, "rating"),
        ({"customer": "c-1", "text": "ok", "rating": 0}, "rating"),
        ({"text": "ok"}, "customer"),
        ({"customer": "c-1", "text": "ok", "occurred_at": "2026-01-31T08:00:00"}, "occurred_at"),
        ({"customer": "c-1", "text": "ok", "occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
        ({"customer": "c-1", "text": "ok", "stars": 5}, "stars"),
    ],
)
def test_invalid_feedback_is_400_naming_the_field(api_client, body, field):
    response = post(api_client, body)
    assert response.status_code == 400
    assert field in response.json()["extra"]["fields"]
    assert not Feedback.objects.exists() and not Customer.objects.exists()


def test_feedback_for_an_erased_customer_is_refused(api_client):
    post(api_client, {"customer": "c-1", "text": "fine"})
    api_client.post("/api/v1/customers/c-1/erase/")
    response = post(api_client, {"customer": "c-1", "text": "My address is 1 Main St"})
    assert response.status_code == 409 and response.json()["code"] == "customer_erased"
    assert list(Feedback.objects.values_list("text", flat=True)) == [""]


def test_needs_customers_write(make_api_client):
    response = post(make_api_client(["customers:read"]), {"customer": "c-1", "text": "hi"})
    assert response.status_code == 403
