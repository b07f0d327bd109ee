"""Segmentation staff pages: access by role, the rule preview, saving tiers and segments,
recompute with progress, pins from the customer page, the customer page's tier sections,
customer-list filters, the admin's rule validation, and a page in Chinese."""
from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.roles import ANALYST, CUSTOMER_SERVICE, OPERATIONS
from segmentation.choices import ChangeCause, RunStatus
from segmentation.models import Membership, RecomputeRun, Segment, Tier, TierChange, TierOverride

from .test_engine import DAY, builtin_dimensions, customer, event, purchase, recompute  # noqa: F401

pytestmark = pytest.mark.django_db


def staff(username: str, role: str | None = None, **extra) -> User:
    user = User.objects.create_user(username, password="pw", is_staff=extra.pop("is_staff", True), **extra)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def login(client, role: str):
    client.force_login(staff(role.lower().replace(" ", "-"), role))
    return client


@pytest.fixture
def shop():
    """A VIP big spender, a regular and a lapsed customer, tiered as of now."""
    now = timezone.now()
    vip = customer("vip", signup=now - 400 * DAY, email="vip@example.com", city="Berlin")
    vip.name = "Vera Important"
    vip.save(update_fields=["name"])
    for k in range(12):
        purchase(vip, now - (2 + 20 * k) * DAY, "400.00")
    regular = customer("regular", signup=now - 300 * DAY, city="Paris")
    purchase(regular, now - 10 * DAY, "20.00")
    event(regular, now - 3 * DAY)
    lapsed = customer("lapsed", signup=now - 500 * DAY)
    purchase(lapsed, now - 200 * DAY, "15.00")
    recompute(now)
    return {"vip": vip, "regular": regular, "lapsed": lapsed}


@pytest.fixture
def compiled_translations(settings):
    call_command("compile_translations", stdout=io.StringIO())
    settings.LOCALE_PATHS = list(settings.LOCALE_PATHS)  # setting_changed resets gettext's catalogues


def tier(dimension: str, slug: str) -> Tier:
    return Tier.objects.get(dimension__slug=dimension, slug=slug)


def preview(client, rule, **extra):
    return client.post(reverse("segmentation:preview"), data=json.dumps({"rule": rule, **extra}),
                       content_type="application/json")


# --- access -------------------------------------------------------------------------------
O, S, A = OPERATIONS, CUSTOMER_SERVICE, ANALYST
PAGES = [
    # url name, args (callable), {role: status}
    ("segmentation:overview", lambda: [], {O: 200, S: 200, A: 200}),
    ("segmentation:tier", lambda: [tier("value", "high").pk], {O: 200, S: 200, A: 200}),
    ("segmentation:segment-list", lambda: [], {O: 200, S: 403, A: 200}),
    ("segmentation:segment-create", lambda: [], {O: 200, S: 403, A: 403}),
    ("segmentation:run-list", lambda: [], {O: 200, S: 403, A: 200}),
    ("segmentation:models", lambda: [], {O: 200, S: 403, A: 200}),
]


@pytest.mark.parametrize("role", [O, S, A])
@pytest.mark.parametrize("url_name,args,expected", PAGES, ids=[p[0] for p in PAGES])
def test_pages_answer_200_or_403_by_role(client, role, url_name, args, expected):
    """Operations sees everything, customer service the tiers, the analyst reads everything."""
    login(client, role)
    assert client.get(reverse(url_name, args=args())).status_code == expected[role]


def test_anonymous_users_go_to_login_and_staff_without_roles_get_403(client):
    url = reverse("segmentation:overview")
    response = client.get(url)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    client.force_login(staff("nobody"))
    assert client.get(url).status_code == 403
    assert preview(client, {}).status_code == 403


def test_navigation_shows_segmentation_only_with_the_permission(client):
    client.force_login(staff("nobody"))
    assert reverse("segmentation:overview") not in client.get(reverse("home")).content.decode()
    login(client, ANALYST)
    assert reverse("segmentation:overview") in client.get(reverse("home")).content.decode()


# --- overview -----------------------------------------------------------------------------
def test_overview_lists_tiers_with_counts_linking_to_the_filtered_customer_list(client, shop):
    login(client, OPERATIONS)
    html = client.get(reverse("segmentation:overview")).content.decode()
    assert "High (VIP)" in html and "Champions" in html
    assert f'{reverse("accounts:customer-list")}?tier=value:high' in html
    assert 'id="tier-trends"' in html and "vendor/echarts/echarts.min.js" in html


def test_customer_list_filters_by_tier_and_by_segment(client, shop):
    login(client, OPERATIONS)
    list_url = reverse("accounts:customer-list")
    high = Membership.objects.filter(dimension__slug="value", tier__slug="high").values_list("customer__external_id", flat=True)
    html = client.get(list_url, {"tier": "value:high"}).content.decode()
    assert "vip" in set(high)
    assert ">vip<" in html and ">lapsed<" not in html
    assert "Value: High (VIP)" in html
    Segment.objects.create(slug="berliners", name="Berliners", rule={"field": "attributes.city", "op": "=", "value": "Berlin"})
    html = client.get(list_url, {"segment": "berliners"}).content.decode()
    assert ">vip<" in html and ">regular<" not in html
    html = client.get(list_url, {"tier": "value:nope"}).content.decode()
    assert ">vip<" not in html and "unknown" in html


# --- preview ------------------------------------------------------------------------------
def test_preview_returns_the_count_and_a_sample(client, shop):
    login(client, OPERATIONS)
    response = preview(client, {"all": [{"field": "orders_total", "op": ">=", "value": 1}]})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert {row["external_id"] for row in body["sample"]} == {"vip", "regular", "lapsed"}
    assert all(row["url"].startswith("/customers/") for row in body["sample"])


def test_preview_counts_attributes_features_and_tiers_together_and_leaves_the_planner_as_it_was(client, shop):
    """A rule across JSON attributes, features and another dimension's tier counts right; on
    PostgreSQL the count runs without nested loops (services.audience_count) and the setting is
    back afterwards, also inside an enclosing transaction."""
    from django.db import connection, transaction

    from segmentation.services import segment_preview

    now = timezone.now()
    event(customer("browser", signup=now - 50 * DAY, city="Berlin"), now - DAY)  # Berlin, no order, not VIP
    purchase(customer("roman", signup=now - 50 * DAY, city="Rome"), now - DAY)  # an order, not in the cities
    recompute(now)
    login(client, OPERATIONS)
    rule = {"all": [{"field": "attributes.city", "op": "in", "value": ["Berlin", "Paris"]},
                    {"any": [{"field": "orders_total", "op": ">=", "value": 5},
                             {"field": "tier:value", "op": "in", "value": ["low"]}]}]}
    expected = {"vip", "regular", "browser"}  # vip by its 12 orders, the other two by their tier
    assert {m.customer.external_id for m in Membership.objects.filter(dimension__slug="value", tier__slug="low")
            .select_related("customer")} >= {"regular", "browser"}
    assert tier("value", "high").memberships.filter(customer__external_id="vip").exists()
    body = preview(client, rule).json()
    assert body["count"] == len(expected)
    assert {row["external_id"] for row in body["sample"]} == expected
    with transaction.atomic():
        assert segment_preview(rule=rule)["count"] == len(expected)
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                cur.execute("SELECT current_setting('enable_nestloop')")
                assert cur.fetchone()[0] == "on"


def test_preview_names_every_validation_error_by_path_and_field(client, shop):
    login(client, OPERATIONS)
    rule = {"all": [{"field": "orders_total", "op": ">=", "value": 1},
                    {"any": [{"field": "no_such_field", "op": "=", "value": 1},
                             {"field": "orders_90d", "op": "contains", "value": 2}]}]}
    response = preview(client, rule)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {e["path"] for e in errors} == {"all[1].any[0]", "all[1].any[1]"}
    assert any("no_such_field" in e["message"] for e in errors)
    assert any("orders_90d" in e["message"] for e in errors)


def test_preview_of_a_tier_counts_who_would_land_in_it_and_refuses_its_own_dimension(client, shop):
    login(client, OPERATIONS)
    mid = tier("value", "mid")
    body = preview(client, {"field": "orders_total", "op": ">=", "value": 1}, tier=mid.pk).json()
    assert body["count"] == 3
    assert body["in_tier"] == 3 - Membership.objects.filter(tier=tier("value", "high")).count()
    response = preview(client, {"field": "tier:value", "op": "=", "value": "high"}, tier=mid.pk)
    assert response.status_code == 400
    assert "own dimension" in response.json()["errors"][0]["message"]


def test_preview_masks_personal_data_for_roles_without_pii(client, shop):
    login(client, ANALYST)
    body = preview(client, {"field": "orders_total", "op": ">=", "value": 10}).json()
    assert body["count"] == 1
    assert body["sample"][0]["name"] != "Vera Important" and body["sample"][0]["name"].startswith("V")


# --- tiers --------------------------------------------------------------------------------
def test_saving_a_tier_validates_the_rule_and_says_when_it_applies(client, shop):
    login(client, OPERATIONS)
    silent = tier("behaviour", "silent")
    url = reverse("segmentation:tier", args=[silent.pk])
    form = {"name": "Quiet", "order": silent.order, "colour": "#112233", "service_level": "Call them.", "description": "",
            "rule": json.dumps({"field": "activity_recency_days", "op": "<=", "value": 120})}
    response = client.post(url, {**form, "rule": json.dumps({"field": "activity_recency_days", "op": "<=", "value": "soon"})})
    assert response.status_code == 200
    assert "activity_recency_days" in response.content.decode()  # the error names the field
    silent.refresh_from_db()
    assert silent.name == "Silent" and silent.rule["all"][0]["value"] == 90  # nothing saved

    response = client.post(url, form, follow=True)
    silent.refresh_from_db()
    assert (silent.name, silent.colour, silent.rule["value"]) == ("Quiet", "#112233", 120)
    assert "next recompute" in response.content.decode()


def test_a_tier_rule_cannot_refer_to_its_own_dimension(client, shop):
    login(client, OPERATIONS)
    mid = tier("value", "mid")
    response = client.post(reverse("segmentation:tier", args=[mid.pk]), {
        "name": "Mid", "order": mid.order, "colour": mid.colour, "service_level": "", "description": "",
        "rule": json.dumps({"field": "tier:value", "op": "=", "value": "high"})})
    assert response.status_code == 200
    assert "own dimension" in response.content.decode()


@pytest.mark.parametrize("role", [CUSTOMER_SERVICE, ANALYST])
def test_only_operations_may_change_tiers(client, shop, role):
    login(client, role)
    high = tier("value", "high")
    page = client.get(reverse("segmentation:tier", args=[high.pk])).content.decode()
    assert 'data-readonly="1"' in page and "Save tier" not in page
    response = client.post(reverse("segmentation:tier", args=[high.pk]), {"name": "x", "order": 1, "colour": "#000000", "rule": "{}"})
    assert response.status_code == 403
    high.refresh_from_db()
    assert high.name == "High (VIP)"


# --- segments -----------------------------------------------------------------------------
def test_the_segment_list_shows_a_broken_rule_as_an_error_and_still_counts_the_others(client, shop):
    Segment.objects.create(slug="gone", name="Gone tier", rule={"field": "tier:value", "op": "=", "value": "platinum"})
    Segment.objects.create(slug="all", name="Everyone", rule={"field": "orders_total", "op": ">=", "value": 0})
    login(client, OPERATIONS)
    response = client.get(reverse("segmentation:segment-list"))
    assert response.status_code == 200
    segments = {s.slug: s for s in response.context["page_obj"].object_list}
    assert segments["gone"].customers is None and "platinum" in segments["gone"].error
    assert segments["all"].customers > 0 and segments["all"].error == ""
    assert "rule error" in response.content.decode()


def test_segments_can_be_created_edited_listed_and_deleted(client, shop):
    login(client, OPERATIONS)
    rule = {"all": [{"field": "orders_total", "op": ">=", "value": 5}]}
    response = client.post(reverse("segmentation:segment-create"),
                           {"name": "Frequent", "slug": "frequent", "description": "", "rule": json.dumps(rule)})
    assert response.status_code == 302
    segment = Segment.objects.get(slug="frequent")
    assert segment.rule == rule
    html = client.get(reverse("segmentation:segment-list")).content.decode()
    assert "Frequent" in html and f'{reverse("accounts:customer-list")}?segment=frequent' in html

    bad = client.post(reverse("segmentation:segment-edit", args=["frequent"]),
                      {"name": "Frequent", "slug": "frequent", "rule": json.dumps({"field": "nope", "op": "=", "value": 1})})
    assert bad.status_code == 200 and "nope" in bad.content.decode()
    client.post(reverse("segmentation:segment-edit", args=["frequent"]),
                {"name": "Very frequent", "slug": "frequent", "rule": json.dumps(rule)})
    segment.refresh_from_db()
    assert segment.name == "Very frequent"

    assert client.post(reverse("segmentation:segment-delete", args=["frequent"])).status_code == 302
    assert not Segment.objects.filter(slug="frequent").exists()


def test_analysts_read_segments_but_cannot_change_them(client, shop):
    Segment.objects.create(slug="all-buyers", name="All buyers", rule={"field": "orders_total", "op": ">=", "value": 1})
    login(client, ANALYST)
    assert client.get(reverse("segmentation:segment-edit", args=["all-buyers"])).status_code == 200
    assert client.post(reverse("segmentation:segment-edit", args=["all-buyers"]), {"name": "x"}).status_code == 403
    assert client.post(reverse("segmentation:segment-delete", args=["all-buyers"])).status_code == 403
    assert Segment.objects.filter(slug="all-buyers", name="All buyers").exists()


# --- recompute ----------------------------------------------------------------------------
def test_recompute_now_creates_a_run_and_the_progress_endpoint_reports_it(client, shop):
    login(client, OPERATIONS)
    before = RecomputeRun.objects.count()
    response = client.post(reverse("segmentation:recompute"), {"mode": "full"})
    assert RecomputeRun.objects.count() == before + 1
    run = RecomputeRun.objects.order_by("-id").first()
    assert response.status_code == 302 and response.url == reverse("segmentation:run-detail", args=[run.pk])
    assert run.status == RunStatus.SUCCEEDED  # tasks run in process in the tests
    status = client.get(reverse("segmentation:run-status", args=[run.pk])).json()
    assert status["status"] == "succeeded" and status["progress"] == 100 and status["finished"] is True
    assert status["customers"] == 3 and "timings" in status
    page = client.get(reverse("segmentation:run-detail", args=[run.pk])).content.decode()
    assert reverse("segmentation:run-status", args=[run.pk]) in page


def test_a_failed_recompute_is_shown_not_hidden(client, shop, monkeypatch):
    from segmentation import engine

    def boom(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(engine, "recompute_pass", boom)
    login(client, OPERATIONS)
    response = client.post(reverse("segmentation:recompute"), {"mode": "full"}, follow=True)
    run = RecomputeRun.objects.order_by("-id").first()
    assert run.status == RunStatus.FAILED and "disk full" in run.error
    assert "disk full" in response.content.decode()
    assert "disk full" in client.get(reverse("segmentation:run-list")).content.decode()


@pytest.mark.parametrize("role", [CUSTOMER_SERVICE, ANALYST])
def test_only_operations_may_recompute(client, role):
    login(client, role)
    assert client.post(reverse("segmentation:recompute"), {"mode": "full"}).status_code == 403
    assert not RecomputeRun.objects.exists()


# --- customer page and pins -----------------------------------------------------------------
def test_customer_page_shows_tiers_vip_badge_service_level_and_history(client, shop):
    login(client, CUSTOMER_SERVICE)
    vip = shop["vip"]
    assert Membership.objects.get(customer=vip, dimension__slug="value").tier.slug == "high"
    html = client.get(reverse("accounts:customer-detail", args=[vip.pk])).content.decode()
    assert 'data-badge="vip"' in html
    assert "VIP: priority queue" in html  # the service level of the VIP tier, at the top
    assert 'id="tiers"' in html and "Tier history" in html
    assert html.count('class="tier-timeline-item"') == TierChange.objects.filter(customer=vip).count() >= 4
    assert "Features behind the tiers" in html
    assert "M score (1-5)" in html  # the rule that put the customer in the tier, readable
    regular_html = client.get(reverse("accounts:customer-detail", args=[shop["regular"].pk])).content.decode()
    assert 'data-badge="vip"' not in regular_html


def test_customer_page_without_segmentation_permission_has_no_tier_sections(client, shop):
    user = staff("viewer")
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client.force_login(user)
    html = client.get(reverse("accounts:customer-detail", args=[shop["vip"].pk])).content.decode()
    assert 'id="tiers"' not in html and 'data-badge="vip"' not in html


def test_customer_service_pins_a_tier_and_revokes_the_pin(client, shop):
    login(client, CUSTOMER_SERVICE)
    lapsed = shop["lapsed"]
    high = tier("value", "high")
    expires = (timezone.now() + timedelta(days=14)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(reverse("segmentation:pin", args=[lapsed.pk]),
                           {"tier": high.pk, "reason": "Complained twice, keep them happy", "expires_at": expires})
    assert response.status_code == 302 and response.url.endswith("#tiers")
    override = TierOverride.objects.get(customer=lapsed)
    membership = Membership.objects.get(customer=lapsed, dimension__slug="value")
    assert membership.tier == high and membership.overridden
    assert TierChange.objects.filter(customer=lapsed, to_tier=high, cause=ChangeCause.OVERRIDE).exists()
    html = client.get(reverse("accounts:customer-detail", args=[lapsed.pk])).content.decode()
    assert "Complained twice" in html and reverse("segmentation:pin-revoke", args=[override.pk]) in html

    client.post(reverse("segmentation:pin-revoke", args=[override.pk]))
    override.refresh_from_db()
    assert override.revoked_at is not None


def test_a_pin_needs_a_reason_and_a_future_expiry(client, shop):
    login(client, CUSTOMER_SERVICE)
    past = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(reverse("segmentation:pin", args=[shop["lapsed"].pk]),
                           {"tier": tier("value", "high").pk, "reason": "  ", "expires_at": past}, follow=True)
    assert not TierOverride.objects.exists()
    html = response.content.decode()
    assert "Say why the tier is pinned." in html and "The pin must expire in the future." in html


def test_pins_are_refused_without_permission(client, shop):
    login(client, ANALYST)
    lapsed = shop["lapsed"]
    expires = (timezone.now() + timedelta(days=14)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(reverse("segmentation:pin", args=[lapsed.pk]),
                           {"tier": tier("value", "high").pk, "reason": "x", "expires_at": expires})
    assert response.status_code == 403
    assert not TierOverride.objects.exists()
    override = TierOverride.objects.create(customer=lapsed, dimension=tier("value", "high").dimension, tier=tier("value", "high"),
                                           reason="r", expires_at=timezone.now() + timedelta(days=1))
    assert client.post(reverse("segmentation:pin-revoke", args=[override.pk])).status_code == 403
    html = client.get(reverse("accounts:customer-detail", args=[lapsed.pk])).content.decode()
    assert "Pin a tier" not in html and "Revoke" not in html


# --- models ---------------------------------------------------------------------------------
def test_models_page_has_an_empty_state_and_renders_metrics(client):
    from segmentation.models import Cluster, PredictiveModel

    login(client, ANALYST)
    html = client.get(reverse("segmentation:models")).content.decode()
    assert "python manage.py train_models" in html
    PredictiveModel.objects.create(kind="churn", algorithm="logistic_regression", status="succeeded", active=True,
                                   metrics={"test": {"roc_auc": 0.8123, "precision": 0.7, "recall": 0.6,
                                                     "calibration": [{"bin": 1, "predicted": 0.1, "observed": 0.12}]},
                                            "odd_key": {"nested": [1, 2]}})
    cluster_model = PredictiveModel.objects.create(kind="cluster", algorithm="kmeans", status="succeeded", metrics={"k": 2})
    Cluster.objects.create(model=cluster_model, index=0, name="Big spenders", size=10,
                           centroid={"centroid": {"revenue_total": 900.5, "orders_total": 12}, "median": {}})
    html = client.get(reverse("segmentation:models")).content.decode()
    assert "0.8123" in html and "odd_key" in html and "Big spenders" in html and "900.5" in html


# --- admin ----------------------------------------------------------------------------------
def test_admin_tier_form_shows_rule_errors_on_the_field(admin_client):
    high = tier("value", "high")
    url = reverse("admin:segmentation_tier_change", args=[high.pk])
    response = admin_client.post(url, {"dimension": high.dimension_id, "slug": high.slug, "name": high.name, "order": high.order,
                                       "colour": high.colour, "service_level": "", "description": "",
                                       "rule": json.dumps({"field": "bogus", "op": "=", "value": 1})})
    assert response.status_code == 200
    assert "unknown field &#x27;bogus&#x27;" in response.content.decode() or "unknown field 'bogus'" in response.content.decode()
    assert response.context["adminform"].form.errors["rule"]


def test_admin_recompute_action_and_read_only_computed_rows(admin_client, shop):
    before = RecomputeRun.objects.count()
    response = admin_client.post(reverse("admin:segmentation_recomputerun_recompute"), {"mode": "incremental"})
    assert response.status_code == 302 and RecomputeRun.objects.count() == before + 1
    membership = Membership.objects.first()
    response = admin_client.post(reverse("admin:segmentation_membership_change", args=[membership.pk]), {})
    assert response.status_code == 403
    assert admin_client.get(reverse("admin:segmentation_customerfeatures_add")).status_code == 403


def test_admin_tier_history_and_memberships_list_newest_first_and_find_a_customer_by_exact_id(admin_client, shop):
    """Millions of rows on a real shop: newest first by id, the unfiltered count estimated on
    PostgreSQL (crm.core.pagination), and the search an exact external id (an index look-up)."""
    for model in ("tierchange", "membership"):
        url = reverse(f"admin:segmentation_{model}_changelist")
        page = admin_client.get(url)
        assert page.status_code == 200
        rows = list(page.context["cl"].result_list)
        assert [r.pk for r in rows] == sorted((r.pk for r in rows), reverse=True)
        found = admin_client.get(url, {"q": "vip"}).context["cl"].result_list
        assert found and {r.customer.external_id for r in found} == {"vip"}
        assert not admin_client.get(url, {"q": "vi"}).context["cl"].result_list  # exact, not a substring


def test_admin_pins_go_through_the_service(admin_client, shop):
    lapsed, high = shop["lapsed"], tier("value", "high")
    expires = timezone.now() + timedelta(days=3)
    response = admin_client.post(reverse("admin:segmentation_tieroverride_add"), {
        "customer": lapsed.pk, "tier": high.pk, "reason": "VIP event guest",
        "expires_at_0": expires.strftime("%Y-%m-%d"), "expires_at_1": expires.strftime("%H:%M:%S")})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Membership.objects.get(customer=lapsed, dimension=high.dimension).tier == high


# --- languages ------------------------------------------------------------------------------
def test_pages_render_in_chinese(client, shop, compiled_translations):
    login(client, OPERATIONS)
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    html = client.get(reverse("segmentation:overview")).content.decode()
    assert '<html lang="zh-hans">' in html
    assert "维度与分层" in html  # "Dimensions and tiers"
    assert "立即重算" in html  # "Recompute now"
    html = client.get(reverse("accounts:customer-detail", args=[shop["vip"].pk])).content.decode()
    assert "分层历史" in html  # "Tier history"
    assert "服务等级" in html  # "Service level"


def test_every_string_of_the_segmentation_pages_has_a_chinese_translation(settings):
    """makemessages + the catalogue: nothing from segmentation's UI is left untranslated or fuzzy."""
    import polib

    ours = ("segmentation/views", "segmentation/forms", "segmentation/admin", "segmentation/customer_page",
            "templates/segmentation/", "templates/admin/segmentation/", "accounts/customer_page")
    catalogue = polib.pofile(str(settings.LOCALE_PATHS[0] / "zh_Hans" / "LC_MESSAGES" / "django.po"))
    missing = [e.msgid for e in catalogue
               if any(path.startswith(ours) for path, _line in e.occurrences) and (not e.translated() or "fuzzy" in e.flags)]
    assert missing == []
