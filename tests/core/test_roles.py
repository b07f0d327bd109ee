"""Roles and security of the staff pages.

The rule under test: every staff URL answers each role as designed — Operations may do
everything, Customer service reads customers and tiers and may pin tiers but edits no rule,
segment or model, Analyst reads everything and changes nothing, a signed-in user without a
staff role gets 403 and an anonymous visitor is sent to the login page.

`EXPECTED` declares the matrix. The test walks *every* URL pattern of the project (except the
API, the admin, static files, i18n and the public tracking links, which have their own tests),
so a new staff page fails `test_every_staff_url_is_declared` until its row is added here.
"""
from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Group, User
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.roles import ANALYST, CUSTOMER_SERVICE, OPERATIONS

pytestmark = pytest.mark.django_db

ROLES = ("ops", "cs", "analyst", "nonstaff", "anon")
SKIPPED_PREFIXES = ("api/", "admin/", "static/", "i18n/", "t/", "healthz", "__debug__/")
OK = "ok"  # a permitted POST: anything but 403, 404 and 5xx (200 with form errors, 302, 400 ...)

#: url name -> {"GET": codes per role in ROLES order, "POST": codes per role or None (no POST)}.
#: 302 for anon is the redirect to the login page; 405: the view does not answer that method.
EXPECTED: dict[str, dict[str, tuple | None]] = {
    "home": {"GET": (200, 200, 200, 403, 302), "POST": None},
    "login": {"GET": (302, 302, 302, 302, 200), "POST": None},  # signed-in users go to the overview
    "logout": {"GET": (405, 405, 405, 405, 405), "POST": None},  # POST only; covered by the CSRF test
    "accounts:customer-list": {"GET": (200, 200, 200, 403, 302), "POST": None},
    "accounts:customer-detail": {"GET": (200, 200, 200, 403, 302), "POST": None},
    # Segmentation: CS reads dimensions and tiers, not segments, runs or models; only ops edits.
    "segmentation:overview": {"GET": (200, 200, 200, 403, 302), "POST": None},
    "segmentation:tier": {"GET": (200, 200, 200, 403, 302), "POST": (OK, 403, 403, 403, 302)},
    "segmentation:preview": {"GET": (405, 405, 405, 403, 302), "POST": (OK, OK, OK, 403, 302)},  # a read: count
    "segmentation:segment-list": {"GET": (200, 403, 200, 403, 302), "POST": None},
    "segmentation:segment-create": {"GET": (200, 403, 403, 403, 302), "POST": (OK, 403, 403, 403, 302)},
    "segmentation:segment-edit": {"GET": (200, 403, 200, 403, 302), "POST": (OK, 403, 403, 403, 302)},
    "segmentation:segment-delete": {"GET": (200, 403, 403, 403, 302), "POST": (OK, 403, 403, 403, 302)},
    "segmentation:run-list": {"GET": (200, 403, 200, 403, 302), "POST": None},
    "segmentation:recompute": {"GET": (405, 403, 403, 403, 302), "POST": (OK, 403, 403, 403, 302)},
    "segmentation:run-detail": {"GET": (200, 403, 200, 403, 302), "POST": None},
    "segmentation:run-status": {"GET": (200, 403, 200, 403, 302), "POST": None},
    "segmentation:models": {"GET": (200, 403, 200, 403, 302), "POST": None},
    "segmentation:pin": {"GET": (405, 405, 403, 403, 302), "POST": (OK, OK, 403, 403, 302)},
    "segmentation:pin-revoke": {"GET": (405, 405, 403, 403, 302), "POST": (OK, OK, 403, 403, 302)},
    # Recommendations: CS sees recommendations on the customer page only.
    "recommendations:overview": {"GET": (200, 403, 200, 403, 302), "POST": None},
    "recommendations:train": {"GET": (405, 403, 403, 403, 302), "POST": (OK, 403, 403, 403, 302)},
    "recommendations:model-detail": {"GET": (200, 403, 200, 403, 302), "POST": None},
    "recommendations:model-status": {"GET": (200, 403, 200, 403, 302), "POST": None},
    "recommendations:activate": {"GET": (405, 403, 403, 403, 302), "POST": (OK, 403, 403, 403, 302)},
    "recommendations:ready-refresh": {"GET": (405, 403, 403, 403, 302), "POST": (OK, 403, 403, 403, 302)},
    "recommendations:rules": {"GET": (200, 403, 200, 403, 302), "POST": (OK, 403, 403, 403, 302)},
    "recommendations:rule-change": {"GET": (405, 403, 403, 403, 302), "POST": (OK, 403, 403, 403, 302)},
    "recommendations:experiments": {"GET": (200, 403, 200, 403, 302), "POST": (OK, 403, 403, 403, 302)},
    "recommendations:experiment-detail": {"GET": (200, 403, 200, 403, 302), "POST": None},
    "recommendations:experiment-stop": {"GET": (405, 403, 403, 403, 302), "POST": (OK, 403, 403, 403, 302)},
    # Campaigns: CS sees none of them but issues goodwill coupons; the analyst reads, previews and
    # estimates (read-only POSTs) and changes nothing.
    "campaigns:campaign-list": {"GET": (200, 403, 200, 403, 302), "POST": None},
    "campaigns:progress": {"GET": (200, 403, 200, 403, 302), "POST": None},
    "campaigns:campaign-create": {"GET": (200, 403, 403, 403, 302), "POST": (OK, 403, 403, 403, 302)},
    "campaigns:estimate": {"GET": (405, 403, 405, 403, 302), "POST": (OK, 403, OK, 403, 302)},
    "campaigns:strategies": {"GET": (200, 403, 200, 403, 302), "POST": None},
    "campaigns:outbox": {"GET": (200, 403, 200, 403, 302), "POST": None},
    "campaigns:outbox-message": {"GET": (404, 403, 404, 403, 302), "POST": None},  # no such message
    "campaigns:goodwill-coupon": {"GET": (405, 405, 403, 403, 302), "POST": (OK, OK, 403, 403, 302)},
    "campaigns:detail": {"GET": (200, 403, 200, 403, 302), "POST": (OK, 403, 403, 403, 302)},
    "campaigns:preview": {"GET": (405, 403, 405, 403, 302), "POST": (OK, 403, OK, 403, 302)},
    "campaigns:test-send": {"GET": (405, 403, 403, 403, 302), "POST": (OK, 403, 403, 403, 302)},
    "campaigns:results": {"GET": (200, 403, 200, 403, 302), "POST": None},
    "campaigns:results-data": {"GET": (200, 403, 200, 403, 302), "POST": None},
    "campaigns:action": {"GET": (405, 403, 403, 403, 302), "POST": (OK, 403, 403, 403, 302)},
}


# --- The URL patterns -----------------------------------------------------------------------------
def _walk(resolver: URLResolver, prefix: str = "", namespace: str | None = None):
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            ns = entry.namespace or namespace
            if entry.namespace and namespace:
                ns = f"{namespace}:{entry.namespace}"
            yield from _walk(entry, route, ns)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            yield route, name


def staff_urls() -> list[tuple[str, str | None]]:
    return [(route, name) for route, name in _walk(get_resolver())
            if not route.startswith(SKIPPED_PREFIXES) and not route.startswith("^")]


def test_every_staff_url_is_declared():
    """A staff URL without a row in EXPECTED fails: its access must be decided, not assumed."""
    found = staff_urls()
    unnamed = [route for route, name in found if not name]
    assert not unnamed, f"staff URLs without a name (cannot be declared): {unnamed}"
    undeclared = sorted(name for _route, name in found if name not in EXPECTED)
    assert not undeclared, f"declare the expected access of these staff URLs in EXPECTED: {undeclared}"
    gone = sorted(set(EXPECTED) - {name for _route, name in found})
    assert not gone, f"EXPECTED names URLs that no longer exist: {gone}"


# --- Users and objects ----------------------------------------------------------------------------
def _user(username: str, role: str | None, staff: bool = True) -> User:
    user = User.objects.create_user(username, password="pw-" + username, is_staff=staff)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def users() -> dict[str, User | None]:
    return {"ops": _user("ops", OPERATIONS), "cs": _user("cs", CUSTOMER_SERVICE), "analyst": _user("analyst", ANALYST),
            "nonstaff": _user("plain", None, staff=False), "anon": None}


@pytest.fixture
def objects(users) -> dict:
    from accounts.models import Customer
    from recommendations.models import Experiment, Item, TierRule, TrainedModel
    from segmentation.models import RecomputeRun, Segment, Tier, TierOverride

    now = timezone.now()
    customer = Customer.objects.create(external_id="c-1", email="ada@example.com", name="Ada Lovelace")
    tier = Tier.objects.select_related("dimension").order_by("dimension__order", "order").first()
    segment = Segment.objects.create(slug="big-spenders", name="Big spenders",
                                     rule={"all": [{"field": "orders_total", "op": ">=", "value": 3}]})
    run = RecomputeRun.objects.create(as_of=now, status="succeeded", started_at=now, finished_at=now)
    pin = TierOverride.objects.create(customer=customer, dimension=tier.dimension, tier=tier, reason="test",
                                      expires_at=now + timedelta(days=7), created_by=users["ops"])
    model = TrainedModel.objects.create(algorithm="popularity", as_of=now, status="failed")
    item = Item.objects.create(external_id="i-1", title="Tea")
    rule = TierRule.objects.create(tier=tier, item=item)
    experiment = Experiment.objects.create(name="A/B", traffic_b=0.5)
    from tests.campaigns.factories import campaign

    return {"customer": customer, "tier": tier, "segment": segment, "run": run, "pin": pin, "model": model,
            "rule": rule, "experiment": experiment, "campaign": campaign(tiers=[tier])}


def _kwargs(route: str, name: str, obj: dict) -> dict:
    """Fill the path parameters of `route` with the real objects made above."""
    params = re.findall(r"<(?:\w+:)?(\w+)>", route)
    if not params:
        return {}
    app, _sep, short = name.rpartition(":")
    by_name = {
        "accounts:customer-detail": obj["customer"].pk, "segmentation:tier": obj["tier"].pk,
        "segmentation:run-detail": obj["run"].pk, "segmentation:run-status": obj["run"].pk,
        "segmentation:pin": obj["customer"].pk, "segmentation:pin-revoke": obj["pin"].pk,
        "recommendations:model-detail": obj["model"].pk, "recommendations:model-status": obj["model"].pk,
        "recommendations:activate": obj["model"].pk, "recommendations:rule-change": obj["rule"].pk,
        "recommendations:experiment-detail": obj["experiment"].pk,
        "recommendations:experiment-stop": obj["experiment"].pk,
        "campaigns:goodwill-coupon": obj["customer"].pk,
        **{f"campaigns:{n}": obj["campaign"].pk for n in ("detail", "preview", "test-send", "results", "results-data")},
    }
    if params == ["slug"] and app == "segmentation":
        return {"slug": obj["segment"].slug}
    if name == "campaigns:action":
        return {"pk": obj["campaign"].pk, "action": "pause"}
    if name == "campaigns:outbox-message":
        return {"entry_id": "no-such-message"}
    assert params == ["pk"] and name in by_name, f"no object for the path parameters {params} of {name}; add one"
    return {"pk": by_name[name]}


def _client(client_factory, user):
    c = client_factory()
    if user is not None:
        c.force_login(user)
    return c


def _matches(expected, actual: int) -> bool:
    if expected == OK:
        return actual not in (403, 404, 405) and actual < 500
    return actual == expected


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_staff_url_answers_each_role_as_designed(name, users, objects, client):
    """GET (and POST with an empty form, where the view takes POSTs) for every role."""
    from django.test import Client

    routes = {n: r for r, n in staff_urls()}
    url = reverse(name, kwargs=_kwargs(routes[name], name, objects))
    failures = []
    for method in ("GET", "POST"):
        codes = EXPECTED[name][method]
        if codes is None:
            continue
        # Roles that may not act go first, so a permitted POST (a delete, say) comes last.
        for role, expected in sorted(zip(ROLES, codes), key=lambda rc: rc[1] == OK):
            c = _client(Client, users[role])
            response = c.get(url) if method == "GET" else c.post(url, {})
            if not _matches(expected, response.status_code):
                failures.append(f"{method} {url} as {role}: {response.status_code}, expected {expected}")
            if role == "anon" and response.status_code == 302 and name != "login":
                assert response["Location"].startswith(reverse("login")), response["Location"]
    assert not failures, "\n".join(failures)


def test_admin_is_for_staff_with_model_permissions_only(users, client):
    """The Django admin: staff roles get in (and see only their models), others do not."""
    from django.test import Client

    url = reverse("admin:index")
    assert _client(Client, None).get(url).status_code == 302
    assert _client(Client, users["nonstaff"]).get(url).status_code == 302  # to the admin login
    for role in ("ops", "cs", "analyst"):
        assert _client(Client, users[role]).get(url).status_code == 200
    # Read-only roles cannot add; Operations can.
    add_segment = reverse("admin:segmentation_segment_add")
    assert _client(Client, users["analyst"]).get(add_segment).status_code == 403
    assert _client(Client, users["cs"]).get(add_segment).status_code == 403
    assert _client(Client, users["ops"]).get(add_segment).status_code == 200
    # Users and groups are for superusers only.
    assert _client(Client, users["ops"]).get(reverse("admin:auth_user_changelist")).status_code == 403


# --- CSRF -----------------------------------------------------------------------------------------
class _FormParser(HTMLParser):
    """Collects the POST forms of a page and whether each holds a csrfmiddlewaretoken input."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._current = {"action": attrs.get("action", ""), "post": (attrs.get("method") or "").lower() == "post",
                             "csrf": False}
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and attrs.get("name") == "csrfmiddlewaretoken":
            self._current["csrf"] = bool(attrs.get("value"))

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def test_every_post_form_on_every_staff_page_has_a_csrf_token(users, objects):
    """Every <form method="post"> rendered on any staff page, for every role, carries the token."""
    from django.test import Client

    routes = {n: r for r, n in staff_urls()}
    pages = 0
    missing = []
    for name in sorted(EXPECTED):
        url = reverse(name, kwargs=_kwargs(routes[name], name, objects))
        for role in ("ops", "cs", "analyst", "anon"):
            response = _client(Client, users[role]).get(url)
            if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
                continue
            pages += 1
            parser = _FormParser()
            parser.feed(response.content.decode())
            missing += [f"{url} as {role}: form action={f['action']!r}" for f in parser.forms if f["post"] and not f["csrf"]]
    assert pages > 15
    assert not missing, "POST forms without csrfmiddlewaretoken:\n" + "\n".join(missing)


def test_csrf_is_enforced_on_login():
    """A POST without the token is refused (CsrfViewMiddleware is on; the test client skips it by default)."""
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(reverse("login"), {"username": "x", "password": "y"})
    assert response.status_code == 403
    assert b"The form has expired" in response.content  # templates/403_csrf.html, not a debug page


# --- Login lockout (django-axes) -------------------------------------------------------------------
def test_five_failed_sign_ins_lock_the_username_and_ip_out_for_15_minutes(users, settings):
    """5 failures for one username from one IP lock the pair: the 5th answer and every attempt after
    it, even with the right password, are refused with a clear message (429); another username from the same IP is not affected."""
    from django.test import Client

    c = Client()
    for _ in range(4):
        response = c.post(reverse("login"), {"username": "ops", "password": "wrong"})
        assert response.status_code == 200  # the form again, with the usual error
    response = c.post(reverse("login"), {"username": "ops", "password": "wrong"})
    assert response.status_code == 429  # the 5th failure locks
    response = c.post(reverse("login"), {"username": "ops", "password": "pw-ops"})
    assert response.status_code == 429
    assert b"Too many failed sign-in attempts" in response.content
    assert b"15 minutes" in response.content
    assert "_auth_user_id" not in c.session
    # Username + IP: the analyst signs in from the same address.
    other = Client()
    response = other.post(reverse("login"), {"username": "analyst", "password": "pw-analyst"})
    assert response.status_code == 302 and "_auth_user_id" in other.session
    # And the same username from another IP address is not locked either.
    response = Client(REMOTE_ADDR="10.0.0.9").post(reverse("login"), {"username": "ops", "password": "pw-ops"})
    assert response.status_code == 302


def test_lockout_expires_after_the_cool_off(users):
    from axes.models import AccessAttempt
    from django.test import Client

    c = Client()
    for _ in range(5):
        c.post(reverse("login"), {"username": "cs", "password": "wrong"})
    assert c.post(reverse("login"), {"username": "cs", "password": "pw-cs"}).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert c.post(reverse("login"), {"username": "cs", "password": "pw-cs"}).status_code == 302


def test_lockout_settings():
    from django.conf import settings

    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME == timedelta(minutes=15)
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"


def test_production_session_and_cookie_settings(monkeypatch):
    """With STRATUM_PRODUCTION=1 cookies are secure, HTTP-only (session), HTTPS is enforced."""
    import importlib

    monkeypatch.setenv("STRATUM_PRODUCTION", "1")
    monkeypatch.setenv("SECRET_KEY", "x" * 50)
    monkeypatch.setenv("ALLOWED_HOSTS", "crm.example.com")
    monkeypatch.delenv("DJANGO_DEBUG", raising=False)
    monkeypatch.delenv("STRATUM_DEMO", raising=False)
    import crm.settings.base as base

    prod = importlib.reload(base)
    try:
        assert prod.SESSION_COOKIE_SECURE and prod.CSRF_COOKIE_SECURE and prod.SESSION_COOKIE_HTTPONLY
        assert prod.SECURE_SSL_REDIRECT and prod.SECURE_HSTS_SECONDS >= 31536000
        assert getattr(prod, "SESSION_COOKIE_SAMESITE", "Lax") in ("Lax", "Strict")
        assert getattr(prod, "CSRF_COOKIE_SAMESITE", "Lax") in ("Lax", "Strict")
        assert prod.SESSION_COOKIE_AGE <= 12 * 3600
        assert prod.X_FRAME_OPTIONS == "DENY"
    finally:
        monkeypatch.undo()
        importlib.reload(base)
