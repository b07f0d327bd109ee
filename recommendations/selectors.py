"""Reads of recommendations: attribution of impressions, clicks and purchases to models and
experiment arms, experiment results with significance, the model list.

Attribution is set-based over the events table. Storefronts send `rec_impression` and
`rec_click` events with `properties.rec_id` as served (rec_id = "m<model>.x<experiment><arm>.
<token>", see serving.rec_id_prefix). A purchase is attributed when the same customer clicked
a recommendation of the same item within ATTRIBUTION_DAYS before buying it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, DateTimeField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Event

from .choices import Arm
from .models import Experiment, TrainedModel
from .stats import two_proportion_test, wilson_interval

ATTRIBUTION_DAYS = 7


def trained_models() -> QuerySet[TrainedModel]:
    """Every trained model, newest first, without its artefact."""
    return TrainedModel.objects.defer("artefact").select_related("requested_by").order_by("-created_at", "-id")


def _rec_filter(*, model_id: int | None = None, experiment_id: int | None = None, arm: str | None = None) -> Q:
    if experiment_id is not None:
        arms = arm or "ab"
        return Q(properties__rec_id__regex=rf"^m[0-9]+\.x{int(experiment_id)}[{arms}]\.")
    return Q(properties__rec_id__startswith=f"m{int(model_id)}.")


def attribution(*, model_id: int | None = None, experiment_id: int | None = None, arm: str | None = None,
                since: datetime | None = None, until: datetime | None = None,
                window_days: int = ATTRIBUTION_DAYS) -> dict:
    """Impressions, clicks, exposed customers and attributed purchases (count, buyers, revenue)
    of one model or one experiment arm, in [since, until]. Two aggregate queries."""
    match = _rec_filter(model_id=model_id, experiment_id=experiment_id, arm=arm)
    span = Q()
    if since:
        span &= Q(occurred_at__gte=since)
    if until:
        span &= Q(occurred_at__lte=until)
    served = Event.objects.filter(span, match, type__in=["rec_impression", "rec_click"]).aggregate(
        impressions=Count("id", filter=Q(type="rec_impression")),
        clicks=Count("id", filter=Q(type="rec_click")),
        exposed=Count("customer_id", filter=Q(type="rec_impression"), distinct=True),
        clickers=Count("customer_id", filter=Q(type="rec_click"), distinct=True),
    )
    clicked_before = Event.objects.filter(
        match, type="rec_click", customer_id=OuterRef("customer_id"), item_id=OuterRef("item_id"),
        occurred_at__lte=OuterRef("occurred_at"),
        occurred_at__gte=ExpressionWrapper(OuterRef("occurred_at") - Value(timedelta(days=window_days)),
                                           output_field=DateTimeField()),
    )
    bought = Event.objects.filter(span, type="purchase", item__isnull=False).filter(Exists(clicked_before)).aggregate(
        purchases=Count("id"), buyers=Count("customer_id", distinct=True),
        revenue=Coalesce(Sum("amount"), Value(Decimal("0.00"))),
    )
    return {**served, **bought}


@dataclass
class ArmResult:
    arm: str
    model_id: int | None
    config: dict
    impressions: int
    clicks: int
    exposed: int
    clickers: int
    purchases: int
    buyers: int
    revenue: Decimal

    @property
    def ctr(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None

    @property
    def conversion(self) -> float | None:
        return self.buyers / self.exposed if self.exposed else None

    @property
    def revenue_per_customer(self) -> Decimal | None:
        return (self.revenue / self.exposed).quantize(Decimal("0.01")) if self.exposed else None

    @property
    def ctr_ci(self):
        return wilson_interval(self.clicks, self.impressions)

    @property
    def conversion_ci(self):
        return wilson_interval(self.buyers, self.exposed)


def experiment_results(*, experiment: Experiment) -> dict:
    """Per arm: impressions, CTR, conversion (buyers / exposed customers), revenue per exposed
    customer, each rate with its 95% Wilson interval; B against A: two-proportion z-tests on
    CTR and conversion with the 95% interval of the difference."""
    until = experiment.stopped_at or timezone.now()
    arms = {}
    for arm, model, config in ((Arm.A, experiment.model_a_id, experiment.config_a),
                               (Arm.B, experiment.model_b_id, experiment.config_b)):
        a = attribution(experiment_id=experiment.pk, arm=arm, since=experiment.started_at, until=until)
        arms[str(arm)] = ArmResult(arm=str(arm), model_id=model, config=config or {}, **a)
    A, B = arms["a"], arms["b"]
    return {
        "arms": arms,
        "ctr_test": two_proportion_test(A.clicks, A.impressions, B.clicks, B.impressions),
        "conversion_test": two_proportion_test(A.buyers, A.exposed, B.buyers, B.exposed),
        "since": experiment.started_at,
        "until": until,
    }


def model_attribution(*, model_ids: list[int], since: datetime | None = None) -> dict[int, dict]:
    """attribution() of each model (staff model list; a handful of models)."""
    return {pk: attribution(model_id=pk, since=since) for pk in model_ids}


def experiments_list() -> QuerySet[Experiment]:
    return Experiment.objects.select_related("model_a", "model_b").defer("model_a__artefact", "model_b__artefact")


def metrics_chart(models) -> dict:
    """ECharts data: holdout P@10 / nDCG@10 of the model and the popularity baseline per model."""
    rows = [m for m in models if m.metrics and m.metrics.get("test_users")]
    rows = sorted(rows, key=lambda m: m.pk)
    base = [m.metrics.get("baseline_popularity") or {} for m in rows]
    return {
        "labels": [f"#{m.pk} {m.algorithm}" for m in rows],
        "ndcg": [round(m.metrics.get("ndcg", 0), 4) for m in rows],
        "precision": [round(m.metrics.get("precision", 0), 4) for m in rows],
        "baseline_ndcg": [round(b.get("ndcg", 0), 4) for b in base],
    }



def recommendations_for_customers(customer_ids: list[int], *, n: int = 3) -> dict[int, list[dict]]:
    """Top-n recommendations per customer pk for e-mail content (campaigns' default recommender).

    Each customer is ranked by the serving path (same model, filters, tier rules and cache as
    the storefront API); the catalog fields e-mails need come from one query. Returns plain
    values only; customers for whom nothing can be recommended get [].
    """
    from accounts.models import Customer

    from .models import Item
    from .serving import customer_recommendations_safe

    external = dict(Customer.objects.filter(pk__in=customer_ids).values_list("pk", "external_id"))
    ranked = {pk: (customer_recommendations_safe(external_id=ext, limit=n) or {}).get("items", [])
              for pk, ext in external.items()}
    wanted = {rec["item"] for recs in ranked.values() for rec in recs}
    items = {i["external_id"]: i for i in Item.objects.filter(external_id__in=wanted).values("external_id", "url", "price")}
    return {
        pk: [{"title": rec["title"], "category": rec["category"], "url": items.get(rec["item"], {}).get("url", ""),
              "price": items.get(rec["item"], {}).get("price")} for rec in recs]
        for pk, recs in ranked.items()
    }
