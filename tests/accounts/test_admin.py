"""The Django admin: every model's pages open, API keys are shown once, erasure and revocation."""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.urls import reverse

from accounts.models import ApiKey, Customer, DataImport, Event, Feedback
from accounts.roles import ANALYST
from accounts.services.api_keys import api_key_create
from recommendations.models import Item
from segmentation import models as seg_models

pytestmark = pytest.mark.django_db

# Written only by services (ingest, imports): the admin shows them read-only and has no add page.
NOT_ADDABLE = {Event, DataImport}
# Rows written by the segmentation engine and trainer are read-only in the admin.
NOT_ADDABLE |= {seg_models.CustomerFeatures, seg_models.Membership, seg_models.TierChange, seg_models.TierSnapshot,
                seg_models.RecomputeRun, seg_models.PredictiveModel, seg_models.Cluster}
# django-axes keeps its login-attempt logs read-only in the admin.
NOT_ADDABLE |= {AccessAttempt, AccessFailureLog, AccessLog}
T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def superuser_client(client):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


@pytest.fixture
def sample_rows():
    c = Customer.objects.create(external_id="c1", email="alice@example.com", name="Alice Smith", phone="+15551234567")
    item = Item.objects.create(external_id="sku-1", title="Kettle")
    Event.objects.create(event_id="e1", customer=c, type="view", item=item, occurred_at=T0)
    Feedback.objects.create(customer=c, text="Great kettle", sentiment_score=0.6, sentiment_label="positive")
    DataImport.objects.create(format="csv", source="shop.csv", status="succeeded")
    api_key_create(name="shop", scopes=["events:write"])
    return c


def _registered():
    return sorted(admin.site._registry.items(), key=lambda pair: pair[0]._meta.label)


@pytest.mark.parametrize("model", [m for m, _ in _registered()], ids=lambda m: m._meta.label)
def test_every_changelist_and_add_page_opens_for_a_superuser(superuser_client, sample_rows, model):
    info = model._meta.app_label, model._meta.model_name
    assert superuser_client.get(reverse("admin:%s_%s_changelist" % info)).status_code == 200
    add = superuser_client.get(reverse("admin:%s_%s_add" % info))
    assert add.status_code == (403 if model in NOT_ADDABLE else 200)
    obj = model._default_manager.first()
    if obj is not None:
        assert superuser_client.get(reverse("admin:%s_%s_change" % info, args=[obj.pk])).status_code == 200


def test_every_stratum_model_is_registered():
    from django.apps import apps

    for label in ("accounts", "recommendations"):
        for model in apps.get_app_config(label).get_models():
            assert admin.site.is_registered(model), model


def test_changelist_search_and_filters(superuser_client, sample_rows):
    url = reverse("admin:accounts_customer_changelist")
    assert b"c1" in superuser_client.get(url, {"q": "alice@example.com"}).content
    assert superuser_client.get(url, {"erased": "yes"}).context["cl"].result_count == 0
    events = superuser_client.get(reverse("admin:accounts_event_changelist"), {"occurred_at__year": "2026"})
    assert events.status_code == 200 and events.context["cl"].result_count == 1


def test_api_key_created_in_the_admin_is_shown_once_and_stored_hashed(superuser_client):
    response = superuser_client.post(
        reverse("admin:accounts_apikey_add"), {"name": "web shop", "scopes": ["events:write", "customers:read"]}, follow=True
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"] if "sk_" in str(m)]
    assert len(shown) == 1
    plain = shown[0].split('<code class="api-key-once">')[1].split("</code>")[0]
    key = ApiKey.objects.get()
    assert key.name == "web shop" and key.scopes == ["customers:read", "events:write"]
    assert key.hashed_key == hashlib.sha256(plain.encode()).hexdigest()
    assert key.created_by.username == "root"
    assert all(plain not in str(getattr(key, f.attname)) for f in ApiKey._meta.concrete_fields)
    # Shown once: the next page has no key.
    again = superuser_client.get(reverse("admin:accounts_apikey_change", args=[key.pk]))
    assert plain not in again.content.decode()


def test_revoke_action(superuser_client):
    key, _ = api_key_create(name="shop", scopes=["events:write"])
    superuser_client.post(reverse("admin:accounts_apikey_changelist"), {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_erase_action_asks_for_confirmation_then_erases(superuser_client, sample_rows):
    url = reverse("admin:accounts_customer_changelist")
    data = {"action": "erase_personal_data", "_selected_action": [sample_rows.pk]}
    confirm = superuser_client.post(url, data)
    assert confirm.status_code == 200 and b"cannot be undone" in confirm.content
    sample_rows.refresh_from_db()
    assert sample_rows.erased_at is None
    superuser_client.post(url, {**data, "confirm": "yes"})
    sample_rows.refresh_from_db()
    assert sample_rows.erased_at is not None and sample_rows.email == ""


def test_admin_masks_personal_data_for_analysts(client, sample_rows):
    analyst = User.objects.create_user("analyst", password="pw", is_staff=True)
    analyst.groups.add(Group.objects.get(name=ANALYST))
    client.force_login(analyst)
    event, feedback = Event.objects.get(), Feedback.objects.get()
    for url in (reverse("admin:accounts_customer_changelist"), reverse("admin:accounts_customer_change", args=[sample_rows.pk]),
                reverse("admin:accounts_customer_history", args=[sample_rows.pk]),
                reverse("admin:accounts_event_changelist"), reverse("admin:accounts_event_change", args=[event.pk]),
                reverse("admin:accounts_feedback_changelist"), reverse("admin:accounts_feedback_change", args=[feedback.pk])):
        response = client.get(url)
        assert response.status_code == 200
        html = response.content.decode()
        assert "alice@example.com" not in html and "Alice Smith" not in html, url


def test_masked_customer_saved_by_a_user_without_pii_permission_keeps_its_personal_data(client, sample_rows):
    editor = User.objects.create_user("editor", password="pw", is_staff=True)
    editor.user_permissions.add(*Permission.objects.filter(codename__in=["view_customer", "change_customer"]))
    client.force_login(editor)
    url = reverse("admin:accounts_customer_change", args=[sample_rows.pk])
    response = client.post(url, {"external_id": "c1", "attributes": '{"city": "Paris"}', "source_platform": "",
                                 "consent_source": "", "marketing_consent": "on"})
    assert response.status_code == 302, response.content.decode()[:2000]
    sample_rows.refresh_from_db()
    assert (sample_rows.email, sample_rows.name, sample_rows.attributes) == ("alice@example.com", "Alice Smith", {"city": "Paris"})


def test_feedback_added_in_the_admin_gets_its_sentiment(superuser_client, sample_rows):
    superuser_client.post(reverse("admin:accounts_feedback_add"), {
        "customer": sample_rows.pk, "text": "I love it, wonderful service!", "rating": 5,
        "occurred_at_0": "2026-03-01", "occurred_at_1": "10:00:00",
    })
    feedback = Feedback.objects.get(text__startswith="I love it")
    assert feedback.sentiment_label == "positive" and feedback.sentiment_score > 0
