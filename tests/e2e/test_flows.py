"""What each role does every day, in a real browser (Chromium) against the live server."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def test_customer_service_finds_a_customer_by_email_and_sees_vip_and_service_level(shop, page, login, live_server):
    vip = shop["vip"]
    assert vip is not None, "the demo store has a VIP customer"
    login("support")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    page.get_by_role("link", name="Customers", exact=True).first.click()
    page.get_by_role("searchbox").first.fill(vip.customer.email)
    page.get_by_role("searchbox").first.press("Enter")
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link").first.click()

    expect(page).to_have_url(re.compile(rf"/customers/{vip.customer.pk}/$"))
    expect(page.locator("[data-badge=vip]")).to_be_visible()
    service = page.locator("[data-service-level]")
    expect(service).to_be_visible()
    expect(service).to_contain_text(vip.tier.service_level[:30])


def test_operations_builds_a_segment_with_two_conditions_and_sees_the_live_count(shop, page, login, live_server):
    login("ops", next_url="/segments/segments/new/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    count = page.locator("[data-preview-count]")
    builder = page.locator(".rule-builder")
    expect(builder).to_be_visible()

    add = builder.get_by_role("button", name=re.compile("Add condition")).first

    def condition(n: int, field: str, op: str, value: str) -> int:
        """Add condition n and return the live count once the preview of the final rule is in."""
        add.click()
        row = builder.locator(".rule-condition-row").nth(n)
        row.locator("select.rule-field").select_option(field)
        row.locator("select.rule-op").select_option(op)
        with page.expect_response(lambda r: "/segments/preview/" in r.url and value in (r.request.post_data or "")):
            row.locator("input.rule-value-input").fill(value)
        expect(count).to_have_text(re.compile(r"^[\d,.\s]+$"))
        return int(re.sub(r"\D", "", count.inner_text()))

    one_condition = condition(0, "orders_total", ">=", "1")
    assert one_condition > 0
    two_conditions = condition(1, "orders_total", ">=", "4")
    assert two_conditions < one_condition

    page.fill("input[name=name]", "Repeat buyers")
    slug = page.locator("input[name=slug]")
    if slug.count() and not slug.input_value():
        slug.fill("repeat-buyers")
    page.locator("main form[method=post] button[type=submit]").last.click()
    expect(page.locator(".messages .alert-success")).to_contain_text("Repeat buyers")
    from segmentation.models import Segment

    segment = Segment.objects.get(name="Repeat buyers")
    assert len(segment.rule["all"]) == 2


def test_analyst_reads_the_dashboard_but_cannot_edit_segments_or_tiers(shop, page, login, live_server):
    login("analyst")
    expect(page.locator("[data-kpi=active]")).to_be_visible()
    expect(page.locator("[data-dimension-card=value]")).to_be_visible()
    expect(page.locator(".sankey-chart svg, .trend-chart svg").first).to_be_attached()

    response = page.goto(f"{live_server.url}/segments/segments/new/")
    assert response.status == 403
    expect(page.get_by_role("heading", name="You do not have access to this page")).to_be_visible()

    from django.urls import NoReverseMatch, reverse

    try:  # the campaign editor, where the campaigns pages are installed
        response = page.goto(f"{live_server.url}{reverse('campaigns:campaign-create')}")
        assert response.status == 403
    except NoReverseMatch:
        pass

    from segmentation.models import Tier

    tier = Tier.objects.filter(dimension__slug="value").first()
    page.goto(f"{live_server.url}/segments/tiers/{tier.pk}/")
    expect(page.locator("form[method=post] button[type=submit]:not(.dropdown-item)").filter(
        has_text=re.compile("Save", re.I))).to_have_count(0)
    # A forged POST is refused, too.
    status = page.evaluate("""async (url) => {
        const token = document.cookie.split('; ').find(c => c.startsWith('csrftoken='))?.split('=')[1] || '';
        const r = await fetch(url, {method: 'POST', headers: {'X-CSRFToken': token}, body: new FormData()});
        return r.status; }""", f"/segments/tiers/{tier.pk}/")
    assert status == 403


def test_the_customer_page_in_chinese(shop, page, login, live_server):
    vip = shop["vip"]
    login("support")
    page.locator("form.language-switcher button[value=zh-hans]").first.click()
    page.wait_for_load_state("domcontentloaded")
    page.goto(f"{live_server.url}/customers/{vip.customer.pk}/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.get_by_role("link", name="客户", exact=True).first).to_be_visible()
    expect(page.locator("[data-service-level]")).to_contain_text("服务等级")
    expect(page.locator("[data-badge=vip]")).to_be_visible()
    body = page.locator("main").inner_text()
    for english in ("Profile", "Service level", "Recent events", "Customers"):
        assert english not in body, f"untranslated on the Chinese customer page: {english!r}"


def test_login_lockout_message_in_the_browser(shop, page, login, live_server):
    for _ in range(5):
        login("ops", "wrong-password")
    expect(page.locator("[data-locked-out]")).to_contain_text("Too many failed sign-in attempts")
    login("ops")
    expect(page.locator("[data-locked-out]")).to_be_visible()


def test_staff_pages_fit_a_tablet(shop, page, login, live_server):
    """768 px wide: no page scrolls sideways (tables scroll inside their own box)."""
    page.set_viewport_size({"width": 768, "height": 1024})
    login("ops")
    for path in ("/", "/customers/", "/segments/", "/segments/segments/", "/segments/segments/new/", "/segments/runs/",
                 "/segments/models/", f"/customers/{shop['vip'].customer.pk}/"):
        page.goto(f"{live_server.url}{path}")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        culprits = page.evaluate("""() => { const w = document.documentElement.clientWidth; const out = [];
            document.querySelectorAll('body *').forEach(e => { const r = e.getBoundingClientRect();
              if (r.right > w + 1 && out.length < 5) out.push(`${e.tagName}.${e.className} ${Math.round(r.right)}`); });
            return out; }""")
        assert overflow <= 1, f"{path} is {overflow}px wider than a 768px tablet: {culprits}"
