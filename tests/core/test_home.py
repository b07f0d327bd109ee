"""The staff overview page: real figures, empty states, health, languages."""
from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.models import Customer, DataImport, Event
from accounts.roles import ANALYST, CUSTOMER_SERVICE
from accounts.selectors import overview_figures

pytestmark = pytest.mark.django_db


@pytest.fixture
def compiled_translations(settings):
    """The .mo files are build output (gitignored): compile them, then drop gettext's cache."""
    call_command("compile_translations", stdout=io.StringIO())
    settings.LOCALE_PATHS = list(settings.LOCALE_PATHS)  # setting_changed resets the loaded catalogues


@pytest.fixture
def staff_client(client):
    user = User.objects.create_user("agent", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=CUSTOMER_SERVICE))
    client.force_login(user)
    return client


def _events(customer: Customer, *ages: timedelta, now: datetime) -> None:
    Event.objects.bulk_create(
        Event(event_id=f"e{i}", customer=customer, type="view", occurred_at=now - age) for i, age in enumerate(ages)
    )


def test_home_requires_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_empty_installation_says_what_to_do(staff_client):
    html = staff_client.get(reverse("home")).content.decode()
    assert "No data yet" in html and "make demo" in html and "import_transactions" in html


def test_home_shows_real_figures(staff_client):
    now = timezone.now()
    c = Customer.objects.create(external_id="c1")
    Customer.objects.create(external_id="c2")
    _events(c, timedelta(hours=1), timedelta(hours=5), timedelta(days=3), timedelta(days=30), now=now)
    DataImport.objects.create(format="csv", source="shop.csv", status="succeeded", rows_total=1234, events_created=1200,
                              data_start=datetime(1997, 1, 1, tzinfo=UTC), data_end=datetime(1998, 6, 30, tzinfo=UTC))
    response = staff_client.get(reverse("home"))
    figures = response.context["figures"]
    assert (figures.customers, figures.events_24h, figures.events_7d) == (2, 2, 3)
    html = response.content.decode()
    assert 'data-figure="customers">2<' in html
    assert 'data-figure="events-24h">2<' in html and 'data-figure="events-7d">3<' in html
    assert "shop.csv" in html and "1,234" in html and "Succeeded" in html and "1997" in html
    assert "All systems up" in html  # embedded default: database, cache, in-process tasks


def test_historical_data_gets_figures_as_of_its_own_last_day():
    end = datetime(1998, 6, 30, tzinfo=UTC)
    c = Customer.objects.create(external_id="c1")
    _events(c, timedelta(days=1), timedelta(days=2), timedelta(days=20), now=end)
    DataImport.objects.create(format="cdnow", source="CDNOW_master.txt", status="succeeded", data_start=end - timedelta(days=500), data_end=end)
    figures = overview_figures(now=timezone.now())
    assert figures.events_7d == 0 and figures.events_data_7d == 2 and figures.data_end == end


def test_overview_is_a_few_queries(django_assert_max_num_queries):
    with django_assert_max_num_queries(5):
        overview_figures(now=timezone.now())


def test_nav_shows_only_areas_the_user_may_open(client):
    nobody = User.objects.create_user("nobody", password="pw", is_staff=True)
    client.force_login(nobody)
    html = client.get(reverse("home")).content.decode()
    assert reverse("accounts:customer-list") not in html
    analyst = User.objects.create_user("analyst", password="pw", is_staff=True)
    analyst.groups.add(Group.objects.get(name=ANALYST))
    client.force_login(analyst)
    html = client.get(reverse("home")).content.decode()
    assert f'href="{reverse("accounts:customer-list")}"' in html


def test_layout_uses_vendored_assets_and_a_language_switcher(staff_client):
    html = staff_client.get(reverse("home")).content.decode()
    assert "/static/vendor/bootstrap/css/bootstrap.min.css" in html
    assert "/static/vendor/bootstrap/js/bootstrap.bundle.min.js" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing loaded from another host
    assert f'action="{reverse("set_language")}"' in html and 'value="zh-hans"' in html and "简体中文" in html
    assert 'href="#main"' in html  # skip link


def test_home_renders_in_chinese(staff_client, compiled_translations):
    response = staff_client.post(reverse("set_language"), {"language": "zh-hans", "next": reverse("home")})
    assert response.status_code == 302
    html = staff_client.get(reverse("home")).content.decode()
    assert '<html lang="zh-hans">' in html
    assert "概览" in html and "系统状态" in html and "暂无数据" in html


def test_login_page_renders_in_chinese(client, compiled_translations):
    html = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "登录 Stratum" in html and "用户名" in html
