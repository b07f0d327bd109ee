"""The Redis client under the Django cache, for what the cache API cannot do in one round trip
(pipelines, counters with expiry, sets)."""
from __future__ import annotations

from django.core.cache import cache


def raw_redis():
    """The write client of django-redis, or None under another cache backend (the embedded
    default's local memory), where callers fall back to the cache API. Keys go through
    `cache.make_key`."""
    client = getattr(cache, "client", None)
    return client.get_client(write=True) if client is not None and hasattr(client, "get_client") else None
