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
    # The sliding window weighs the previous minute by its overlap, so the wait can run into
    # the minute after next, never further.
    assert 0 < retry_after <= 120
    assert body["extra"]["retry_after_seconds"] >= retry_after
    assert not Event.objects.filter(event_id="z-0").exists()
    # Another storefront's key has its own bucket.
    assert other.post(URL, batch(1, "w"), format="json").status_code == 200


def test_the_throttle_window_slides_the_previous_minute_weighs_in_by_its_overlap(make_api_client, monkeypatch):
    """Sliding-window counter: 4 requests late in one minute still count for most of the next one."""
    import accounts.api.auth as auth

    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "4/min"})
    client = make_api_client()
    clock = {"now": 6_000_000 * 60 + 50.0}  # 50 s into a minute
    monkeypatch.setattr(auth.time, "time", lambda: clock["now"])
    for _ in range(4):
        assert client.get("/api/v1/ping/").status_code == 200
    assert client.get("/api/v1/ping/").status_code == 429
    clock["now"] += 15  # 5 s into the next minute: 4 x 55/60 = 3.7 still in the window, room for none
    response = client.get("/api/v1/ping/")
    assert response.status_code == 429
    # Room once 4 x (1 - t/60) <= 3, i.e. at t = 15 s: 10 s from now.
    assert int(response["Retry-After"]) == 10
    clock["now"] += 10
    assert client.get("/api/v1/ping/").status_code == 200


def test_refused_requests_do_not_count_so_a_throttled_client_gets_back_in(make_api_client, monkeypatch):
    import accounts.api.auth as auth

    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "2/min"})
    client = make_api_client()
    clock = {"now": 6_000_000 * 60 + 1.0}
    monkeypatch.setattr(auth.time, "time", lambda: clock["now"])
    assert [client.get("/api/v1/ping/").status_code for _ in range(2)] == [200, 200]
    assert {client.get("/api/v1/ping/").status_code for _ in range(20)} == {429}  # hammering while refused
    clock["now"] += 60 + 59  # next minute, 59 s in: 2 x 1/60 of the previous one still counts
    assert client.get("/api/v1/ping/").status_code == 200


def test_a_verified_key_is_trusted_for_a_few_seconds_without_a_query(make_api_client, settings, django_assert_num_queries):
    from accounts.services import api_keys

    client = make_api_client()
    assert client.get("/api/v1/ping/").status_code == 200  # verifies and writes last_used_at
    with django_assert_num_queries(0):
        assert client.get("/api/v1/ping/").status_code == 200
    # Revoked by another process (a plain UPDATE, as the admin of another host would do):
    # trusted here until the entry expires, then refused.
    ApiKey.objects.filter(pk=client.api_key.pk).update(revoked_at=timezone.now())
    assert client.get("/api/v1/ping/").status_code == 200
    for digest, (until, key) in list(api_keys._verified.items()):
        api_keys._verified[digest] = (0.0, key)  # expire the entry
    assert_error(client.get("/api/v1/ping/"), 401, "authentication_failed")


def test_with_the_key_cache_off_every_request_checks_the_database(make_api_client, settings):
    settings.API_KEY_CACHE_SECONDS = 0
    client = make_api_client()
    assert client.get("/api/v1/ping/").status_code == 200
    ApiKey.objects.filter(pk=client.api_key.pk).update(revoked_at=timezone.now())
    assert_error(client.get("/api/v1/ping/"), 401, "authentication_failed")
