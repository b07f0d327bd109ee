"""Builders for campaign tests: customers in tiers, campaigns, purchases."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from accounts.models import Customer, Event
from campaigns.services import campaign_create
from segmentation.models import Membership, Tier


def tier(dimension: str = "behaviour", slug: str = "silent") -> Tier:
    """A built-in tier; re-created when a transactional test's flush removed the migration's rows."""
    from segmentation.models import Dimension

    found = Tier.objects.select_related("dimension").filter(dimension__slug=dimension, slug=slug).first()
    if found is None:
        dim, _ = Dimension.objects.get_or_create(slug=dimension, defaults={"name": dimension.title()})
        found = Tier.objects.create(dimension=dim, slug=slug, name=slug.title(), rule={})
    return found


def customers(n: int, *, prefix: str = "c", in_tier: Tier | None = None, consent: bool = True, **fields) -> list[Customer]:
    """n customers with e-mail and consent, members of `in_tier` (default behaviour/silent)."""
    in_tier = in_tier or tier()
    rows = Customer.objects.bulk_create([
        Customer(external_id=f"{prefix}{i}", email=f"{prefix}{i}@example.com", name=f"Name{i} Surname",
                 marketing_consent=consent, **fields) for i in range(n)])
    if not rows or rows[0].pk is None:
        rows = list(Customer.objects.filter(external_id__startswith=prefix).order_by("pk"))
    now = timezone.now()
    Membership.objects.bulk_create([Membership(customer=c, dimension=in_tier.dimension, tier=in_tier, since=now)
                                    for c in rows])
    return rows


def campaign(*, tiers=None, **fields):
    defaults = {"name": "Test campaign", "subject": "Hello {{ first_name }}",
                "text_body": "Hi {{ first_name }}. {{ unsubscribe_url }}",
                "html_body": '<html><body><p>Hi {{ first_name }}</p><a href="https://shop.example/sale">Sale</a>'
                             '<a href="{{ unsubscribe_url }}">Unsubscribe</a></body></html>',
                "holdout_percent": Decimal("0")}
    defaults.update(fields)
    return campaign_create(tiers=tiers if tiers is not None else [tier()], **defaults)


def purchase(customer: Customer, at: datetime, amount: str = "50.00", eid: str | None = None) -> Event:
    return Event.objects.create(event_id=eid or f"p-{customer.pk}-{at.timestamp()}", customer=customer, type="purchase",
                                amount=Decimal(amount), occurred_at=at)
