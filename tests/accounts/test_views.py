"""Staff pages for customers: access rules, search, sorting, pagination, masking, query budgets."""
from __future__ import annotations

import io

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.urls import reverse

from accounts.models import Customer, Event, Feedback
from accounts.roles import ANALYST, CUSTOMER_SERVICE, OPERATIONS
from accounts.selectors import customer_search, mask_email, mask_name, mask_phone
from recommendations.models import Item

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def staff(username: str, role: str | None = None, **extra) -> User:
    user = User.objects.create_user(username, password="pw", is_staff=extra.pop("is_staff", True), **extra)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def customer(n: int, **fields) -> Customer:
    defaults = {"external_id": f"ext-{n}", "email": f"user{n}@example.com", "name": f"Customer {n:03d}",
                "phone": f"+1555000{n:04d}", "first_seen_at": T0 - timedelta(days=n), "last_seen_at": T0 + timedelta(hours=n)}
    return Customer.objects.create(**{**defaults, **fields})


@pytest.fixture
def compiled_translations(settings):
    """The .mo files are build output (gitignored): compile them, then drop gettext's cache."""
    call_command("compile_translations", stdout=io.StringIO())
    settings.LOCALE_PATHS = list(settings.LOCALE_PATHS)  # setting_changed resets the loaded catalogues


@pytest.fixture
def support_client(client):
    client.force_login(staff("support", CUSTOMER_SERVICE))
    return client


@pytest.fixture
def analyst_client(client):
    client.force_login(staff("analyst", ANALYST))
    return client


# --- access -------------------------------------------------------------------------------
@pytest.mark.parametrize("url_name,args", [("accounts:customer-list", []), ("accounts:customer-detail", [1]), ("home", [])])
def test_anonymous_users_are_sent_to_the_login_page(client, url_name, args):
    response = client.get(reverse(url_name, args=args))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login") + "?next=")


@pytest.mark.parametrize("url_name", ["accounts:customer-list", "home"])
def test_signed_in_non_staff_users_get_403(client, url_name):
    client.force_login(staff("shopper", is_staff=False))
    assert client.get(reverse(url_name)).status_code == 403


def test_staff_without_view_customer_get_403_on_customer_pages(client):
    c = customer(1)
    client.force_login(staff("nobody"))
    assert client.get(reverse("accounts:customer-list")).status_code == 403
    assert client.get(reverse("accounts:customer-detail", args=[c.pk])).status_code == 403
    assert client.get(reverse("home")).status_code == 200


@pytest.mark.parametrize("role", [OPERATIONS, CUSTOMER_SERVICE, ANALYST])
def test_every_role_opens_the_customer_pages(client, role):
    c = customer(1)
    client.force_login(staff("someone", role))
    assert client.get(reverse("accounts:customer-list")).status_code == 200
    assert client.get(reverse("accounts:customer-detail", args=[c.pk])).status_code == 200


def test_unknown_customer_is_404(support_client):
    assert support_client.get(reverse("accounts:customer-detail", args=[999999])).status_code == 404


def test_login_page_signs_staff_in_and_refuses_non_staff(client):
    staff("agent", CUSTOMER_SERVICE)
    User.objects.create_user("shopper", password="pw")
    page = client.get(reverse("login"))
    assert page.status_code == 200 and b"csrfmiddlewaretoken" in page.content
    refused = client.post(reverse("login"), {"username": "shopper", "password": "pw"})
    assert refused.status_code == 200 and b"no access to the staff pages" in refused.content
    signed_in = client.post(reverse("login"), {"username": "agent", "password": "pw"})
    assert signed_in.status_code == 302 and signed_in.url == reverse("home")


def test_logout_is_a_post_with_csrf(support_client):
    page = support_client.get(reverse("home"))
    assert f'action="{reverse("logout")}"'.encode() in page.content
    assert support_client.post(reverse("logout")).status_code == 302
    assert support_client.get(reverse("home")).status_code == 302


def test_forms_are_csrf_protected(client):
    """With CSRF checks on (as in a browser), a login post without the token is refused."""
    from django.test import Client

    staff("agent", CUSTOMER_SERVICE)
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(reverse("login"), {"username": "agent", "password": "pw"}).status_code == 403


# --- search ---------------------------------------------------------------------------------
@pytest.mark.parametrize("query", ["user7@example.com", "USER7@example.com", "ext-7", "+15550000007", "+1 555 000 0007",
                                   "Customer 007", "customer 00"])
def test_search_finds_the_customer_by_email_external_id_phone_or_name(query):
    for n in (6, 7, 17):
        customer(n)
    found = list(customer_search(query=query).values_list("external_id", flat=True))
    assert "ext-7" in found
    if query != "customer 00":
        assert found == ["ext-7"]


def test_exact_matches_win_over_name_matches():
    customer(1, name="ext-2 fan club")
    customer(2)
    assert list(customer_search(query="ext-2").values_list("external_id", flat=True)) == ["ext-2"]


def test_short_name_queries_match_the_beginning_only():
    customer(1, name="Ann Lee")
    customer(2, name="Joanna")
    assert list(customer_search(query="An").values_list("external_id", flat=True)) == ["ext-1"]
    assert sorted(customer_search(query="ann").values_list("external_id", flat=True)) == ["ext-1", "ext-2"]


def test_search_page_shows_the_match_and_an_empty_state(support_client):
    customer(1)
    customer(2)
    hit = support_client.get(reverse("accounts:customer-list"), {"q": "user2@example.com"})
    assert [c.external_id for c, _ in hit.context["rows"]] == ["ext-2"]
    miss = support_client.get(reverse("accounts:customer-list"), {"q": "nobody@example.com"})
    assert miss.context["rows"] == [] and "No customer matches" in miss.content.decode()


def test_empty_list_tells_what_to_do(support_client):
    assert b"make demo" in support_client.get(reverse("accounts:customer-list")).content


# --- sorting and pagination --------------------------------------------------------------------
def test_list_is_paginated_and_sorted_by_last_seen_newest_first(support_client):
    for n in range(1, 31):
        customer(n)
    customer(99, last_seen_at=None, first_seen_at=None)
    first = support_client.get(reverse("accounts:customer-list"))
    assert first.context["page_obj"].paginator.num_pages == 2
    assert [c.external_id for c, _ in first.context["rows"]][:2] == ["ext-30", "ext-29"]
    second = support_client.get(reverse("accounts:customer-list"), {"page": 2})
    ids = [c.external_id for c, _ in second.context["rows"]]
    assert len(ids) == 6 and ids[-1] == "ext-99"  # never seen: last


@pytest.mark.parametrize("sort,expected_first", [("last_seen", "ext-1"), ("first_seen", "ext-5"), ("-first_seen", "ext-1"),
                                                  ("name", "ext-1"), ("-name", "ext-5")])
def test_columns_sort(support_client, sort, expected_first):
    for n in range(1, 6):
        customer(n)
    response = support_client.get(reverse("accounts:customer-list"), {"sort": sort})
    assert response.context["rows"][0][0].external_id == expected_first
    assert 'aria-sort="' in response.content.decode()


def test_list_queries_do_not_grow_with_the_page(support_client, django_assert_max_num_queries):
    for n in range(1, 26):
        customer(n)
    # session + user + permissions (2) + count + page
    with django_assert_max_num_queries(8):
        response = support_client.get(reverse("accounts:customer-list"))
    assert len(response.context["rows"]) == 25


# --- masking ---------------------------------------------------------------------------------
def test_masking_helpers():
    assert mask_email("alice.smith@example.com") == "a•••@e•••.com"
    assert mask_phone("+1 555 123 4567") == "•••4567"
    assert mask_name("Alice Smith") == "A••• S•••"
    assert mask_name("王小明") == "王•••"
    assert (mask_email(""), mask_phone(""), mask_name("")) == ("", "", "")


def test_analyst_sees_masked_personal_data(analyst_client):
    c = customer(1, email="alice@example.com", name="Alice Smith", phone="+15551234567")
    for url in (reverse("accounts:customer-list"), reverse("accounts:customer-detail", args=[c.pk])):
        html = analyst_client.get(url).content.decode()
        assert "alice@example.com" not in html and "Alice Smith" not in html and "+15551234567" not in html
        assert "a•••@e•••.com" in html and "A••• S•••" in html and "•••4567" in html


def test_customer_service_sees_personal_data_unmasked(support_client):
    c = customer(1, email="alice@example.com", name="Alice Smith", phone="+15551234567")
    for url in (reverse("accounts:customer-list"), reverse("accounts:customer-detail", args=[c.pk])):
        html = support_client.get(url).content.decode()
        assert "alice@example.com" in html and "Alice Smith" in html and "+15551234567" in html


# --- customer page -----------------------------------------------------------------------------
def _history(c: Customer, events: int = 30, feedback: int = 12) -> None:
    items = [Item.objects.create(external_id=f"sku-{i}", title=f"Blue kettle {i}") for i in range(5)]
    Event.objects.bulk_create(
        Event(event_id=f"{c.external_id}-e{i}", customer=c, type="purchase" if i % 3 else "view", item=items[i % 5],
              amount=Decimal("12.50") if i % 3 else None, quantity=1, platform="web", occurred_at=T0 - timedelta(hours=i))
        for i in range(events)
    )
    labels = ["positive", "neutral", "negative"]
    Feedback.objects.bulk_create(
        Feedback(customer=c, item=items[i % 5], text=f"Feedback text {i}", rating=1 + i % 5,
                 sentiment_score=0.5, sentiment_label=labels[i % 3], occurred_at=T0 - timedelta(days=i))
        for i in range(feedback)
    )


def test_customer_page_lists_events_with_items_and_feedback_with_sentiment(support_client, django_assert_max_num_queries):
    c = customer(1, attributes={"city": "Berlin", "age_band": "25-34"}, marketing_consent=True)
    _history(c)
    # session, user, permissions (2), customer, event count + page, feedback count + page: no query per row;
    # + segmentation's sections (accounts/customer_page.py): memberships, tier history, active pins,
    # features, and the tiers of the pin form (customer service may pin); + recommendations' section
    # (active model, customer's recent items); + campaigns' section (coupons, messages received).
    # A fixed budget: no query per event, feedback row, tier or coupon.
    with django_assert_max_num_queries(10 + 5 + 2 + 2):
        response = support_client.get(reverse("accounts:customer-detail", args=[c.pk]))
    html = response.content.decode()
    assert len(response.context["events_page"].object_list) == 20
    assert "Blue kettle 0" in html and "Purchase" in html and "12.50" in html
    assert "Feedback text 0" in html and "Positive" in html and "Negative" in html
    assert "Berlin" in html and "Consent given" in html


def test_customer_page_paginates_events(support_client):
    c = customer(1)
    _history(c, events=45, feedback=0)
    page3 = support_client.get(reverse("accounts:customer-detail", args=[c.pk]), {"events_page": 3})
    events = page3.context["events_page"]
    assert events.number == 3 and len(events.object_list) == 5
    assert events.object_list[0].event_id == "ext-1-e40"


def test_erased_customer_shows_a_badge(support_client):
    c = customer(1, email="", name="", phone="", erased_at=T0)
    html = support_client.get(reverse("accounts:customer-detail", args=[c.pk])).content.decode()
    assert 'data-badge="erased"' in html and "Never contacted" in html


def test_customer_page_renders_in_chinese(support_client, compiled_translations):
    c = customer(1)
    _history(c, events=2, feedback=1)
    support_client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    html = support_client.get(reverse("accounts:customer-detail", args=[c.pk])).content.decode()
    assert '<html lang="zh-hans">' in html
    assert "最近事件" in html  # "Recent events"
    assert "购买" in html  # EventType.PURCHASE
    assert "正面" in html  # SentimentLabel.POSITIVE
