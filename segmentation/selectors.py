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
