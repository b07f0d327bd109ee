"""GET /healthz names what is down."""
import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


@override_settings(CELERY_TASK_ALWAYS_EAGER=True)
def test_healthy_embedded_default_reports_every_component(client):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok" and body["down"] == []
    assert set(body["components"]) == {"database", "cache", "broker", "worker"}
    assert body["components"]["worker"]["mode"] == "in-process"


@override_settings(
    CELERY_TASK_ALWAYS_EAGER=True,
    CACHES={"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0",
                        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5}}},
)
def test_unreachable_cache_gives_503_naming_it(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["down"] == ["cache"]
    assert "Connection" in response.json()["components"]["cache"]["error"]


@override_settings(CELERY_TASK_ALWAYS_EAGER=False, CELERY_BROKER_URL="redis://127.0.0.1:1/0")
def test_unreachable_broker_gives_503_naming_broker_and_worker(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["down"] == ["broker", "worker"]


def test_database_error_is_reported(client, monkeypatch):
    from crm.core import health

    def broken():
        raise RuntimeError("connection refused")

    monkeypatch.setitem(health.CHECKS, "database", broken)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "database" in response.json()["down"]
    assert response.json()["components"]["database"]["error"] == "RuntimeError: connection refused"
