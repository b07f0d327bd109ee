"""Tier and dimension names in the UI language (crm/core/translations.py, migration 0005).

The rules under test: staff pages in Chinese show the built-in tiers' Chinese names and service
levels; a name staff changed without a Chinese one shows as they wrote it; the storefront API
always returns the stored names; the staff form and the admin edit a text and its translation
together, and changing the text alone drops the translation instead of keeping a stale one.
"""
from __future__ import annotations

import importlib
import json

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation

from accounts.roles import OPERATIONS
from crm.core.translations import validate_translations
from segmentation.defaults import ZH_HANS
from segmentation.models import Dimension, Membership, Tier

from .test_engine import builtin_dimensions  # noqa: F401  (autouse fixture)
from .test_views import compiled_translations, login, shop, tier  # noqa: F401

pytestmark = pytest.mark.django_db
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}


@pytest.fixture(autouse=True)
def _in_english():
    """A request activates its language in the test's thread (LocaleMiddleware) and leaves it
    active: start in English whatever ran before, and put back what was active afterwards."""
    with translation.override("en"):
        yield


def tier_form(t: Tier, **changes) -> dict:
    """The tier page's form as the browser posts it, with `changes`."""
    zh = t.translations.get("zh-hans", {})
    return {"name": t.name, "order": t.order, "colour": t.colour, "service_level": t.service_level,
            "description": t.description, "rule": json.dumps(t.rule),
            "name_zh_hans": zh.get("name", ""), "service_level_zh_hans": zh.get("service_level", ""),
            "description_zh_hans": zh.get("description", ""), **({"is_vip": "on"} if t.is_vip else {}), **changes}


# --- the model ------------------------------------------------------------------------------------
def test_built_in_tiers_have_chinese_names_and_fall_back_to_the_stored_text():
    champions = tier("rfm", "champions")
    with translation.override("zh-hans"):
        assert champions.display_name == "冠军客户"
        assert str(champions) == "冠军客户"
        assert champions.display_service_level == ZH_HANS[("rfm", "champions")]["service_level"]
        assert Dimension.objects.get(slug="behaviour").display_name == "行为"
    with translation.override("en"):
        assert champions.display_name == "Champions"
        assert champions.display_service_level == champions.service_level
    assert Tier.objects.exclude(translations__has_key="zh-hans").count() == 0  # every built-in tier


def test_the_migration_translates_only_texts_that_are_still_the_shipped_ones():
    """A tier renamed before the migration ran keeps its name in Chinese too (no stale meaning)."""
    Tier.objects.filter(dimension__slug="rfm", slug="lost").update(name="Gone for good", translations={})
    importlib.import_module("segmentation.migrations.0005_builtin_translations").install(django_apps, None)
    lost = tier("rfm", "lost")
    assert "name" not in lost.translations["zh-hans"]
    assert lost.translations["zh-hans"]["service_level"] == ZH_HANS[("rfm", "lost")]["service_level"]
    with translation.override("zh-hans"):
        assert lost.display_name == "Gone for good"


def test_translations_must_name_a_known_language():
    validate_translations({"zh-hans": {"name": "冠军客户"}})
    with pytest.raises(ValidationError):
        validate_translations({"fr": {"name": "Champions"}})
    with pytest.raises(ValidationError):
        validate_translations({"zh-hans": {"name": 3}})


# --- staff pages ------------------------------------------------------------------------------------
def test_dimensions_page_in_chinese_shows_chinese_tier_names(client, shop, compiled_translations):
    login(client, OPERATIONS)
    html = client.get(reverse("segmentation:overview"), **ZH).content.decode()
    for chinese in ("冠军客户", "不能失去的客户", "高价值（VIP）", "引导期", "行为", "生命周期"):
        assert chinese in html
    assert ZH_HANS[("value", "high")]["service_level"] in html
    assert ">Champions<" not in html
    assert ">Champions<" in client.get(reverse("segmentation:overview")).content.decode()


def test_customer_page_in_chinese_shows_chinese_tiers_and_service_level(client, shop, compiled_translations):
    login(client, OPERATIONS)
    vip = shop["vip"]
    memberships = {m.dimension.slug: m.tier for m in Membership.objects.filter(customer=vip).select_related("tier", "dimension")}
    assert memberships["value"].slug == "high"
    html = client.get(reverse("accounts:customer-detail", args=[vip.pk]), **ZH).content.decode()
    for slug, t in memberships.items():
        assert f"{ZH_HANS[slug]['name']}: {ZH_HANS[(slug, t.slug)]['name']}" in html  # the badges
    assert ZH_HANS[("value", "high")]["service_level"] in html
    assert "High (VIP)" not in html


def test_a_renamed_tier_without_a_chinese_name_shows_the_new_name(client, shop, compiled_translations):
    """Saving a new English name on the tier page while leaving the Chinese one as it was drops the
    Chinese one (it named the old meaning) and says so; the Chinese page then shows the new name."""
    login(client, OPERATIONS)
    champions = tier("rfm", "champions")
    response = client.post(reverse("segmentation:tier", args=[champions.pk]), tier_form(champions, name="Top buyers"),
                           follow=True)
    assert response.status_code == 200
    assert "translation was removed" in response.content.decode()
    champions.refresh_from_db()
    assert champions.name == "Top buyers" and "name" not in champions.translations["zh-hans"]
    assert champions.translations["zh-hans"]["service_level"] == ZH_HANS[("rfm", "champions")]["service_level"]
    html = client.get(reverse("segmentation:overview"), **ZH).content.decode()
    assert "Top buyers" in html and "冠军客户" not in html


def test_the_tier_page_edits_the_name_and_its_chinese_name_together(client, shop, compiled_translations):
    login(client, OPERATIONS)
    champions = tier("rfm", "champions")
    page = client.get(reverse("segmentation:tier", args=[champions.pk])).content.decode()
    assert 'name="name_zh_hans"' in page and 'value="冠军客户"' in page and 'name="service_level_zh_hans"' in page
    response = client.post(reverse("segmentation:tier", args=[champions.pk]),
                           tier_form(champions, name="Top buyers", name_zh_hans="头部买家"), follow=True)
    assert "translation was removed" not in response.content.decode()
    champions.refresh_from_db()
    assert champions.translations["zh-hans"]["name"] == "头部买家"
    assert "头部买家" in client.get(reverse("segmentation:overview"), **ZH).content.decode()
    assert "Top buyers" in client.get(reverse("segmentation:overview")).content.decode()


def test_the_admin_shows_both_names_and_drops_a_stale_translation(admin_client, compiled_translations):
    champions = tier("rfm", "champions")
    url = reverse("admin:segmentation_tier_change", args=[champions.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="name_zh_hans"' in page and "冠军客户" in page
    form = {"dimension": champions.dimension_id, "slug": champions.slug, **tier_form(champions, name="Top buyers")}
    response = admin_client.post(url, form, follow=True)
    assert response.status_code == 200
    assert "translation was removed" in response.content.decode()
    champions.refresh_from_db()
    assert champions.name == "Top buyers" and "name" not in champions.translations["zh-hans"]
    # The list shows the name in the UI language and finds tiers by their Chinese names.
    changelist = admin_client.get(reverse("admin:segmentation_tier_changelist"), {"q": "忠诚"}, **ZH).content.decode()
    assert "忠诚客户" in changelist and "潜在忠诚客户" in changelist and "Top buyers" not in changelist


def test_dashboard_is_cached_per_language(client, shop, compiled_translations):
    from crm.core import dashboard

    with translation.override("zh-hans"):
        zh = dashboard.dashboard_get()
    with translation.override("en"):
        en = dashboard.dashboard_get()
    names = lambda d: {t["name"] for dim in d.dimensions for t in dim["tiers"]}  # noqa: E731
    assert "冠军客户" in names(zh) and "Champions" not in names(zh)
    assert "Champions" in names(en)


def test_the_rule_builder_preview_explains_errors_in_chinese(client, shop, compiled_translations):
    login(client, OPERATIONS)
    response = client.post(reverse("segmentation:preview"), data=json.dumps({"rule": {"field": "shoe_size", "op": ">", "value": 3}}),
                           content_type="application/json", **ZH)
    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "rule", "message": "未知字段 'shoe_size'"}]


# --- the API ----------------------------------------------------------------------------------------
def test_the_api_returns_the_stored_names_in_any_language(api_client, shop):
    body = api_client.get("/api/v1/customers/vip/tiers/", **ZH).json()
    value = next(t for t in body if t["dimension"] == "value")
    assert value["tier_name"] == "High (VIP)" and value["service_level"].startswith("VIP: priority queue")
    dims = api_client.get("/api/v1/dimensions/", **ZH).json()
    assert [d["name"] for d in dims] == ["Behaviour", "Value", "Lifecycle", "RFM"]
    rfm = next(d for d in dims if d["slug"] == "rfm")
    assert "Champions" in {t["name"] for t in rfm["tiers"]}
