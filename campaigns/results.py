"""Campaign results and uplift, computed set-based in the database.

One grouped query per campaign: every message row is annotated (correlated subqueries on the
events index (customer, occurred_at)) with whether the customer bought within the attribution
window after the reference time, the revenue of those purchases, whether they bought within
the window after a click, and their redemptions of this campaign's coupons; then grouped by
(variant, tier, status, skip reason). Everything else is arithmetic on those few groups.

The reference time is when the message was sent; for the holdout (who get nothing) it is the
snapshot time, which is when they would have been sent to. Treated = messages sent. Uplift =
conversion rate of treated minus holdout, with a 95% confidence interval from the normal
approximation for a difference of two proportions (Wald); incremental revenue = (revenue per
treated customer - revenue per holdout customer) x treated customers.
"""
from __future__ import annotations

import math
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import (Case, Count, DateTimeField, DecimalField, Exists, ExpressionWrapper, F, IntegerField,
                              OuterRef, Subquery, Sum, Value, When)
from django.db.models.functions import Coalesce

from accounts.choices import EventType
from accounts.models import Event
from crm.core.money import CENT

from .choices import MessageStatus, WinnerMetric
from .models import Campaign, CouponRedemption, Message

Z95 = 1.959963984540054


def _annotated(messages, days: int):
    window = timedelta(days=days)
    ref = Coalesce(F("sent_at"), F("created_at"))
    qs = messages.annotate(
        x_ref=ExpressionWrapper(ref, output_field=DateTimeField()),
        x_end=ExpressionWrapper(ref + window, output_field=DateTimeField()),
        x_click_end=ExpressionWrapper(F("clicked_at") + window, output_field=DateTimeField()),
    )
    purchases = Event.objects.filter(customer_id=OuterRef("customer_id"), type=EventType.PURCHASE,
                                     occurred_at__gt=OuterRef("x_ref"), occurred_at__lte=OuterRef("x_end"))
    after_click = Event.objects.filter(customer_id=OuterRef("customer_id"), type=EventType.PURCHASE,
                                       occurred_at__gt=OuterRef("clicked_at"), occurred_at__lte=OuterRef("x_click_end"))
    revenue = purchases.order_by().values("customer_id").annotate(s=Sum("amount")).values("s")
    redemptions = (CouponRedemption.objects.filter(customer_id=OuterRef("customer_id"),
                                                   coupon__campaign_id=OuterRef("campaign_id"))
                   .order_by().values("customer_id").annotate(n=Count("id")).values("n"))
    return qs.annotate(
        x_conv=Case(When(Exists(purchases), then=Value(1)), default=Value(0), output_field=IntegerField()),
        x_click_conv=Case(When(clicked_at__isnull=False, then=Case(When(Exists(after_click), then=Value(1)),
                                                                  default=Value(0))),
                          default=Value(0), output_field=IntegerField()),
        x_rev=Coalesce(Subquery(revenue, output_field=DecimalField(max_digits=14, decimal_places=2)),
                       Value(Decimal("0")), output_field=DecimalField(max_digits=14, decimal_places=2)),
        x_red=Coalesce(Subquery(redemptions, output_field=IntegerField()), Value(0)),
    )


def _groups(messages, days: int) -> list[dict]:
    return list(
        _annotated(messages, days).order_by()
        .values("variant_id", "tier_id", "status", "skip_reason")
        .annotate(n=Count("id"), opens=Count("opened_at"), clicks=Count("clicked_at"),
                  unsubscribes=Count("unsubscribed_at"), conversions=Sum("x_conv"),
                  click_conversions=Sum("x_click_conv"), revenue=Sum("x_rev"), redemptions=Sum("x_red"))
    )


def diff_ci(x1: int, n1: int, x2: int, n2: int) -> dict:
    """Difference of proportions x1/n1 - x2/n2 with a 95% Wald interval (None when undefined)."""
    if not n1 or not n2:
        return {"difference": None, "ci_low": None, "ci_high": None}
    p1, p2 = x1 / n1, x2 / n2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    d = p1 - p2
    return {"difference": d, "ci_low": d - Z95 * se, "ci_high": d + Z95 * se}


def _summarise(rows: list[dict], holdout_rows: list[dict] | None = None) -> dict:
    out = {"audience": 0, "holdout": 0, "sent": 0, "failed": 0, "skipped": 0, "queued": 0, "cancelled": 0,
           "skipped_by_reason": defaultdict(int), "opens": 0, "clicks": 0, "unsubscribes": 0, "conversions": 0,
           "click_conversions": 0, "revenue": Decimal("0"), "coupon_redemptions": 0,
           "holdout_conversions": 0, "holdout_revenue": Decimal("0")}
    for r in rows:
        n, status = r["n"], r["status"]
        out["audience"] += n
        if status == MessageStatus.HOLDOUT:
            continue
        if status == MessageStatus.SKIPPED:
            out["skipped"] += n
            out["skipped_by_reason"][r["skip_reason"] or "other"] += n
        elif status in (MessageStatus.SENT, MessageStatus.FAILED, MessageStatus.CANCELLED):
            out[status] += n
        else:
            out["queued"] += n
        if status == MessageStatus.SENT:
            for key, src in (("opens", "opens"), ("clicks", "clicks"), ("unsubscribes", "unsubscribes"),
                             ("conversions", "conversions"), ("click_conversions", "click_conversions"),
                             ("coupon_redemptions", "redemptions")):
                out[key] += int(r[src] or 0)
            out["revenue"] += Decimal(r["revenue"] or 0)
    for r in (holdout_rows if holdout_rows is not None else rows):
        if r["status"] == MessageStatus.HOLDOUT:
            out["holdout"] += r["n"]
            out["holdout_conversions"] += int(r["conversions"] or 0)
            out["holdout_revenue"] += Decimal(r["revenue"] or 0)
    if holdout_rows is not None:  # variants: the audience counts their own rows plus nothing of the holdout
        pass
    sent, hold = out["sent"], out["holdout"]
    out["skipped_by_reason"] = dict(out["skipped_by_reason"])
    out["open_rate"] = out["opens"] / sent if sent else None
    out["click_rate"] = out["clicks"] / sent if sent else None
    out["conversion_rate"] = out["conversions"] / sent if sent else None
    out["holdout_conversion_rate"] = out["holdout_conversions"] / hold if hold else None
    out["revenue_per_message"] = (out["revenue"] / sent).quantize(CENT) if sent else None
    uplift = diff_ci(out["conversions"], sent, out["holdout_conversions"], hold)
    if sent and hold:
        per_t, per_h = out["revenue"] / sent, out["holdout_revenue"] / hold
        uplift["incremental_revenue"] = ((per_t - per_h) * sent).quantize(CENT)
    else:
        uplift["incremental_revenue"] = None
    out["uplift"] = uplift
    out["revenue"] = out["revenue"].quantize(CENT)
    out["holdout_revenue"] = out["holdout_revenue"].quantize(CENT)
    return out


def campaign_results(*, campaign: Campaign, attribution_days: int | None = None) -> dict:
    """Overall, per variant and per tier: counts, engagement, conversions, revenue, coupon
    redemptions, and uplift against the holdout with a 95% CI."""
    from segmentation.models import Tier

    days = attribution_days or settings.CAMPAIGN_ATTRIBUTION_DAYS
    rows = _groups(Message.objects.filter(campaign=campaign), days)
    holdout_rows = [r for r in rows if r["status"] == MessageStatus.HOLDOUT]
    overall = _summarise(rows)
    variants = []
    names = dict(campaign.variants.values_list("id", "name"))
    for vid, name in names.items():
        v = _summarise([r for r in rows if r["variant_id"] == vid], holdout_rows)
        v.update(variant_id=vid, name=name, winner=campaign.winner_id == vid)
        variants.append(v)
    tiers = []
    tier_ids = sorted({r["tier_id"] for r in rows if r["tier_id"] is not None})
    tier_names = {t.pk: t for t in Tier.objects.filter(pk__in=tier_ids).select_related("dimension")}
    for tid in tier_ids:
        t = _summarise([r for r in rows if r["tier_id"] == tid])
        tier = tier_names.get(tid)
        t.update(tier_id=tid, name=tier.display_name if tier else "", slug=tier.slug if tier else "",
                 dimension=tier.dimension.slug if tier else "")
        tiers.append(t)
    return {"campaign_id": campaign.pk, "name": campaign.name, "status": campaign.status,
            "attribution_days": days, "overall": overall, "variants": variants, "tiers": tiers}


def campaign_pick_winner(*, campaign: Campaign, metric: str | None = None) -> int | None:
    """Choose the variant that is best by the campaign's winner metric; stores and returns its id."""
    metric = metric or campaign.winner_metric
    results = campaign_results(campaign=campaign)["variants"]
    key = {WinnerMetric.OPEN_RATE: "open_rate", WinnerMetric.CLICK_RATE: "click_rate",
           WinnerMetric.CONVERSION_RATE: "conversion_rate", WinnerMetric.REVENUE: "revenue_per_message"}[metric]
    scored = [(v[key], v["sent"], -v["variant_id"], v["variant_id"]) for v in results if v[key] is not None]
    if not scored:
        return None
    winner = max(scored)[3]
    Campaign.objects.filter(pk=campaign.pk).update(winner_id=winner)
    campaign.winner_id = winner
    return winner


STRATEGIES = (
    ("new", "new_customer_retention", "New customers who bought again within the window"),
    ("silent", "silent_reactivation", "Silent customers who bought within the window"),
    ("churned", "churned_win_back", "Churned customers won back (bought) within the window"),
)


def tier_strategy_figures(*, attribution_days: int | None = None, dimension: str = "behaviour") -> list[dict]:
    """Standing figures of the tier strategies over every campaign: for messages targeted at
    New, Silent and Churned (behaviour dimension), the conversion rate of those sent against
    those held out, with the uplift and its 95% CI."""
    days = attribution_days or settings.CAMPAIGN_ATTRIBUTION_DAYS
    out = []
    for slug, key, label in STRATEGIES:
        rows = _groups(Message.objects.filter(tier__dimension__slug=dimension, tier__slug=slug,
                                              status__in=[MessageStatus.SENT, MessageStatus.HOLDOUT]), days)
        s = _summarise(rows)
        out.append({"key": key, "tier": slug, "label": label, "treated": s["sent"], "holdout": s["holdout"],
                    "rate": s["conversion_rate"], "holdout_rate": s["holdout_conversion_rate"],
                    "uplift": s["uplift"]})
    return out
