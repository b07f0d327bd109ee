"""Reads for the operations dashboard (the home page): aggregate queries only, cached.

Every figure is computed set-based in the database (COUNT/SUM ... GROUP BY), never by looping
over customers, so the page stays fast on millions of customers. The whole payload is cached
for DASHBOARD_CACHE_SECONDS, once per UI language (it holds tier names in that language); it
does not depend on the user (permissions only decide which parts the template shows).
Definitions of the KPIs: docs/dashboard.md, and the tooltips.

Time: every window is relative to the `as_of` of the latest successful recompute (what the
tiers mean now), not to the wall clock, so imported history (a 1997 purchase log) reads right.

Each figure carries the customer-list URL of the customers behind it; the `changed` and `kpi`
filters of the customer list are defined here and registered from CoreConfig.ready().
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.core.cache import cache
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, gettext, gettext_lazy as _

DASHBOARD_CACHE_KEY = "ui:dashboard:v1"
DASHBOARD_CACHE_SECONDS = 60
MIGRATION_DAYS = 30
TREND_DAYS = 180

# The KPIs read the shipped "behaviour" dimension (new/active/silent/churned; all editable in
# the rule builder). If an installation renames these slugs, the KPI shows "not available".
BEHAVIOUR_DIMENSION = "behaviour"
ACTIVE_TIER = "active"
SILENT_TIER = "silent"
CHURNED_TIER = "churned"
ACTIVE_DAYS = 30
NEW_COHORT_MIN_DAYS, NEW_COHORT_MAX_DAYS = 30, 90


# --- Customer-list filters -------------------------------------------------------------------
def _customer_list_url(**params) -> str:
    return f"{reverse('accounts:customer-list')}?{urlencode(params)}"


def changed_url(dimension: str, from_tier: str, to_tier: str, days: int = MIGRATION_DAYS) -> str:
    return _customer_list_url(changed=f"{dimension}:{from_tier}:{to_tier}", days=days)


def _as_of() -> datetime:
    from segmentation.selectors import latest_as_of

    return latest_as_of()


def customer_filter_changed(request, value: str):
    """?changed=<dimension>:<from tier>:<to tier>[&days=30] -> customers who moved between the two
    tiers within the last `days` days (before the latest recompute's as_of)."""
    from segmentation.models import Tier, TierChange

    if not request.user.has_perm("segmentation.view_tierchange"):
        return None
    parts = value.split(":")
    if len(parts) != 3:
        return None
    dim, src, dst = parts
    try:
        days = max(1, min(int(request.GET.get("days") or MIGRATION_DAYS), 3650))
    except ValueError:
        return None
    tiers = {t.slug: t for t in Tier.objects.select_related("dimension").filter(dimension__slug=dim, slug__in=[src, dst])}
    if src not in tiers or dst not in tiers:
        return None
    as_of = _as_of()
    changes = TierChange.objects.filter(customer=OuterRef("pk"), from_tier=tiers[src], to_tier=tiers[dst],
                                        at__gt=as_of - timedelta(days=days), at__lte=as_of)
    label = gettext("%(dimension)s: %(from)s → %(to)s in the last %(days)s days") % {
        "dimension": tiers[dst].dimension.display_name, "from": tiers[src].display_name, "to": tiers[dst].display_name,
        "days": days}
    return Q(Exists(changes)), label


def _kpi_q(kind: str, as_of: datetime) -> Q | None:
    """The customers behind a KPI, as a Q over Customer (via their CustomerFeatures row)."""
    if kind == "active":
        return Q(features__activity_recency_days__lte=ACTIVE_DAYS)
    cohort = Q(features__first_purchase_at__gt=as_of - timedelta(days=NEW_COHORT_MAX_DAYS),
               features__first_purchase_at__lte=as_of - timedelta(days=NEW_COHORT_MIN_DAYS))
    if kind == "new-cohort":
        return cohort
    if kind == "new-retained":
        return cohort & Q(features__orders_total__gte=2)
    return None


KPI_LABELS = {
    "active": _("Active customers (activity in the last 30 days)"),
    "new-cohort": _("New customers: first purchase 30–90 days ago"),
    "new-retained": _("New customers retained: first purchase 30–90 days ago and a second order since"),
}


def customer_filter_kpi(request, value: str):
    """?kpi=active|new-cohort|new-retained -> the customers counted by that KPI."""
    if not request.user.has_perm("segmentation.view_customerfeatures"):
        return None
    q = _kpi_q(value, _as_of())
    if q is None:
        return None
    return q, str(KPI_LABELS[value])


def register_filters() -> None:
    from accounts.customer_page import CustomerListFilter, register_customer_list_filter

    register_customer_list_filter(CustomerListFilter("changed", customer_filter_changed))
    register_customer_list_filter(CustomerListFilter("kpi", customer_filter_kpi))


# --- The payload -------------------------------------------------------------------------------
@dataclass
class Kpi:
    key: str
    value: object  # int, Decimal or None (not available)
    url: str = ""
    rate: float | None = None  # percent, when the KPI is a share
    base: int | None = None  # the denominator of `rate`
    base_url: str = ""


@dataclass
class Dashboard:
    as_of: datetime | None
    computed_at: datetime
    dimensions: list[dict] = field(default_factory=list)  # tier sizes per dimension
    trends: dict = field(default_factory=dict)  # for static/js/tier-trends.js
    migrations: list[dict] = field(default_factory=list)  # per dimension: tiers, matrix, sankey
    kpis: dict[str, Kpi] = field(default_factory=dict)
    revenue: dict | None = None  # revenue by tier of the value dimension
    runs: list = field(default_factory=list)
    models: list = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(d["total"] for d in self.dimensions)


def tier_sizes() -> list[dict]:
    """Active dimensions with their tiers, sizes, shares and the customer-list link (2 queries)."""
    from segmentation.views_support import dimensions_overview

    out = []
    for d in dimensions_overview():
        dim = d["dimension"]
        rows = [{"slug": r.tier.slug, "name": r.tier.display_name, "colour": r.tier.colour, "is_vip": r.tier.is_vip,
                 "customers": r.customers, "share": r.share,
                 "url": _customer_list_url(tier=f"{dim.slug}:{r.tier.slug}")} for r in d["rows"]]
        out.append({"slug": dim.slug, "name": dim.display_name, "total": d["total"], "tiers": rows})
    return out


def tier_migrations(*, as_of: datetime, days: int = MIGRATION_DAYS) -> list[dict]:
    """Tier changes within `days` before `as_of`, from -> to, per dimension (one GROUP BY query).

    First assignments (no "from" tier) are not migrations and are left out. The query filters
    on to_tier IN (...) AND at > since, which the (to_tier, at) index of TierChange answers.
    """
    from segmentation.models import Dimension, Tier, TierChange

    dims = list(Dimension.objects.filter(active=True).order_by("order", "slug"))
    tiers = list(Tier.objects.filter(dimension__in=dims).order_by("order", "id"))
    rows = (TierChange.objects.filter(to_tier__in=tiers, from_tier__isnull=False,
                                      at__gt=as_of - timedelta(days=days), at__lte=as_of)
            .values_list("dimension_id", "from_tier_id", "to_tier_id").annotate(n=Count("id")).order_by())
    counts: dict[int, dict[tuple[int, int], int]] = {}
    for dim_id, src, dst, n in rows:
        counts.setdefault(dim_id, {})[(src, dst)] = n
    out = []
    for dim in dims:
        dim_tiers = [t for t in tiers if t.dimension_id == dim.pk]
        cells = counts.get(dim.pk, {})
        matrix = []
        for src in dim_tiers:
            matrix.append({"tier": src, "cells": [
                {"to": dst, "n": cells.get((src.pk, dst.pk), 0),
                 "url": changed_url(dim.slug, src.slug, dst.slug, days) if cells.get((src.pk, dst.pk)) else ""}
                for dst in dim_tiers]})
        # ECharts Sankey needs distinct node names: "from" nodes and "to" nodes are separate.
        links = [{"source": f"{src.display_name} ", "target": f"{dst.display_name}", "value": n,
                  "url": changed_url(dim.slug, src.slug, dst.slug, days)}
                 for src in dim_tiers for dst in dim_tiers if (n := cells.get((src.pk, dst.pk)))]
        used_src = {link["source"] for link in links}
        used_dst = {link["target"] for link in links}
        nodes = ([{"name": f"{t.display_name} ", "itemStyle": {"color": t.colour}} for t in dim_tiers
                  if f"{t.display_name} " in used_src]
                 + [{"name": t.display_name, "itemStyle": {"color": t.colour}} for t in dim_tiers if t.display_name in used_dst])
        out.append({"slug": dim.slug, "name": dim.display_name, "tiers": dim_tiers, "matrix": matrix,
                    "total": sum(cells.values()), "sankey": {"nodes": nodes, "links": links}})
    return out


def _changes_count(*, as_of: datetime, dimension: str, src: str, dst: str, days: int) -> Kpi:
    from segmentation.models import Tier, TierChange

    tiers = {t.slug: t for t in Tier.objects.filter(dimension__slug=dimension, slug__in=[src, dst])}
    if src not in tiers or dst not in tiers:
        return Kpi(key="", value=None)
    n = TierChange.objects.filter(to_tier=tiers[dst], from_tier=tiers[src],
                                  at__gt=as_of - timedelta(days=days), at__lte=as_of).count()
    # The base: everyone who was in the source tier at the start of the window, approximated by
    # those in it now plus those who left it for the target (one more indexed COUNT).
    base = n + tiers[src].memberships.count()
    return Kpi(key="", value=n, url=changed_url(dimension, src, dst, days),
               rate=(100.0 * n / base) if base else None, base=base,
               base_url=_customer_list_url(tier=f"{dimension}:{src}"))


def kpis(*, as_of: datetime) -> dict[str, Kpi]:
    """The KPI cards. See docs/dashboard.md for the definitions (also shown as tooltips)."""
    from segmentation.models import CustomerFeatures

    since_active = Q(activity_recency_days__lte=ACTIVE_DAYS)
    cohort = Q(first_purchase_at__gt=as_of - timedelta(days=NEW_COHORT_MAX_DAYS),
               first_purchase_at__lte=as_of - timedelta(days=NEW_COHORT_MIN_DAYS))
    # One scan of CustomerFeatures for the three counts (conditional aggregation).
    agg = CustomerFeatures.objects.aggregate(
        customers=Count("pk"), active=Count("pk", filter=since_active),
        cohort=Count("pk", filter=cohort), retained=Count("pk", filter=cohort & Q(orders_total__gte=2)))
    out = {
        "active": Kpi("active", agg["active"], _customer_list_url(kpi="active"),
                      rate=(100.0 * agg["active"] / agg["customers"]) if agg["customers"] else None,
                      base=agg["customers"], base_url=reverse("accounts:customer-list")),
        "retention": Kpi("retention", agg["retained"], _customer_list_url(kpi="new-retained"),
                         rate=(100.0 * agg["retained"] / agg["cohort"]) if agg["cohort"] else None,
                         base=agg["cohort"], base_url=_customer_list_url(kpi="new-cohort")),
    }
    for key, src in (("reactivation", SILENT_TIER), ("winback", CHURNED_TIER)):
        kpi = _changes_count(as_of=as_of, dimension=BEHAVIOUR_DIMENSION, src=src, dst=ACTIVE_TIER, days=ACTIVE_DAYS)
        kpi.key = key
        out[key] = kpi
    return out


def revenue_by_tier(*, dimensions: list[dict]) -> dict | None:
    """Revenue of the last 30 days (CustomerFeatures.revenue_30d) summed by tier of the value
    dimension: the first dimension with a VIP tier, else the first dimension (one GROUP BY)."""
    from segmentation.models import Membership, Tier

    vip = Tier.objects.filter(is_vip=True, dimension__active=True).select_related("dimension").order_by(
        "dimension__order").first()
    slug = vip.dimension.slug if vip else (dimensions[0]["slug"] if dimensions else None)
    dim = next((d for d in dimensions if d["slug"] == slug), None)
    if dim is None:
        return None
    sums = dict(Membership.objects.filter(dimension__slug=slug).values_list("tier__slug")
                .annotate(s=Coalesce(Sum("customer__features__revenue_30d"), Decimal("0"))).order_by())
    rows = [{**t, "revenue": sums.get(t["slug"], Decimal("0"))} for t in dim["tiers"]]
    total = sum((r["revenue"] for r in rows), Decimal("0"))
    for r in rows:
        r["revenue_share"] = float(100 * r["revenue"] / total) if total else 0.0
    return {"slug": slug, "name": dim["name"], "rows": rows, "total": total}


def recent_runs(limit: int = 5) -> tuple[list, list]:
    from segmentation.models import PredictiveModel, RecomputeRun

    runs = list(RecomputeRun.objects.only("id", "mode", "as_of", "status", "progress", "customers", "changes",
                                          "started_at", "finished_at", "created_at", "error").order_by("-created_at")[:limit])
    models = list(PredictiveModel.objects.defer("artefact", "params").order_by("-created_at")[:limit])
    return runs, models


def dashboard_build(*, as_of: datetime | None = None) -> Dashboard:
    """Every figure of the dashboard (about a dozen aggregate queries)."""
    from segmentation.selectors import latest_run
    from segmentation.views_support import tier_trends

    run = latest_run()
    as_of = as_of or (run.as_of if run else None) or _as_of()
    dims = tier_sizes()
    runs, models = recent_runs()
    return Dashboard(
        as_of=as_of if run else None, computed_at=timezone.now(), dimensions=dims,
        trends=tier_trends(days=TREND_DAYS), migrations=tier_migrations(as_of=as_of), kpis=kpis(as_of=as_of),
        revenue=revenue_by_tier(dimensions=dims), runs=runs, models=models,
    )


def dashboard_get() -> Dashboard:
    """The cached dashboard (DASHBOARD_CACHE_SECONDS), in the active language."""
    key = f"{DASHBOARD_CACHE_KEY}:{get_language()}"
    data = cache.get(key)
    if data is None:
        data = dashboard_build()
        cache.set(key, data, DASHBOARD_CACHE_SECONDS)
    return data


def dashboard_campaigns(user) -> dict:
    """Running and recent campaigns, from `campaigns.selectors.dashboard_campaigns()` once the
    campaigns app provides it (imported lazily; not cached here, the selector decides).

    Contract: dashboard_campaigns() returns an iterable of dicts with "name", "url", "status"
    (a slug), "status_label", and optionally "when" (datetime), "audience" (text) and "figures"
    (a list of {"label", "value", "url"}) — the headline results, each linking to what is behind it.
    """
    if not user.has_perm("campaigns.view_campaign"):
        return {"available": False, "visible": False, "rows": []}
    try:
        from campaigns import selectors as campaign_selectors
    except ImportError:
        return {"available": False, "visible": True, "rows": []}
    selector = getattr(campaign_selectors, "dashboard_campaigns", None)
    if selector is None:
        return {"available": False, "visible": True, "rows": []}
    return {"available": True, "visible": True, "rows": list(selector())}
