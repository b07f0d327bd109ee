"""The WSGI application: staff pages and the admin with the full middleware stack, and the
storefront API (/api/v1/) with only the middleware it uses.

A storefront request authenticates with its API key and never reads a session, a CSRF token,
a message or a login lockout, yet each of those middlewares costs something on every request:
about 0.2 ms of the 1-2 ms a cached recommendation or a ping costs (bench/recs_serving.py).
So /api/v1/ goes through a second handler built from settings.API_MIDDLEWARE: the same
project, URLs and settings, a shorter chain. Everything else (including the API's schema and
docs pages, which staff open in a browser) takes settings.MIDDLEWARE.

Django's test client always builds its own handler from settings.MIDDLEWARE; the tests of
this module call the application itself.
"""
from __future__ import annotations

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

API_PREFIX = "/api/v1/"


class _ApiHandler(WSGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler.load_middleware reads settings.MIDDLEWARE; it runs once, at start-up,
        # before the server takes requests.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


class StratumWSGIApplication:
    def __init__(self) -> None:
        self.site = WSGIHandler()
        self.api = _ApiHandler()

    def __call__(self, environ, start_response):
        handler = self.api if environ.get("PATH_INFO", "").startswith(API_PREFIX) else self.site
        return handler(environ, start_response)
