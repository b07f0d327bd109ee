"""The operations dashboard (crm/core/dashboard.py, the home page)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import timezone

from accounts.models import Customer
from accounts.roles import ANALYST, CUSTOMER_SERVICE, OPERATIONS
from crm.core import dashboard
from segmentation.models import CustomerFeatures, Membership, RecomputeRun, Tier, TierChange, TierSnapshot

pytestmark = pytest.mark.django_db
AS_OF = timezone.now().replace(microsecond=0) - timedelta(days=400)  # imported history: not "now"


def _tier(dim: str, slug: str) -> Tier:
    return Tier.objects.get(dimension__slug=dim, slug=slug)


def _customer(i: int, *, active: bool = False, first_purchase_days: int | None = None, orders: int = 0,
              revenue: str = "0", behaviour: str = "churned", value: str = "low") -> Customer:
    c = Customer.objects.create(external_id=f"c-{i}", email=f"c{i}@example.com", name=f"Customer {i}")
    CustomerFeatures.objects.create(
        customer=c, as_of=AS_OF, computed_at=AS_OF, activity_recency_days=5 if active else 200,
        first_purchase_at=AS_OF - timedelta(days=first_purchase_days) if first_purchase_days is not None else None,
        orders_total=orders, revenue_30d=Decimal(revenue))
    for dim, slug in (("behaviour", behaviour), ("value", value)):
        Membership.objects.create(customer=c, dimension=_tier(dim, slug).dimension, tier=_tier(dim, slug), since=AS_OF)
    return c


def _move(c: Customer, dim: str, src: str, dst: str, days_ago: int) -> None:
    TierChange.objects.create(customer=c, dimension=_tier(dim, dst).dimension, from_tier=_tier(dim, src),
                              to_tier=_tier(dim, dst), at=AS_OF - timedelta(days=days_ago))


@pytest.fixture
def shop():
    RecomputeRun.objects.create(as_of=AS_OF, status="succeeded", started_at=AS_OF, finished_at=AS_OF)
    cs = {
        1: _customer(1, active=True, first_purchase_days=40, orders=2, revenue="100.00", behaviour="active", value="high"),
        2: _customer(2, active=True, first_purchase_days=60, orders=1, revenue="20.00", behaviour="active", value="mid"),
        3: _customer(3, first_purchase_days=10, orders=1, revenue="5.00", behaviour="silent"),  # too new for the cohort
        4: _customer(4, first_purchase_days=200, orders=5),  # too old for the cohort
        5: _customer(5, active=True, behaviour="active"),
    }
    _move(cs[1], "behaviour", "silent", "active", days_ago=3)  # silent reactivation
    _move(cs[2], "behaviour", "churned", "active", days_ago=10)  # churn win-back
    _move(cs[5], "behaviour", "churned", "active", days_ago=45)  # outside the 30-day window
    _move(cs[1], "value", "mid", "high", days_ago=2)
    TierChange.objects.create(customer=cs[4], dimension=_tier("value", "low").dimension, from_tier=None,
                              to_tier=_tier("value", "low"), at=AS_OF - timedelta(days=1))  # first assignment
    return cs


def _user(role: str) -> User:
    user = User.objects.create_user(role.lower().replace(" ", "-"), is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def test_kpis_follow_their_definitions(shop):
    """Active: activity in 30 days; retention: first purchase 30-90 days ago and 2+ orders;
    reactivation / win-back: Silent/Churned -> Active on Behaviour within 30 days of as_of."""
    k = dashboard.kpis(as_of=AS_OF)
    assert (k["active"].value, k["active"].base) == (3, 5)
    assert (k["retention"].value, k["retention"].base, k["retention"].rate) == (1, 2, 50.0)
    assert k["reactivation"].value == 1
    assert k["reactivation"].base == 1 + 1  # the one who came back + the one still silent
    assert k["winback"].value == 1


def test_migration_matrix_counts_moves_in_the_window_without_first_assignments(shop):
    m = {d["slug"]: d for d in dashboard.tier_migrations(as_of=AS_OF)}
    assert m["behaviour"]["total"] == 2
    assert m["value"]["total"] == 1
    cell = {(row["tier"].slug, c["to"].slug): c for row in m["behaviour"]["matrix"] for c in row["cells"]}
    assert cell[("silent", "active")]["n"] == 1
    assert cell[("churned", "active")]["n"] == 1
    assert cell[("churned", "active")]["url"] == "/customers/?changed=behaviour%3Achurned%3Aactive&days=30"
    assert {link["value"] for link in m["behaviour"]["sankey"]["links"]} == {1}


def test_revenue_by_tier_sums_30_day_revenue_by_value_tier(shop):
    rev = dashboard.revenue_by_tier(dimensions=dashboard.tier_sizes())
    assert rev["slug"] == "value"
    by = {r["slug"]: r["revenue"] for r in rev["rows"]}
    assert by == {"high": Decimal("100.00"), "mid": Decimal("20.00"), "low": Decimal("5.00")}
    assert rev["total"] == Decimal("125.00")


def test_dashboard_query_count_does_not_grow_with_customers(shop, django_assert_max_num_queries):
    """Aggregates only: the same number of queries for 5 or 50 customers."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    TierSnapshot.objects.create(date=AS_OF.date(), dimension=_tier("value", "low").dimension, tier=_tier("value", "low"),
                                customers=3)
    with CaptureQueriesContext(connection) as few:
        dashboard.dashboard_build()
    for i in range(10, 55):
        _customer(i, active=True)
    with CaptureQueriesContext(connection) as many:
        dashboard.dashboard_build()
    assert len(many) == len(few) <= 20


def test_dashboard_is_cached_for_a_minute(shop, django_assert_num_queries):
    first = dashboard.dashboard_get()
    with django_assert_num_queries(0):
        again = dashboard.dashboard_get()
    assert again.computed_at == first.computed_at
    assert dashboard.DASHBOARD_CACHE_SECONDS == 60


def test_changed_filter_lists_the_customers_behind_a_migration_cell(shop, client):
    client.force_login(_user(OPERATIONS))
    response = client.get(reverse("accounts:customer-list"), {"changed": "behaviour:churned:active", "days": 30})
    assert response.status_code == 200
    shown = {c.external_id for c, _contact in response.context["rows"]}
    assert shown == {"c-2"}  # c-5 moved 45 days ago
    assert response.context["filters"][0]["valid"]
    wider = client.get(reverse("accounts:customer-list"), {"changed": "behaviour:churned:active", "days": 60})
    assert {c.external_id for c, _contact in wider.context["rows"]} == {"c-2", "c-5"}
    bad = client.get(reverse("accounts:customer-list"), {"changed": "behaviour:nope:active"})
    assert list(bad.context["rows"]) == [] and not bad.context["filters"][0]["valid"]


def test_kpi_filter_lists_the_customers_behind_a_kpi(shop, client):
    client.force_login(_user(ANALYST))
    ids = lambda r: {c.external_id for c, _contact in r.context["rows"]}  # noqa: E731
    assert ids(client.get(reverse("accounts:customer-list"), {"kpi": "active"})) == {"c-1", "c-2", "c-5"}
    assert ids(client.get(reverse("accounts:customer-list"), {"kpi": "new-cohort"})) == {"c-1", "c-2"}
    assert ids(client.get(reverse("accounts:customer-list"), {"kpi": "new-retained"})) == {"c-1"}


def test_home_page_shows_the_dashboard_with_links_to_the_customers(shop, client):
    client.force_login(_user(OPERATIONS))
    response = client.get(reverse("home"))
    assert response.status_code == 200
    html = response.content.decode()
    for part in ('data-kpi="active"', 'data-kpi="retention"', 'data-kpi="reactivation"', 'data-kpi="winback"',
                 'data-migration="behaviour"', "data-revenue", "Latest recompute runs", "Latest model training",
                 'id="tier-trends"', 'id="tier-migrations"'):
        assert part in html, part
    assert "/customers/?tier=value%3Ahigh" in html
    assert "/customers/?changed=behaviour%3Asilent%3Aactive&amp;days=30" in html
    assert "/customers/?kpi=new-retained" in html
    assert "$100.00" in html  # {% money %} with settings.CURRENCY (USD)


def test_customer_service_sees_tiers_but_not_runs_or_migrations(shop, client):
    client.force_login(_user(CUSTOMER_SERVICE))
    html = client.get(reverse("home")).content.decode()
    assert 'data-dimension-card="value"' in html
    assert "Latest recompute runs" not in html
    assert "Running and recent campaigns" not in html  # CS does not see campaigns


def test_campaign_slot_renders_rows_from_the_campaigns_selector(shop, client, monkeypatch):
    """Empty state while campaigns.selectors.dashboard_campaigns does not exist; rows once it does."""
    import campaigns.selectors

    client.force_login(_user(OPERATIONS))
    monkeypatch.delattr(campaigns.selectors, "dashboard_campaigns", raising=False)
    html = client.get(reverse("home")).content.decode()
    assert "data-dashboard-campaigns" in html and "data-campaign-row" not in html
    monkeypatch.setattr(campaigns.selectors, "dashboard_campaigns", lambda: [
        {"name": "Spring VIP", "url": "/campaigns/1/", "status": "running", "status_label": "Running",
         "figures": [{"label": "Sent", "value": "1,200", "url": "/campaigns/1/results/"}]}], raising=False)
    html = client.get(reverse("home")).content.decode()
    assert "data-campaign-row" in html and "Spring VIP" in html and "/campaigns/1/results/" in html


def test_money_tag_localises_with_the_active_language():
    from django.utils import translation

    from crm.core.templatetags.stratum import money

    with translation.override("en"):
        assert money(Decimal("1234.5")) == "$1,234.50"
        assert money(Decimal("-3")) == "-$3.00"
        assert money(Decimal("10"), "CHF") == "10.00 CHF"
        assert money(None) == "–"
    with translation.override("zh-hans"):
        assert money(Decimal("1234.5"), "CNY") == "¥1234.50"  # Django zh_Hans: no thousands separator
