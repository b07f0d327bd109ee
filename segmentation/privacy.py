"""The customer's tiers and tier history in the privacy export (nothing personal to erase)."""
from accounts.services.privacy import export_section

from .models import Membership, TierChange


@export_section("tiers")
def export_tiers(customer) -> list[dict]:
    return [
        {"dimension": m.dimension.slug, "tier": m.tier.slug, "since": m.since.isoformat(), "overridden": m.overridden}
        for m in Membership.objects.filter(customer=customer).select_related("dimension", "tier").order_by("dimension__order")
    ]


@export_section("tier_history")
def export_tier_history(customer) -> list[dict]:
    return [
        {"dimension": c.dimension.slug, "from": c.from_tier.slug if c.from_tier else None, "to": c.to_tier.slug,
         "at": c.at.isoformat(), "cause": c.cause}
        for c in TierChange.objects.filter(customer=customer).select_related("dimension", "from_tier", "to_tier").order_by("at", "id")
    ]
