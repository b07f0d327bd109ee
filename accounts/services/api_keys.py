"""Storefront API keys: created once (the secret is shown once), hashed at rest, revocable."""
from __future__ import annotations

import hashlib
import hmac
import secrets

from django.db import transaction
from django.utils import timezone

from crm.core.errors import InvalidInput

from ..choices import ApiScope
from ..models import ApiKey

KEY_PREFIX = "sk"


def _hash(secret: str) -> str:
    # Keys are 256-bit random tokens, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(secret.encode()).hexdigest()


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
        name=name.strip(), prefix=prefix, hashed_key=_hash(plain), scopes=api_key_parse_scopes(scopes), created_by=created_by
    )
    return key, plain


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at", "updated_at"])
    return key


def api_key_verify(plain: str) -> ApiKey | None:
    """The active key matching `plain`, or None."""
    parts = plain.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    key = ApiKey.objects.filter(prefix=parts[1], revoked_at__isnull=True).first()
    if key is None or not hmac.compare_digest(key.hashed_key, _hash(plain)):
        return None
    return key
