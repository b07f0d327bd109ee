"""The campaigns' part of data-subject rights: messages and coupons in the export; on erasure,
nothing queued goes out any more (messages store no personal data of their own)."""
from __future__ import annotations

from accounts.services.privacy import erase_step, export_section

from .choices import MessageStatus, SkipReason
from .models import Coupon, Message


@export_section("campaign_messages")
def _export_messages(customer) -> list[dict]:
    rows = (Message.objects.filter(customer=customer).select_related("campaign", "variant").order_by("created_at", "id"))
    return [{"campaign": m.campaign.name, "campaign_id": m.campaign_id, "variant": m.variant.name if m.variant else None,
             "status": m.status, "skip_reason": m.skip_reason, "created_at": m.created_at.isoformat(),
             "sent_at": m.sent_at.isoformat() if m.sent_at else None,
             "opened_at": m.opened_at.isoformat() if m.opened_at else None,
             "clicked_at": m.clicked_at.isoformat() if m.clicked_at else None,
             "unsubscribed_at": m.unsubscribed_at.isoformat() if m.unsubscribed_at else None} for m in rows]


@export_section("coupons")
def _export_coupons(customer) -> list[dict]:
    rows = Coupon.objects.filter(customer=customer).prefetch_related("redemptions").order_by("created_at", "id")
    return [{"code": c.code, "campaign_id": c.campaign_id, "discount": c.discount, "value": str(c.value),
             "min_basket": str(c.min_basket), "currency": c.currency, "valid_from": c.valid_from.isoformat(),
             "expires_at": c.expires_at.isoformat(), "max_uses": c.max_uses, "uses": c.uses,
             "redemptions": [{"order_id": r.order_id, "amount": str(r.amount), "discount": str(r.discount_amount),
                              "redeemed_at": r.redeemed_at.isoformat()} for r in c.redemptions.all()]}
            for c in rows]


@erase_step("campaign_messages")
def _erase_messages(*, customer, now, by=None) -> None:
    Message.objects.filter(customer=customer, status=MessageStatus.QUEUED).update(
        status=MessageStatus.SKIPPED, skip_reason=SkipReason.ERASED)
