"""The WSGI application: the storefront API through its short middleware chain, staff pages
through the full one (the test client always uses the full one, so these call the app)."""
from __future__ import annotations

import io
import sys

import pytest

from crm.wsgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def call(path: str, headers: dict | None = None, method: str = "GET") -> tuple[str, dict, bytes]:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "testserver",
               "SERVER_PORT": "80", "HTTP_HOST": "testserver", "wsgi.input": io.BytesIO(b""),
               "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, **(headers or {})}
    seen = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(response_headers)

    body = b"".join(application(environ, start_response))
    return seen["status"], seen["headers"], body


def test_the_storefront_api_answers_through_its_short_chain(make_api_client):
    plain = make_api_client().plain_key
    status, headers, body = call("/api/v1/ping/", {"HTTP_AUTHORIZATION": f"Api-Key {plain}"})
    assert status.startswith("200") and body == b'{"ok":true}'
    assert headers["X-Frame-Options"] == "DENY"  # security headers stay
    assert "Set-Cookie" not in headers
    assert "Cookie" not in headers.get("Vary", "")  # no session was looked at
    # Errors are the API's own, translated by Accept-Language (locale middleware kept).
    status, _, body = call("/api/v1/ping/", {"HTTP_ACCEPT_LANGUAGE": "zh-hans"})
    assert status.startswith("401") and b"Api-Key" in body
    assert "CsrfViewMiddleware" not in _view_middleware(application.api)


def test_staff_pages_keep_the_full_chain():
    status, headers, _ = call("/login/")
    assert status.startswith("200")
    assert "csrftoken" in headers.get("Set-Cookie", "")  # CSRF middleware ran
    assert "CsrfViewMiddleware" in _view_middleware(application.site)


def _view_middleware(handler) -> set[str]:
    """Class names of the middlewares with a process_view hook in a handler's chain."""
    return {type(hook.__self__).__name__ for hook in handler._view_middleware}
