"""Browser tests: Playwright (sync API) driving Debian's Chromium against pytest-django's live_server.

Needs /usr/bin/chromium (Debian package `chromium`; Playwright's own browser download is not
used) and the `playwright` Python package. Without them every test here is skipped with the
reason. Setup on a Debian/Ubuntu CI machine:

    apt-get install -y chromium        # /usr/bin/chromium
    pip install -r requirements.txt    # playwright (Python package only: no `playwright install`)

The sync API runs an asyncio loop in the test's thread, so Django's "no ORM calls from async
code" guard is switched off for these tests (DJANGO_ALLOW_ASYNC_UNSAFE): the ORM calls here come
from plain test code, the live server answers in its own thread.
"""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("STRATUM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
DEMO_PASSWORD = "demo"
E2E_DIR = Path(__file__).resolve().parent

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the package is in requirements.txt
    sync_playwright = None


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: browser test (Playwright + Chromium against the live server)")


def pytest_collection_modifyitems(config, items):
    reason = None
    if sync_playwright is None:
        reason = "the playwright package is not installed (pip install -r requirements.txt)"
    elif not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        reason = f"Chromium is not at {CHROMIUM}: apt-get install -y chromium (or set STRATUM_CHROMIUM)"
    if reason:
        for item in items:
            if E2E_DIR in Path(str(item.fspath)).resolve().parents:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="package")
def browser():
    """Package scope: Playwright's loop and DJANGO_ALLOW_ASYNC_UNSAFE exist only while the tests
    of this folder run, so neither leaks into other tests of the session (a running loop would
    make their ORM calls fail; the variable would trip `check --deploy`'s async.E001)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
            yield browser
            browser.close()
    finally:
        mp.undo()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _install_builtin_dimensions() -> None:
    """The built-in dimensions and their Chinese texts come from data migrations; live_server tests
    flush the database after each test, so put them back (the same functions, idempotent)."""
    import importlib

    from django.apps import apps

    importlib.import_module("segmentation.migrations.0002_builtin_dimensions").install(apps, None)
    importlib.import_module("segmentation.migrations.0005_builtin_translations").install(apps, None)


@pytest.fixture
def shop(transactional_db, settings):
    """A small demo store, tiered, with the demo staff users (ops, support, analyst; password
    'demo'): the same code `make demo` runs, at a size that keeps each test to a few seconds."""
    settings.DEMO_MODE = True
    return seed_shop(customers=int(os.environ.get("STRATUM_E2E_CUSTOMERS", "120")))


def seed_shop(*, customers: int) -> dict:
    """The `shop` fixture's store (needs a database and settings.DEMO_MODE); returns {"vip": a
    membership of a VIP tier whose customer has an e-mail address}."""
    from django.contrib.auth.models import Group, Permission

    from accounts.demo.setup import demo_setup
    from accounts.roles import sync_roles
    from segmentation.models import Membership
    from segmentation.services import default_as_of, recompute_run_create, recompute_tiers

    _install_builtin_dimensions()
    sync_roles(Group, Permission)
    demo_setup(customers=customers, seed=7)
    # Weekly recomputes over the last three weeks: snapshots on several days (the trend charts)
    # and tier changes within 30 days (the migration Sankey), as a running installation has.
    as_of = default_as_of()
    for weeks in (3, 2, 1, 0):
        recompute_tiers(run=recompute_run_create(mode="full", as_of=as_of - timedelta(weeks=weeks)))
    vip = (Membership.objects.filter(tier__is_vip=True, customer__email__gt="").select_related("customer", "tier")
           .order_by("customer_id").first())
    return {"vip": vip}


@pytest.fixture
def login(page, live_server):
    def do(username: str, password: str = DEMO_PASSWORD, *, next_url: str = "/"):
        page.goto(f"{live_server.url}/login/?next={next_url}")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        # Wait for the navigation the click starts, not for a load state the login page already has.
        with page.expect_navigation(wait_until="domcontentloaded"):
            page.locator("form[action='/login/'] button[type=submit]").click()
        return page

    return do
