"""API-key authentication, per-view scopes and per-key throttling for the storefront API.

Both run on every storefront request, so both avoid I/O where they can (bench/recs_serving.py
measures them under the trivial ping endpoint):

- A verified key is kept in the process for API_KEY_CACHE_SECONDS (default 5; see
  services.api_keys.api_key_verify_cached). `last_used_at` is written at most once a minute
  per key, decided in the process first, then across processes with one cache add.
- The throttle is a sliding-window counter in the cache: the current and previous fixed windows'
  counts, the previous one weighted by how much of it still overlaps the sliding window. On
  Redis that is one pipelined round trip of constant size, where DRF's SimpleRateThrottle reads
  and rewrites a list holding every request of the window (30,000 entries at 500 requests/s).
"""
from __future__ import annotations

import math
import time

from django.core.cache import cache
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling

from crm.core.redis import raw_redis

from ..models import ApiKey
from ..services.api_keys import api_key_verify_cached

_LAST_USED_EVERY = 60  # seconds: write last_used_at at most once a minute per key


class ApiKeyUser:
    """What request.user is for a storefront: the key, acting as an authenticated principal."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, key: ApiKey):
        self.key = key
        self.pk = self.id = f"apikey:{key.pk}"

    def __str__(self) -> str:
        return f"API key {self.key.name}"


_touched: dict[str, float] = {}  # key digest -> monotonic time of this process's last touch


def _touch(key: ApiKey) -> None:
    """Record that the key is in use: at most once a minute per key across all processes."""
    now = time.monotonic()
    last = _touched.get(key.hashed_key)
    if last is not None and now - last < _LAST_USED_EVERY:
        return
    _touched[key.hashed_key] = now
    if cache.add(f"apikey:touched:{key.pk}", 1, _LAST_USED_EVERY):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, plain = header.partition(" ")
        if keyword != self.keyword or not plain.strip():
            raise exceptions.AuthenticationFailed("Authorization header must be 'Api-Key <key>'.")
        key = api_key_verify_cached(plain.strip())
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        _touch(key)
        return ApiKeyUser(key), key

    def authenticate_header(self, request) -> str:
        return self.keyword


class HasScope(permissions.BasePermission):
    """Allows the request when the key carries the view's `required_scope`.

    A view without `required_scope` is closed (fail safe); public views set
    `permission_classes = [AllowAny]` explicitly.
    """

    message = "This API key lacks the required scope."

    def has_permission(self, request, view) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            raise exceptions.NotAuthenticated("Send 'Authorization: Api-Key <key>'.")
        scope = getattr(view, "required_scope", None)
        if isinstance(scope, dict):
            scope = scope.get(request.method)
        if scope is None:
            return False
        if not key.has_scope(scope):
            self.message = f"This API key lacks the scope '{scope}'."
            return False
        return True


# --- throttling --------------------------------------------------------------------------------

def _count(current: str, previous: str, expires: int) -> tuple[int, int]:
    """Add one to the `current` window's counter; return it and the `previous` window's count."""
    redis = raw_redis()
    if redis is not None:  # one pipelined round trip
        pipe = redis.pipeline(transaction=False)
        pipe.incr(cache.make_key(current))
        pipe.expire(cache.make_key(current), expires)
        pipe.get(cache.make_key(previous))
        count, _, before = pipe.execute()
        return int(count), int(before or 0)
    cache.add(current, 0, expires)
    try:
        count = cache.incr(current)
    except ValueError:  # expired between add and incr
        cache.set(current, 1, expires)
        count = 1
    return int(count), int(cache.get(previous) or 0)


def _uncount(current: str) -> None:
    redis = raw_redis()
    if redis is not None:
        redis.decr(cache.make_key(current))
        return
    try:
        cache.decr(current)
    except ValueError:
        pass


class ApiKeyRateThrottle(throttling.BaseThrottle):
    """One bucket per API key (429 with Retry-After when exceeded), rate from
    DEFAULT_THROTTLE_RATES["api_key"] ("1200/min"). Sliding-window counter: the estimate is
    previous window's count x the share of it inside the last `duration` seconds + this
    window's count. Refused requests are not counted, so a throttled client gets back in at
    the configured rate."""

    scope = "api_key"
    THROTTLE_RATES = throttling.SimpleRateThrottle.THROTTLE_RATES

    def __init__(self):
        rate = self.THROTTLE_RATES.get(self.scope)
        self.num_requests, self.duration = throttling.SimpleRateThrottle.parse_rate(self, rate)
        self._wait: float | None = None

    def ident(self, request) -> str:
        key = request.auth
        return str(key.pk) if isinstance(key, ApiKey) else "ip:" + self.get_ident(request)

    def allow_request(self, request, view) -> bool:
        if self.num_requests is None:
            return True
        now = time.time()
        window, into = divmod(now, self.duration)
        prefix = f"throttle:{self.scope}:{self.ident(request)}:"
        current, previous = prefix + str(int(window)), prefix + str(int(window) - 1)
        count, before = _count(current, previous, 2 * self.duration)
        overlap = 1.0 - into / self.duration
        if before * overlap + count <= self.num_requests:
            return True
        _uncount(current)
        self._wait = self._seconds_until_room(count - 1, before, into)
        return False

    def _seconds_until_room(self, count: int, before: int, into: float) -> float:
        """When the estimate drops to num_requests - 1 (room for one more), counting from now."""
        limit, d = self.num_requests - 1, self.duration
        if count <= limit and before:
            # before x (1 - t/d) + count <= limit, for t within this window
            return max(d * (1.0 - (limit - count) / before) - into, 0.0)
        # the next window: count x (1 - t'/d) <= limit
        return (d - into) + d * max(0.0, 1.0 - limit / max(count, 1))

    def wait(self) -> float | None:
        return None if self._wait is None else max(1.0, math.ceil(self._wait))
