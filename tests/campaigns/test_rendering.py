"""Templates: checked when saved, rendered against plain values only."""
import json
from decimal import Decimal

import pytest

from campaigns.services import campaign_create, campaign_preview, campaign_test_send
from crm.core.errors import InvalidInput
from tests.campaigns import factories as f

pytestmark = pytest.mark.django_db


def test_template_syntax_error_names_the_line():
    with pytest.raises(InvalidInput) as err:
        f.campaign(html_body="<p>Hello</p>\n<p>{% if first_name %}</p>\n{% for x in y %}\n")
    messages = err.value.extra["fields"]["html_body"]
    assert messages[0].startswith("Line 3:") or messages[0].startswith("Line 2:")


def test_unknown_tag_is_refused_with_its_line():
    with pytest.raises(InvalidInput) as err:
        f.campaign(text_body="one\ntwo\n{% load static %}{% static 'x' %}")
    assert err.value.extra["fields"]["text_body"][0].startswith("Line 3:")


def test_include_of_server_templates_is_impossible():
    campaign = f.campaign(text_body="{% include 'base.html' %}")
    customer = f.customers(1, prefix="inc")[0]
    from django.template import TemplateDoesNotExist

    with pytest.raises(TemplateDoesNotExist):
        campaign_preview(campaign=campaign, customer=customer)


def _plain(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


def test_preview_context_has_only_plain_values(settings):
    settings.CAMPAIGN_RECOMMENDER = "tests.campaigns.test_rendering.fake_recommender"
    customer = f.customers(1, prefix="pv")[0]
    campaign = f.campaign(kind="email_coupon", coupon_value=Decimal("15"),
                          text_body="{{ first_name }} {{ tier_names }} {{ is_vip }} {{ coupon.code }} "
                                    "{% for r in recommendations %}{{ r.title }}{% endfor %}")
    preview = campaign_preview(campaign=campaign, customer=customer)
    context = preview["context"]
    assert _plain(context)
    json.dumps(context)  # serialisable: nothing but plain values
    assert preview["text"].startswith("Name0 Silent False PREVIEW0000 Widget")
    assert context["recommendations"][0] == {"title": "Widget", "url": "https://shop.example/w", "price": "9.90",
                                             "category": ""}


def fake_recommender(customer_ids, *, n):
    return {cid: [{"title": "Widget", "url": "https://shop.example/w", "price": Decimal("9.90")}] for cid in customer_ids}


def test_recommendations_default_to_none_when_unavailable():
    from campaigns.rendering import recommendations_for

    assert recommendations_for([1, 2]) in ({}, {1: [], 2: []})


def test_test_send_goes_to_the_staff_address_only(mailoutbox):
    customer = f.customers(1, prefix="ts")[0]
    campaign = f.campaign()
    campaign_test_send(campaign=campaign, to="ops@example.com", customer=customer)
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["ops@example.com"] and mailoutbox[0].subject == "[TEST] Hello Name0"
    assert not campaign.messages.exists()


def test_variants_templates_are_checked_too():
    with pytest.raises(InvalidInput) as err:
        campaign_create(name="x", tiers=[f.tier()], subject="s", text_body="t",
                        variants=[{"name": "A", "weight": 50, "subject": "{% if %}"}, {"name": "B", "weight": 50}])
    assert "variants[0].subject" in err.value.extra["fields"]

