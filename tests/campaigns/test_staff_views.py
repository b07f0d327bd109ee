"""Campaign staff pages: access by role, the builder (create, live estimate, template errors
with their line, preview, start), results with counts, the outbox, the goodwill coupon from the
customer page, and the campaign list in Chinese."""
from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.urls import reverse

from accounts.roles import ANALYST, CUSTOMER_SERVICE, OPERATIONS
from campaigns.choices import CampaignStatus, MessageStatus
from campaigns.models import Campaign, Coupon, Message

from .factories import campaign, customers, tier

pytestmark = pytest.mark.django_db
O, S, A = OPERATIONS, CUSTOMER_SERVICE, ANALYST


def staff(role: str) -> User:
    user = User.objects.create_user(role.lower().replace(" ", "-"), email=f"{role[:3].lower()}@staff.example",
                                    password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def login(client, role: str):
    client.force_login(staff(role))
    return client


@pytest.fixture
def shop():
    """Six silent customers and a draft campaign to them."""
    people = customers(6)
    draft = campaign(name="Silent draft")
    return {"customers": people, "campaign": draft}


@pytest.fixture
def outbox_dir(settings, tmp_path):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "outbox")
    return tmp_path / "outbox"


def builder_data(**overrides) -> dict:
    data = {"name": "Reactivation", "description": "", "kind": "email", "tiers": [tier().pk], "segment": "",
            "holdout_percent": "0", "trigger": "manual", "send_at": "", "cron": "", "entry_tier": "",
            "subject": "Hi {{ first_name }}", "html_body": "<p>Hello {{ first_name }}</p>",
            "text_body": "Hello {{ first_name }} {{ unsubscribe_url }}", "winner_metric": "conversion_rate",
            "coupon_discount": "percent", "coupon_value": "0", "coupon_min_basket": "0", "coupon_valid_days": "30",
            "coupon_uses": "1"}
    data.update(overrides)
    return data


# --- access -------------------------------------------------------------------------------------
PAGES = [
    # url name, args (callable on the shop), {role: status}
    ("campaigns:campaign-list", lambda s: [], {O: 200, S: 403, A: 200}),
    ("campaigns:campaign-create", lambda s: [], {O: 200, S: 403, A: 403}),
    ("campaigns:detail", lambda s: [s["campaign"].pk], {O: 200, S: 403, A: 200}),
    ("campaigns:results", lambda s: [s["campaign"].pk], {O: 200, S: 403, A: 200}),
    ("campaigns:results-data", lambda s: [s["campaign"].pk], {O: 200, S: 403, A: 200}),
    ("campaigns:strategies", lambda s: [], {O: 200, S: 403, A: 200}),
    ("campaigns:outbox", lambda s: [], {O: 200, S: 403, A: 200}),
    ("campaigns:progress", lambda s: [], {O: 200, S: 403, A: 200}),
]


@pytest.mark.parametrize("role", [O, S, A])
@pytest.mark.parametrize("name,args,expected", PAGES, ids=[p[0] for p in PAGES])
def test_page_access_by_role(client, shop, outbox_dir, role, name, args, expected):
    """Operations and Analyst read every campaign page; Customer service gets 403; only
    Operations opens the new-campaign builder."""
    login(client, role)
    assert client.get(reverse(name, args=args(shop))).status_code == expected[role]


def test_anonymous_goes_to_login(client, shop):
    response = client.get(reverse("campaigns:campaign-list"))
    assert response.status_code == 302 and "login" in response["Location"]


@pytest.mark.parametrize("role", [S, A])
def test_writes_are_refused_without_the_permission(client, shop, role):
    """Analyst and Customer service cannot create, edit, test-send or start a campaign (403)."""
    login(client, role)
    c = shop["campaign"]
    assert client.post(reverse("campaigns:campaign-create"), builder_data()).status_code == 403
    assert client.post(reverse("campaigns:detail", args=[c.pk]), builder_data()).status_code == 403
    assert client.post(reverse("campaigns:action", args=[c.pk, "start"])).status_code == 403
    assert client.post(reverse("campaigns:test-send", args=[c.pk])).status_code == 403
    c.refresh_from_db()
    assert c.status == CampaignStatus.DRAFT and not Message.objects.filter(campaign=c).exists()


def test_nav_shows_campaigns_to_readers_only(client, shop):
    login(client, A)
    assert reverse("campaigns:campaign-list") in client.get(reverse("home")).content.decode()
    client.logout()
    login(client, S)
    assert reverse("campaigns:campaign-list") not in client.get(reverse("home")).content.decode()


# --- builder ------------------------------------------------------------------------------------
def test_build_preview_start_and_read_results(client, shop, django_capture_on_commit_callbacks, mailoutbox):
    """Operations creates a draft, previews it for a customer, starts it (tasks run eagerly)
    and the results page shows the counts."""
    login(client, O)
    response = client.post(reverse("campaigns:campaign-create"), builder_data(holdout_percent="0"))
    assert response.status_code == 302
    created = Campaign.objects.get(name="Reactivation")
    assert response["Location"] == reverse("campaigns:detail", args=[created.pk])
    assert list(created.tiers.all()) == [tier()]

    page = client.get(response["Location"]).content.decode()
    assert "Reactivation" in page and 'data-action="start"' in page

    who = shop["customers"][0]
    preview = client.post(reverse("campaigns:preview", args=[created.pk]),
                          json.dumps({"customer": who.pk, "subject": "Dear {{ first_name }}"}),
                          content_type="application/json")
    assert preview.status_code == 200
    assert preview.json()["subject"] == "Dear Name0"
    assert "Hello Name0" in preview.json()["html"]
    created.refresh_from_db()
    assert created.subject == "Hi {{ first_name }}"  # the preview saves nothing

    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(reverse("campaigns:action", args=[created.pk, "start"]))
    assert started["Location"] == reverse("campaigns:results", args=[created.pk])
    created.refresh_from_db()
    assert created.status == CampaignStatus.SENT
    assert Message.objects.filter(campaign=created, status=MessageStatus.SENT).count() == 6
    assert len(mailoutbox) == 6

    results = client.get(started["Location"])
    assert results.status_code == 200
    overall = results.context["results"]["overall"]
    assert (overall["audience"], overall["sent"], overall["holdout"]) == (6, 6, 0)
    assert 'data-figure="sent">6<' in results.content.decode()
    data = client.get(reverse("campaigns:results-data", args=[created.pk])).json()
    assert data["overall"]["sent"] == 6 and data["live"] is False

    listing = client.get(reverse("campaigns:campaign-list")).content.decode()
    assert "6 / 6 sent" in listing


def test_lifecycle_errors_become_messages(client, shop):
    """Pausing a draft is a domain error: a message, not a 500."""
    login(client, O)
    response = client.post(reverse("campaigns:action", args=[shop["campaign"].pk, "pause"]), follow=True)
    assert response.status_code == 200
    assert "Only a sending campaign can be paused." in response.content.decode()


def test_schedule_and_cancel_from_the_builder(client, shop):
    login(client, O)
    c = shop["campaign"]
    data = builder_data(name=c.name, trigger="once", send_at="2099-01-01T09:00")
    assert client.post(reverse("campaigns:detail", args=[c.pk]), data).status_code == 302
    client.post(reverse("campaigns:action", args=[c.pk, "schedule"]))
    c.refresh_from_db()
    assert c.status == CampaignStatus.SCHEDULED and c.send_at.year == 2099
    client.post(reverse("campaigns:action", args=[c.pk, "cancel"]))
    c.refresh_from_db()
    assert c.status == CampaignStatus.CANCELLED


def test_template_syntax_error_is_shown_with_its_line(client, shop):
    """Saving a template that does not compile re-shows the form with the error and its line."""
    login(client, O)
    body = "Hello\n{{ first_name }}\n{% if first_name %}\nno end"
    response = client.post(reverse("campaigns:campaign-create"), builder_data(text_body=body))
    assert response.status_code == 400
    assert not Campaign.objects.filter(name="Reactivation").exists()
    page = response.content.decode()
    assert "Line 3:" in page
    # The preview endpoint reports the same for the editor's unsaved content.
    preview = client.post(reverse("campaigns:preview", args=[shop["campaign"].pk]),
                          json.dumps({"customer": shop["customers"][0].pk, "html_body": "<p>\n{% for x in %}</p>"}),
                          content_type="application/json")
    assert preview.status_code == 400
    assert preview.json()["errors"]["html_body"][0].startswith("Line 2:")


def test_variant_errors_land_on_the_variant(client, shop):
    login(client, O)
    data = builder_data(variant0_name="B", variant0_weight="50", variant0_subject="{% if %}")
    response = client.post(reverse("campaigns:campaign-create"), data)
    assert response.status_code == 400
    assert response.context["form"].errors["variant0_subject"]


def test_live_audience_estimate(client, shop):
    """The estimate counts the tiers' members, minus exclusions, with the expected holdout."""
    customers(2, prefix="noconsent", consent=False)
    login(client, A)
    response = client.post(reverse("campaigns:estimate"),
                           json.dumps({"tiers": [tier().pk], "holdout_percent": "50", "kind": "email"}),
                           content_type="application/json")
    assert response.status_code == 200
    body = response.json()
    assert body["audience"] == 8 and body["eligible"] == 6 and body["expected_holdout"] == 3
    assert body["excluded"] == {"no_consent": 2}
    empty = client.post(reverse("campaigns:estimate"), json.dumps({"tiers": []}), content_type="application/json")
    assert empty.json()["audience"] == 0
    bad = client.post(reverse("campaigns:estimate"), json.dumps({"tiers": ["x"]}), content_type="application/json")
    assert bad.status_code == 400


def test_test_send_goes_to_the_staff_address(client, shop, mailoutbox):
    login(client, O)
    client.post(reverse("campaigns:test-send", args=[shop["campaign"].pk]),
                {"customer": shop["customers"][1].pk})
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["ope@staff.example"] and mailoutbox[0].subject.startswith("[TEST]")
    assert not Message.objects.exists()


# --- outbox -------------------------------------------------------------------------------------
def test_outbox_lists_and_shows_a_sent_message(client, shop, outbox_dir, django_capture_on_commit_callbacks):
    login(client, O)
    from campaigns.services import campaign_start

    with django_capture_on_commit_callbacks(execute=True):
        campaign_start(campaign=shop["campaign"])
    page = client.get(reverse("campaigns:outbox"))
    assert page.status_code == 200
    entries = page.context["page_obj"].object_list
    assert len(entries) == 6 and page.context["page_obj"].paginator.count == 6
    assert "Hello Name" in page.content.decode()
    message = client.get(reverse("campaigns:outbox-message", args=[entries[0].id]))
    assert message.status_code == 200 and "List-Unsubscribe" in message.content.decode()
    assert client.get(reverse("campaigns:outbox-message", args=["missing.log:0"])).status_code == 404
    assert client.get("/campaigns/outbox/..%2F..%2Fetc%2Fpasswd:0/").status_code == 404


def test_outbox_empty_state(client, outbox_dir):
    login(client, A)
    assert "The outbox is empty." in client.get(reverse("campaigns:outbox")).content.decode()


# --- customer page ------------------------------------------------------------------------------
def test_goodwill_coupon_from_the_customer_page(client, shop):
    """Customer service sees the form and issues a coupon; it then shows on the page."""
    login(client, S)
    who = shop["customers"][0]
    page = client.get(reverse("accounts:customer-detail", args=[who.pk])).content.decode()
    assert "Issue goodwill coupon" in page
    response = client.post(reverse("campaigns:goodwill-coupon", args=[who.pk]),
                           {"discount": "percent", "value": "10", "valid_days": "14", "reason": "Late delivery"})
    assert response.status_code == 302
    coupon = Coupon.objects.get(customer=who)
    assert coupon.value == Decimal("10") and coupon.campaign is None and coupon.reason == "Late delivery"
    page = client.get(reverse("accounts:customer-detail", args=[who.pk])).content.decode()
    assert coupon.code in page and "Goodwill coupon" in page


def test_goodwill_coupon_over_the_cap_is_a_message(client, shop):
    login(client, S)
    who = shop["customers"][0]
    response = client.post(reverse("campaigns:goodwill-coupon", args=[who.pk]),
                           {"discount": "percent", "value": "90", "valid_days": "14", "reason": "x"}, follow=True)
    assert "at most 20" in response.content.decode()
    assert not Coupon.objects.exists()


def test_goodwill_coupon_refused_without_the_permission(client, shop):
    """Analyst may read the customer page but not issue coupons: no form, and the POST is 403."""
    login(client, A)
    who = shop["customers"][0]
    page = client.get(reverse("accounts:customer-detail", args=[who.pk])).content.decode()
    assert "Issue goodwill coupon" not in page
    response = client.post(reverse("campaigns:goodwill-coupon", args=[who.pk]),
                           {"discount": "percent", "value": "10", "valid_days": "14", "reason": "x"})
    assert response.status_code == 403
    assert not Coupon.objects.exists()


def test_customer_page_lists_the_messages_received(client, shop, django_capture_on_commit_callbacks):
    from campaigns.services import campaign_start

    with django_capture_on_commit_callbacks(execute=True):
        campaign_start(campaign=shop["campaign"])
    login(client, S)
    page = client.get(reverse("accounts:customer-detail", args=[shop["customers"][0].pk])).content.decode()
    assert "Silent draft" in page and "Campaign messages" in page


# --- Chinese ------------------------------------------------------------------------------------
@pytest.fixture
def compiled_translations(settings):
    call_command("compile_translations", stdout=io.StringIO())
    settings.LOCALE_PATHS = list(settings.LOCALE_PATHS)


def test_campaign_list_in_chinese(client, shop, compiled_translations):
    login(client, O)
    client.cookies["django_language"] = "zh-hans"
    page = client.get(reverse("campaigns:campaign-list"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "营销活动" in page and "新建营销活动" in page and "草稿" in page


def test_analyst_reads_the_builder_without_save_or_send_buttons(client, shop):
    login(client, A)
    response = client.get(reverse("campaigns:detail", args=[shop["campaign"].pk]))
    page = response.content.decode()
    assert response.context["form"].fields["name"].disabled
    assert 'data-action="start"' not in page and "Send test" not in page and ">Save<" not in page


def test_demo_step_installs_the_campaigns_after_the_tiers(shop):
    from crm.core import demo

    names = [name for name, _step in demo.DEMO_STEPS]
    assert names.index("Campaigns") > names.index("Tiers")
    report = dict(demo.DEMO_STEPS)["Campaigns"]()
    assert "campaigns created" in report
    assert Campaign.objects.filter(description="Demo campaign").exists()
