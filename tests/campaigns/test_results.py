"""Results and uplift on a hand-built case."""
import math
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.models import Coupon, CouponRedemption, Message, Variant
from campaigns.results import campaign_pick_winner, campaign_results, diff_ci, tier_strategy_figures
from tests.campaigns import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def case():
    """10 treated (A: 0-4, B: 5-9) and 10 holdout, all Silent, sent at T.
    Treated buyers within 7 days: 0, 1, 5, 6 (50.00 each); 2 buys on day 10 (outside).
    Holdout buyer within 7 days: 10 (50.00). Customer 0 clicked then bought; 5 clicked, bought before.
    Customer 1 redeemed the campaign coupon."""
    T = timezone.now() - timedelta(days=30)
    people = f.customers(20, prefix="res")
    campaign = f.campaign(winner_metric="conversion_rate")
    a = Variant.objects.create(campaign=campaign, name="A", weight=50)
    b = Variant.objects.create(campaign=campaign, name="B", weight=50)
    silent = f.tier()
    for i, c in enumerate(people):
        treated = i < 10
        Message.objects.create(campaign=campaign, customer=c, tier=silent, created_at=T,
                               status="sent" if treated else "holdout", sent_at=T if treated else None,
                               variant=(a if i < 5 else b) if treated else None,
                               opened_at=T + timedelta(hours=1) if i in (0, 1, 5) else None,
                               clicked_at=T + timedelta(hours=2) if i in (0, 5) else None)
    f.purchase(people[0], T + timedelta(days=1))
    f.purchase(people[1], T + timedelta(days=2))
    f.purchase(people[5], T + timedelta(hours=1))   # before the click
    f.purchase(people[6], T + timedelta(days=6, hours=23))
    f.purchase(people[2], T + timedelta(days=10))
    f.purchase(people[10], T + timedelta(days=3))
    coupon = Coupon.objects.create(code="RESULTS00001", customer=people[1], campaign=campaign, discount="percent",
                                   value=10, valid_from=T, expires_at=T + timedelta(days=30))
    CouponRedemption.objects.create(coupon=coupon, customer=people[1], order_id="o1", amount=50, discount_amount=5,
                                    redeemed_at=T + timedelta(days=2))
    return campaign, a, b


def test_overall_counts_conversions_revenue_and_uplift(case):
    campaign, a, b = case
    r = campaign_results(campaign=campaign)["overall"]
    assert (r["audience"], r["sent"], r["holdout"], r["skipped"], r["failed"]) == (20, 10, 10, 0, 0)
    assert (r["opens"], r["clicks"], r["conversions"], r["click_conversions"]) == (3, 2, 4, 1)
    assert r["revenue"] == Decimal("200.00") and r["holdout_revenue"] == Decimal("50.00")
    assert r["coupon_redemptions"] == 1
    assert r["conversion_rate"] == 0.4 and r["holdout_conversion_rate"] == 0.1
    se = math.sqrt(0.4 * 0.6 / 10 + 0.1 * 0.9 / 10)
    u = r["uplift"]
    assert u["difference"] == pytest.approx(0.3)
    assert u["ci_low"] == pytest.approx(0.3 - 1.959964 * se, abs=1e-6)
    assert u["ci_high"] == pytest.approx(0.3 + 1.959964 * se, abs=1e-6)
    assert u["incremental_revenue"] == Decimal("150.00")   # (20.00 - 5.00) x 10


def test_per_variant_and_per_tier(case):
    campaign, a, b = case
    res = campaign_results(campaign=campaign)
    va, vb = res["variants"]
    assert (va["name"], va["sent"], va["conversions"], va["holdout"]) == ("A", 5, 2, 10)
    assert (vb["name"], vb["sent"], vb["conversions"], vb["holdout"]) == ("B", 5, 2, 10)
    assert va["opens"] == 2 and vb["opens"] == 1
    (tier,) = res["tiers"]
    assert tier["slug"] == "silent" and tier["sent"] == 10 and tier["holdout"] == 10


def test_winner_by_metric(case):
    campaign, a, b = case
    assert campaign_pick_winner(campaign=campaign, metric="open_rate") == a.pk
    # equal conversion rates: the tie goes to the earlier variant
    assert campaign_pick_winner(campaign=campaign, metric="conversion_rate") == a.pk


def test_tier_strategy_figures(case):
    figures = {x["key"]: x for x in tier_strategy_figures()}
    silent = figures["silent_reactivation"]
    assert (silent["treated"], silent["holdout"], silent["rate"], silent["holdout_rate"]) == (10, 10, 0.4, 0.1)
    assert figures["churned_win_back"]["treated"] == 0 and figures["churned_win_back"]["uplift"]["difference"] is None


def test_diff_ci_undefined_without_a_group():
    assert diff_ci(1, 10, 0, 0)["difference"] is None
