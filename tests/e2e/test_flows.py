"""What each role does every day, in a real browser (Chromium) against the live server."""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def test_customer_service_finds_a_customer_by_email_sees_vip_and_issues_a_coupon(shop, page, login, live_server):
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

    # Issue a goodwill coupon from the page and see it listed there.
    from campaigns.models import Coupon

    before = set(Coupon.objects.filter(customer=vip.customer).values_list("code", flat=True))
    coupons = page.locator("#coupons")
    coupons.locator("details.goodwill-form summary").click()
    form = coupons.locator("details.goodwill-form form")
    form.locator("select[name=discount]").select_option("percent")
    form.locator("input[name=value]").fill("10")
    form.locator("input[name=valid_days]").fill("30")
    form.locator("input[name=reason]").fill("Late delivery, e2e")
    with page.expect_navigation(wait_until="domcontentloaded"):
        form.get_by_role("button", name="Issue coupon").click()

    expect(page).to_have_url(re.compile(rf"/customers/{vip.customer.pk}/(#coupons)?$"))
    expect(page.locator(".messages .alert-success")).to_contain_text("Goodwill coupon")
    coupon = Coupon.objects.filter(customer=vip.customer).exclude(code__in=before).get()
    assert coupon.reason == "Late delivery, e2e" and coupon.issued_by.username == "support"
    assert coupon.campaign_id is None and coupon.value == 10
    row = coupons.locator(f"tr[data-coupon='{coupon.code}']")
    expect(row).to_be_visible()
    expect(row).to_contain_text("Late delivery, e2e")
    expect(row).to_contain_text("support")


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


def test_operations_creates_previews_and_sends_an_email_campaign_for_a_tier(shop, page, login, live_server):
    from django.core import mail
    from django.db.models import Count

    from campaigns.models import Campaign, Message
    from segmentation.models import Tier

    # The tier with the most members that have an e-mail address: a holdout of 20 % keeps some.
    tier = (Tier.objects.filter(memberships__customer__email__gt="").annotate(n=Count("memberships"))
            .select_related("dimension").order_by("-n", "pk").first())
    assert tier is not None and tier.n >= 10, "the demo store has a populated tier"
    login("ops", next_url="/campaigns/new/")
    expect(page.get_by_role("heading", level=1, name="New campaign")).to_be_visible()
    form = page.locator("#campaign-form")
    form.locator("input[name=name]").fill("E2E tier mail")
    form.locator("select[name=kind]").select_option("email")

    # Live audience estimate for the chosen tier (and its holdout).
    summary = page.locator("#audience-estimate [data-estimate=summary]")
    with page.expect_response(lambda r: "/campaigns/estimate/" in r.url
                              and str(tier.pk) in json.loads(r.request.post_data or "{}").get("tiers", [])) as est:
        form.locator("input[name=holdout_percent]").fill("20")
        form.locator("select[name=tiers]").select_option(str(tier.pk))
    estimate = est.value.json()
    expect(summary).to_contain_text("in the audience")
    expect(summary).to_contain_text("held out")
    audience = int(page.locator("#audience-estimate").get_attribute("data-audience"))
    assert 0 < audience <= tier.n, (audience, tier.n, estimate)

    form.locator("input[name=subject]").fill("Hello {{ first_name }}, news for {{ shop_name }}")
    form.locator("textarea[name=html_body]").fill(
        '<p>Dear {{ name }}, thank you.</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>')
    form.locator("textarea[name=text_body]").fill("Dear {{ name }}, thank you. Unsubscribe: {{ unsubscribe_url }}")
    form.locator("button[type=submit]").last.click()
    expect(page.locator(".messages .alert-success")).to_contain_text("Draft saved")
    expect(page).to_have_url(re.compile(r"/campaigns/\d+/$"))
    campaign = Campaign.objects.get(name="E2E tier mail")
    assert list(campaign.tiers.values_list("pk", flat=True)) == [tier.pk]
    expect(page.locator("[data-status=draft]")).to_be_visible()

    # Preview for a chosen customer of the tier: the rendered subject and body.
    page.wait_for_load_state("networkidle")  # the preview for the default sample customer is in
    customer = (tier.memberships.filter(customer__email__gt="").select_related("customer")
                .order_by("customer_id").first().customer)
    page.fill("#preview-customer", str(customer.pk))
    def for_customer(r) -> bool:
        return (f"/campaigns/{campaign.pk}/preview/" in r.url
                and json.loads(r.request.post_data or "{}").get("customer") == str(customer.pk))

    with page.expect_response(for_customer) as rendered:
        page.click("#preview-button")
    data = rendered.value.json()
    assert rendered.value.ok, data
    subject = page.locator("#preview-subject")
    expect(subject).to_have_text(data["subject"])
    assert data["subject"].startswith("Hello ") and "{{" not in data["subject"]
    expect(page.frame_locator("#preview-html").locator("p").first).to_contain_text("thank you")
    page.locator("details:has(#preview-text) summary").click()
    expect(page.locator("#preview-text")).to_contain_text("thank you")

    # Send it (tasks run eagerly in tests) and land on the results.
    mail.outbox = []
    page.locator("button[data-action=start]").click()
    expect(page).to_have_url(re.compile(rf"/campaigns/{campaign.pk}/results/$"))
    expect(page.locator(".messages .alert-success")).to_contain_text("Sending started")
    sent = page.locator("[data-figure=sent]")
    expect(sent).to_have_text(re.compile(r"^[1-9][\d,.\s]*$"))

    # Reload: the figures come from the database.
    page.reload()
    page.wait_for_load_state("networkidle")
    expect(page.locator("#results-status")).to_have_attribute("data-status", "sent")
    n_sent = Message.objects.filter(campaign=campaign, status="sent").count()
    n_holdout = Message.objects.filter(campaign=campaign, status="holdout").count()
    assert n_sent > 0 and n_holdout > 0, (n_sent, n_holdout)
    expect(sent).to_have_text(f"{n_sent:,}")
    expect(page.locator("[data-figure=holdout]")).to_have_text(f"{n_holdout:,}")
    expect(page.locator("#chart-delivery canvas, #chart-delivery svg").first).to_be_attached()
    assert len(mail.outbox) == n_sent


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
    from segmentation.defaults import ZH_HANS

    vip = shop["vip"]
    login("support")
    with page.expect_navigation(wait_until="domcontentloaded"):
        page.locator("form.language-switcher button[value=zh-hans]").first.click()
    page.goto(f"{live_server.url}/customers/{vip.customer.pk}/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.get_by_role("link", name="客户", exact=True).first).to_be_visible()
    expect(page.locator("[data-service-level]")).to_contain_text("服务等级")
    expect(page.locator("[data-badge=vip]")).to_be_visible()
    # Built-in tiers show their Chinese names.
    expect(page.locator(f"[data-tier='{vip.dimension.slug}:{vip.tier.slug}']")).to_contain_text(
        ZH_HANS[(vip.dimension.slug, vip.tier.slug)]["name"])
    body = page.locator("main").inner_text()
    for english in ("Profile", "Service level", "Recent events", "Customers", vip.tier.name):
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
                 "/segments/models/", f"/customers/{shop['vip'].customer.pk}/",
                 "/campaigns/", "/campaigns/new/", "/campaigns/strategies/", "/campaigns/outbox/",
                 "/recommendations/", "/recommendations/rules/", "/recommendations/experiments/"):
        page.goto(f"{live_server.url}{path}")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        culprits = page.evaluate("""() => { const w = document.documentElement.clientWidth; const out = [];
            document.querySelectorAll('body *').forEach(e => { const r = e.getBoundingClientRect();
              if (r.right > w + 1 && out.length < 5) out.push(`${e.tagName}.${e.className} ${Math.round(r.right)}`); });
            return out; }""")
        assert overflow <= 1, f"{path} is {overflow}px wider than a 768px tablet: {culprits}"
