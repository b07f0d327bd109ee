"""Fixtures shared by every test package."""
from __future__ import annotations

from pathlib import Path

import pytest
from rest_framework.test import APIClient

from accounts.choices import ApiScope

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The real datasets (../shared/data). Tests that need them skip in a user's clone."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared datasets are not at {SHARED_DATA} (they are not part of the repository)")
    return SHARED_DATA


@pytest.fixture
def make_api_client(db):
    """make_api_client(scopes=[...]) -> an APIClient that sends a fresh key with those scopes."""
    from accounts.services.api_keys import api_key_create

    def make(scopes=tuple(ApiScope.values), name="test storefront") -> APIClient:
        key, plain = api_key_create(name=name, scopes=list(scopes))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
        client.api_key = key
        client.plain_key = plain
        return client

    return make


@pytest.fixture
def api_client(make_api_client) -> APIClient:
    """A client whose key has every scope."""
    return make_api_client()


@pytest.fixture(autouse=True)
def _clear_cache():
    """Throttle buckets and other cache entries do not leak between tests."""
    from django.core.cache import cache

    # django-redis clear() would flush the whole Redis database, shared with other test
    # processes; delete_pattern only touches this process's key prefix.
    from accounts.services.api_keys import forget_verified_keys

    wipe = (lambda: cache.delete_pattern("*")) if hasattr(cache, "delete_pattern") else cache.clear
    wipe()
    forget_verified_keys()
    yield
    wipe()
    forget_verified_keys()
