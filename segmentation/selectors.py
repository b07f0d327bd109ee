"""Reads for segmentation pages and the API."""
from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Prefetch, QuerySet
from django.utils import timezone

from .choices import RunStatus
from .models import Dimension, Membership, RecomputeRun, Tier


def latest_run() -> RecomputeRun | None:
    return RecomputeRun.objects.filter(status=RunStatus.SUCCEEDED).order_by("-finished_at", "-id").first()


def latest_as_of() -> datetime:
    """The as_of of the latest successful recompute (what tiers mean now), else the default."""
    run = latest_run()
    if run:
        return run.as_of
    from .services import default_as_of

    return default_as_of(now=timezone.now())


def dimensions_with_counts() -> QuerySet[Dimension]:
    tiers = Tier.objects.annotate(customers=Count("memberships")).order_by("order", "id")
    return Dimension.objects.filter(active=True).prefetch_related(Prefetch("tiers", queryset=tiers)).order_by("order", "slug")


def customer_tiers(*, customer_id: int) -> list[Membership]:
    return list(
        Membership.objects.filter(customer_id=customer_id, dimension__active=True)
        .select_related("tier", "dimension").order_by("dimension__order", "dimension__slug")
    )


def segments_with_counts() -> list:
    """Segments with `customers` set to the size of their audience now (one COUNT each)."""
    from accounts.models import Customer

    from .models import Segment
    from .rules import compile_rule

    as_of = latest_as_of()
    segments = list(Segment.objects.order_by("name"))
    for segment in segments:
        segment.customers = Customer.objects.filter(compile_rule(segment.rule, as_of=as_of).q).count()
    return segments


def customer_is_vip(*, customer_id: int) -> bool:
    return Membership.objects.filter(customer_id=customer_id, tier__is_vip=True, dimension__active=True).exists()
