"""Accessibility: every staff page passes axe-core's WCAG 2 A/AA rules (and its best practices for
landmarks and headings), names no missing id in aria-describedby/-labelledby/-controls or
label[for] and gives every chart a text alternative; the pages in Simplified Chinese say so in
<html lang> and keep their names and labels; the navigation and forms are reached by Tab with a
visible focus ring.

axe-core runs inside the page (Chromium). It comes bundled in the `axe-playwright-python` package
(axe.min.js, MPL-2.0), so nothing is fetched at test time. One seeded store, one live server and
one browser context serve every page, and the test reports every violation at once, e.g.

    /campaigns/new/ [en] color-contrast (serious): Elements must meet minimum color contrast ratio thresholds
        #audience-estimate > .small
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from .conftest import DEMO_PASSWORD, seed_shop

pytestmark = pytest.mark.e2e

# WCAG 2.0 and 2.1 at levels A and AA, plus axe's best practices (landmarks, heading order, one h1,
# unique landmark names, focusable scroll regions): the issue asks for labels, focus, contrast and a
# sound page structure. No rule is switched off.
AXE_ENGLISH = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
               "resultTypes": ["violations"]}
# The Chinese pages have the same markup and CSS: their second pass runs the rules whose outcome
# depends on the text (names, labels, titles, headings, language), not the slow colour-contrast.
AXE_CHINESE = {"runOnly": {"type": "rule", "values": [
    "html-has-lang", "html-lang-valid", "valid-lang", "document-title", "label", "select-name",
    "button-name", "link-name", "input-button-name", "aria-command-name", "aria-input-field-name",
    "aria-toggle-field-name", "aria-progressbar-name", "role-img-alt", "image-alt", "svg-img-alt", "frame-title",
    "empty-heading", "empty-table-header", "page-has-heading-one", "landmark-unique", "form-field-multiple-labels"]},
    "resultTypes": ["violations"]}
AXE = Axe()
# Two checks axe does not make. It leaves ARIA references to missing elements "for review" (the
# element might appear later); on a loaded page they are errors: a field whose help or error text is
# never read out. And a chart (an ECharts container) must be an image with a text alternative.
BEYOND_AXE = """() => { const out = [];
    for (const el of document.querySelectorAll('[aria-describedby], [aria-labelledby], [aria-controls], label[for]')) {
      for (const attr of ['aria-describedby', 'aria-labelledby', 'aria-controls', 'for']) {
        for (const id of (el.getAttribute(attr) || '').split(/\\s+/).filter(Boolean)) {
          if (!document.getElementById(id)) out.push(`missing id: ${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''} ${attr}="${id}"`);
        } } }
    for (const el of document.querySelectorAll('[_echarts_instance_]')) {
      if (el.getAttribute('role') !== 'img' || !(el.getAttribute('aria-label') || '').trim())
        out.push(`chart without role=img and aria-label: ${el.id ? '#' + el.id : el.className}`);
    }
    return out; }"""
# Pages the e2e store is seeded for: small (the pages' structure, not their volume, is under test).
CUSTOMERS = 60


@dataclass
class Audit:
    """axe's violations on every page visited, as readable lines (page, rule, impact, targets)."""

    page: object
    base: str
    problems: list[str] = field(default_factory=list)
    visited: int = 0

    def check(self, label: str, *, lang: str, options: dict) -> None:
        page = self.page
        url = page.url.removeprefix(self.base)
        self.visited += 1
        actual = page.locator("html").get_attribute("lang")
        if actual != lang:
            self.problems.append(f"{url} [{lang}] {label}: <html lang={actual!r}>, expected {lang!r}")
        # Collapsed <details> hide forms (goodwill coupon, preview text): open them so they are checked too.
        page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
        for problem in page.evaluate(BEYOND_AXE):
            self.problems.append(f"{url} [{lang}] {label}: {problem}")
        for v in AXE.run(page, options=options).response["violations"]:
            nodes = v["nodes"]
            targets = "\n        ".join(" ".join(map(str, n["target"])) for n in nodes[:8])
            more = f"\n        ... and {len(nodes) - 8} more" if len(nodes) > 8 else ""
            self.problems.append(f"{url} [{lang}] {label}: {v['id']} ({v['impact']}): {v['help']}"
                                 f"\n        {targets}{more}")


@pytest.fixture
def store(transactional_db, settings):
    """The e2e demo store plus what `make demo` adds so that every page has something to show:
    predictive models, an active recommender with a tier rule, an experiment, a saved segment,
    draft campaigns and a sent one with results."""
    from campaigns.demo import campaigns_install_demo
    from campaigns.models import Campaign
    from recommendations.models import Item, TrainedModel
    from recommendations.services import experiment_create, recommendations_install_demo, tier_rule_create
    from segmentation.ml.services import models_train
    from segmentation.models import RecomputeRun, Tier
    from segmentation.services import recompute_run_create, recompute_tiers, segment_create

    settings.DEMO_MODE = True
    shop = seed_shop(customers=CUSTOMERS)
    models_train(activate=True)
    recompute_tiers(run=recompute_run_create(mode="full"))
    recommendations_install_demo()
    category = Item.objects.exclude(category="").values_list("category", flat=True).first()
    tier_rule_create(tier=Tier.objects.filter(is_vip=True).first(), category=category, weight=1.5, note="VIP picks")
    experiment = experiment_create(name="Fewer repeats", config_a={}, config_b={"exclude_interacted": True})
    segment = segment_create(name="Recent repeat buyers", slug="recent-repeat-buyers",
                             rule={"all": [{"field": "orders_total", "op": ">=", "value": 2},
                                           {"any": [{"field": "recency_days", "op": "<=", "value": 60},
                                                    {"field": "tier:value", "op": "=", "value": "high"}]}]})
    sent = campaigns_install_demo(run=True, backdate=True)["run"]
    assert shop["vip"] is not None and sent, "the store has a VIP customer and a sent campaign"
    return {"customer": shop["vip"].customer, "experiment": experiment, "segment": segment, "sent": sent,
            "model": TrainedModel.objects.get(active=True),
            "draft": Campaign.objects.filter(status="draft").order_by("pk").first(),
            "tier": Tier.objects.filter(dimension__slug="value").order_by("order", "pk").first(),
            "run": RecomputeRun.objects.order_by("-pk").first()}


def _staff_pages(page, store: dict) -> list[tuple[str, str, object]]:
    """(label, path, what to do on the page before the check, or None) for every staff page."""
    customer = store["customer"]

    def add_condition():
        builder = page.locator(".rule-builder")
        builder.get_by_role("button", name=re.compile("Add condition|添加条件")).first.click()
        row = builder.locator(".rule-condition-row").first
        row.locator("select.rule-field").select_option("orders_total")
        row.locator("select.rule-op").select_option(">=")
        with page.expect_response(lambda r: "/segments/preview/" in r.url):
            row.locator("input.rule-value-input").fill("2")

    def pick_tier():
        with page.expect_response(lambda r: "/campaigns/estimate/" in r.url):
            page.locator("#campaign-form select[name=tiers]").select_option(str(store["tier"].pk))

    def send_empty():
        """The builder's error state: the form sent empty (the browser's own checks off)."""
        page.evaluate("() => { document.getElementById('campaign-form').noValidate = true; }")
        # Wait for the navigation itself: the current page is already loaded, so waiting for a load
        # state alone could return before the form's response replaces it.
        with page.expect_navigation(wait_until="domcontentloaded"):
            page.locator("#campaign-form button[type=submit]").last.click()
        expect(page.locator("#campaign-form .invalid-feedback, #campaign-form .is-invalid").first).to_be_attached()

    def preview_rendered():
        expect(page.locator("#preview-subject")).not_to_have_text(re.compile(r"^\s*$|…"))

    return [
        ("dashboard", "/", None),
        ("customer list", "/customers/", None),
        ("customer search", f"/customers/?q={customer.email}", None),
        ("customer 360", f"/customers/{customer.pk}/", None),
        ("dimensions", "/segments/", None),
        ("tier", f"/segments/tiers/{store['tier'].pk}/", None),
        ("segments", "/segments/segments/", None),
        ("rule builder", "/segments/segments/new/", add_condition),
        ("segment with nested rule", f"/segments/segments/{store['segment'].slug}/", None),
        ("recompute runs", "/segments/runs/", None),
        ("recompute run", f"/segments/runs/{store['run'].pk}/", None),
        ("predictive models", "/segments/models/", None),
        ("recommendation models", "/recommendations/", None),
        ("recommendation model", f"/recommendations/models/{store['model'].pk}/", None),
        ("recommendation rules", "/recommendations/rules/", None),
        ("experiments", "/recommendations/experiments/", None),
        ("experiment", f"/recommendations/experiments/{store['experiment'].pk}/", None),
        ("campaigns", "/campaigns/", None),
        ("campaign builder", "/campaigns/new/", pick_tier),
        ("campaign builder with errors", "/campaigns/new/", send_empty),
        ("campaign preview", f"/campaigns/{store['draft'].pk}/", preview_rendered),
        ("campaign results", f"/campaigns/{store['sent']}/results/", None),
        ("strategies", "/campaigns/strategies/", None),
        ("outbox", "/campaigns/outbox/", None),
        ("404", "/customers/999999999/", None),
    ]


def _audit(audit: Audit, page, login, base: str, store: dict, *, lang: str, options: dict) -> None:
    page.context.clear_cookies(name="sessionid")
    page.goto(f"{base}/login/")
    audit.check("login", lang=lang, options=options)
    login("ops")
    for label, path, action in _staff_pages(page, store):
        page.goto(f"{base}{path}")
        if action:
            action()
        audit.check(label, lang=lang, options=options)
    # A form sent without its CSRF token: the "form has expired" page (403).
    with page.expect_navigation(wait_until="domcontentloaded"):
        page.evaluate("""() => { const f = document.createElement('form'); f.method = 'post';
            f.action = '/segments/runs/new/'; document.body.appendChild(f); f.submit(); }""")
    audit.check("403 csrf", lang=lang, options=options)
    # Operations may open every page; an analyst meets the access-denied page.
    page.context.clear_cookies(name="sessionid")
    login("analyst", next_url="/segments/segments/new/")
    expect(page.locator("h1")).to_have_text(re.compile(r"access|权限|访问"))
    audit.check("403", lang=lang, options=options)
    # The server-error page cannot be provoked from the browser: write it into the current page of
    # the live server (its stylesheets load from there), as Django renders it, in this language.
    from django.template.loader import render_to_string
    from django.utils import translation

    with translation.override(lang):
        page.set_content(render_to_string("500.html"), wait_until="load")
    audit.check("500", lang=lang, options=options)


def test_every_staff_page_passes_axe_in_english_and_chinese(store, page, login, live_server):
    """The rule under test: axe-core finds no WCAG 2 A/AA (or best-practice) violation on any staff
    page an operations user opens (plus the login and error pages), and <html lang> names the
    language the page is shown in; in Chinese, too, every control and landmark keeps a name."""
    base = live_server.url
    audit = Audit(page, base)
    _audit(audit, page, login, base, store, lang="en", options=AXE_ENGLISH)
    # The language switcher sets Django's language cookie; set it directly and see every page again.
    page.context.add_cookies([{"name": "django_language", "value": "zh-hans", "url": base}])
    _audit(audit, page, login, base, store, lang="zh-hans", options=AXE_CHINESE)
    assert not audit.problems, (f"{len(audit.problems)} accessibility problems on {audit.visited} pages:\n"
                                + "\n".join(audit.problems))


@pytest.fixture
def operations_user(transactional_db):
    """Only an operations user: the keyboard test needs the page shell, not a store."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    from accounts.roles import OPERATIONS, sync_roles

    sync_roles(Group, Permission)
    user = get_user_model().objects.create_user("ops", "ops@example.com", DEMO_PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=OPERATIONS))
    return user


def _focus(page) -> dict:
    """How the focused element is drawn."""
    return page.evaluate("""() => { const e = document.activeElement, s = getComputedStyle(e);
        return {focusVisible: e.matches(':focus-visible'), outline: s.outlineStyle, width: parseFloat(s.outlineWidth),
                colour: s.outlineColor, html: e.outerHTML.slice(0, 160)}; }""")


def _tab_to(page, selector: str, limit: int) -> dict:
    """Press Tab until the focused element matches `selector`; return how its focus is drawn."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => !!document.activeElement && document.activeElement.matches(s)", selector):
            return _focus(page)
    raise AssertionError(f"{selector} is not reached within {limit} presses of Tab")


def _assert_ring(focus: dict) -> None:
    assert focus["focusVisible"] and focus["outline"] != "none" and focus["width"] >= 2, focus


def test_navigation_and_forms_are_reached_by_tab_with_a_visible_focus_ring(operations_user, page, live_server):
    """Keyboard users: the sign-in form starts focused and Tab walks its fields to the button; on a
    staff page Tab from the top reaches the skip link, the first link of the main navigation and
    the customer search. Each is drawn with an outline of 2px or more (WCAG 2.4.7)."""
    base = live_server.url
    page.goto(f"{base}/login/")
    assert page.evaluate("document.activeElement.id") == "id_username"  # autofocus
    _assert_ring(_focus(page))
    page.keyboard.type("ops")
    _assert_ring(_tab_to(page, "#id_password", limit=1))
    page.keyboard.type(DEMO_PASSWORD)
    _assert_ring(_tab_to(page, "form[action='/login/'] button[type=submit]", limit=1))
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")

    page.goto(f"{base}/customers/")
    _assert_ring(_tab_to(page, ".skip-link", limit=1))
    _assert_ring(_tab_to(page, "#main-nav .nav-link", limit=5))
    _assert_ring(_tab_to(page, "main input[type=search]", limit=30))
    # The skip link moves the focus to <main>, so the next Tab lands in the page, not the navigation.
    page.goto(f"{base}/customers/")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
