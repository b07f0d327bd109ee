"""Storefront API keys: created once (the secret is shown once), hashed at rest, revocable."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

from django.conf import settings

from django.db import transaction
from django.utils import timezone

from crm.core.errors import InvalidInput

from ..choices import ApiScope
from ..models import ApiKey

KEY_PREFIX = "sk"


def key_digest(plain: str) -> str:
    """What is stored of a key. Keys are 256-bit random tokens, so a fast hash is enough (no
    dictionary to attack)."""
    return hashlib.sha256(plain.encode()).hexdigest()


def api_key_parse_scopes(raw: str | list[str]) -> list[str]:
    scopes = [s.strip() for s in (raw.split(",") if isinstance(raw, str) else raw) if s.strip()]
    unknown = [s for s in scopes if s not in ApiScope.values]
    if unknown:
        raise InvalidInput(
            f"Unknown scope(s): {', '.join(unknown)}. Known scopes: {', '.join(ApiScope.values)}.",
            extra={"unknown": unknown},
        )
    if not scopes:
        raise InvalidInput("An API key needs at least one scope.")
    return sorted(set(scopes))


@transaction.atomic
def api_key_create(*, name: str, scopes: list[str] | str, created_by=None) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plain key, which is never stored."""
    if not name.strip():
        raise InvalidInput("An API key needs a name.")
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    plain = f"{KEY_PREFIX}_{prefix}_{secret}"
    key = ApiKey.objects.create(
        name=name.strip(), prefix=prefix, hashed_key=key_digest(plain), scopes=api_key_parse_scopes(scopes), created_by=created_by
    )
    return key, plain


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at", "updated_at"])
    forget_verified_keys(key.hashed_key)  # at once here; other processes within API_KEY_CACHE_SECONDS
    return key


def api_key_verify(plain: str) -> ApiKey | None:
    """The active key matching `plain`, or None."""
    parts = plain.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    key = ApiKey.objects.filter(prefix=parts[1], revoked_at__isnull=True).first()
    if key is None or not hmac.compare_digest(key.hashed_key, key_digest(plain)):
        return None
    return key


# --- verified keys, per process ----------------------------------------------------------------
# Every storefront request authenticates; a verified key is kept in the process for
# API_KEY_CACHE_SECONDS (default 5) so a steady stream costs one query per key per process every
# few seconds, not one per request. Revoking drops the key in the revoking process at once and
# everywhere else within that time; 0 turns the cache off.

_lock = threading.Lock()
_verified: dict[str, tuple[float, ApiKey]] = {}  # digest of the plain key -> (valid until, key)
_MAX_CACHED = 10_000


def forget_verified_keys(digest: str | None = None) -> None:
    """Drop one key (by its stored digest) or every key from this process's cache."""
    with _lock:
        if digest is None:
            _verified.clear()
        else:
            _verified.pop(digest, None)


def api_key_verify_cached(plain: str) -> ApiKey | None:
    """api_key_verify, answered from this process's cache while the entry is fresh."""
    ttl = float(getattr(settings, "API_KEY_CACHE_SECONDS", 5))
    digest = key_digest(plain)
    now = time.monotonic()
    hit = _verified.get(digest)
    if hit is not None and hit[0] > now:
        return hit[1]
    key = api_key_verify(plain)
    if key is not None and ttl > 0:
        with _lock:
            if len(_verified) >= _MAX_CACHED:
                _verified.clear()
            _verified[digest] = (now + ttl, key)
    return key
