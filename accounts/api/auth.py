"""API-key authentication, per-view scopes and per-key throttling for the storefront API."""
from __future__ import annotations

from django.core.cache import cache
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling

from ..models import ApiKey
from ..services.api_keys import api_key_verify

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


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, plain = header.partition(" ")
        if keyword != self.keyword or not plain.strip():
            raise exceptions.AuthenticationFailed("Authorization header must be 'Api-Key <key>'.")
        key = api_key_verify(plain.strip())
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        self._touch(key)
        return ApiKeyUser(key), key

    def authenticate_header(self, request) -> str:
        return self.keyword

    @staticmethod
    def _touch(key: ApiKey) -> None:
        if cache.add(f"apikey:touched:{key.pk}", 1, _LAST_USED_EVERY):
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())


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


class ApiKeyRateThrottle(throttling.SimpleRateThrottle):
    """One bucket per API key (429 with Retry-After when exceeded)."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        key = request.auth
        if isinstance(key, ApiKey):
            return self.cache_format % {"scope": self.scope, "ident": key.pk}
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
