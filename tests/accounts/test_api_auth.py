"""Storefront API authentication: API keys (401), scopes (403) and per-key throttling (429)."""
from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.api.auth import ApiKeyRateThrottle
from accounts.models import ApiKey, Event
from accounts.services.api_keys import api_key_revoke
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/"


def batch(n: int = 1, prefix: str = "a") -> dict:
    at = timezone.now().isoformat()
    return {"events": [{"event_id": f"{prefix}-{i}", "customer": "c1", "type": "login", "occurred_at": at}
                       for i in range(n)]}


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "extra"} and body["code"] == code
    return body


def test_a_request_without_a_key_is_401_and_says_how_to_authenticate():
    response = APIClient().post(URL, batch(), format="json")
    body = assert_error(response, 401, "not_authenticated")
    assert "Api-Key" in body["message"]
    assert response["WWW-Authenticate"] == "Api-Key"
    assert Event.objects.count() == 0


@pytest.mark.parametrize("header", [
    "Api-Key sk_deadbeef_not-a-real-secret",
    "Api-Key nonsense",
    "Bearer sk_deadbeef_x",
    "Api-Key",
])
def test_a_bad_key_is_401(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert_error(client.post(URL, batch(), format="json"), 401, "authentication_failed")
    assert Event.objects.count() == 0


def test_a_right_prefix_with_a_wrong_secret_is_401(make_api_client):
    good = make_api_client()
    _, prefix, _ = good.plain_key.split("_", 2)
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION=f"Api-Key sk_{prefix}_{'A' * 43}")
    assert_error(forged.post(URL, batch(), format="json"), 401, "authentication_failed")


def test_a_revoked_key_is_401(make_api_client):
    client = make_api_client(scopes=["events:write"])
    assert client.post(URL, batch(1, "before"), format="json").status_code == 200
    api_key_revoke(key=client.api_key)
    body = assert_error(client.post(URL, batch(1, "after"), format="json"), 401, "authentication_failed")
    assert "revoked" in body["message"]
    assert list(Event.objects.values_list("event_id", flat=True)) == ["before-0"]


def test_a_key_without_the_events_scope_is_403_naming_the_scope(make_api_client):
    client = make_api_client(scopes=["customers:read", "catalog:write"])
    body = assert_error(client.post(URL, batch(), format="json"), 403, "permission_denied")
    assert "events:write" in body["message"]
    assert Event.objects.count() == 0


def test_a_key_with_only_the_events_scope_may_ingest(make_api_client):
    client = make_api_client(scopes=["events:write"])
    assert client.post(URL, batch(), format="json").json()["accepted"] == 1
    assert ApiKey.objects.get(pk=client.api_key.pk).last_used_at is not None


def test_throttling_is_per_key_and_answers_429_with_retry_after(make_api_client, monkeypatch):
    # DRF reads THROTTLE_RATES from settings once, at import: patch the class attribute.
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "2/min"})
    client, other = make_api_client(name="shop"), make_api_client(name="app")
    assert client.post(URL, batch(1, "x"), format="json").status_code == 200
    assert client.post(URL, batch(1, "y"), format="json").status_code == 200
    response = client.post(URL, batch(1, "z"), format="json")
    body = assert_error(response, 429, "throttled")
    retry_after = int(response["Retry-After"])
    assert 0 < retry_after <= 60
    assert body["extra"]["retry_after_seconds"] >= retry_after
    assert not Event.objects.filter(event_id="z-0").exists()
    # Another storefront's key has its own bucket.
    assert other.post(URL, batch(1, "w"), format="json").status_code == 200
