"""Coupons: unguessable codes generated in bulk, validation, idempotent redemption, goodwill.

Codes are 12 characters from a 29-letter alphabet without look-alikes (no 0/O, 1/I/L, and no
U/V), drawn with `secrets`: 29^12 ≈ 3.5e17 codes, so guessing one of a million live codes
takes ~10^11 tries; the API is also throttled per key.

Redemption is atomic and idempotent by order id: the coupon row is locked (SELECT ... FOR
UPDATE), an existing redemption of the same order is returned as it was, and a new one is
only written while uses < max_uses (also a database check). Two concurrent redemptions of a
single-use code queue on the row lock; the second sees uses == max_uses and fails `used`.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.choices import EventType
from accounts.models import Customer
from accounts.services.bulk import EventRow, events_store
from crm.core.errors import ApplicationError, InvalidInput
from crm.core.money import CENT, currency

from .choices import CouponInvalidReason, DiscountKind, MessageStatus
from .models import Campaign, Coupon, CouponRedemption, Message

logger = logging.getLogger(__name__)

ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"  # no 0 O 1 I L U V
CODE_LENGTH = 12


class CouponNotRedeemable(ApplicationError):
    code, http_status = "coupon_not_redeemable", 409

    def __init__(self, reason: str):
        super().__init__(f"The coupon cannot be redeemed: {CouponInvalidReason(reason).label}.",
                         extra={"reason": reason})
        self.reason = reason
        if reason == CouponInvalidReason.UNKNOWN:
            self.http_status = 404


class GoodwillNotAllowed(ApplicationError):
    code, http_status = "permission_denied", 403


def new_code() -> str:
    return new_codes(1)[0]


def new_codes(n: int) -> list[str]:
    """n random codes: bytes from `secrets`, mapped onto the alphabet by rejection sampling (a
    byte is used only below the largest multiple of the alphabet size, so every letter is equally
    likely)."""
    size, limit, out = len(ALPHABET), 256 - 256 % len(ALPHABET), []
    while len(out) < n:
        chunk = [b % size for b in secrets.token_bytes((n - len(out)) * CODE_LENGTH * 2) if b < limit]
        for i in range(0, len(chunk) - CODE_LENGTH + 1, CODE_LENGTH):
            out.append("".join(ALPHABET[j] for j in chunk[i:i + CODE_LENGTH]))
            if len(out) == n:
                break
    return out


def normalize_code(code: str) -> str:
    return (code or "").strip().upper().replace("-", "").replace(" ", "")


def coupons_issue_for_campaign(*, campaign: Campaign, now: datetime | None = None) -> int:
    """Create one coupon per treated (queued) message of `campaign` that has none yet, in bulk.

    Idempotent: unique (campaign, customer) with ignore_conflicts; a code collision (unique
    code) is simply retried for the customers that ended up without a coupon.
    """
    now = now or timezone.now()
    created = 0
    for _ in range(5):
        missing = list(
            Message.objects.filter(campaign=campaign, status=MessageStatus.QUEUED)
            .exclude(customer_id__in=Coupon.objects.filter(campaign=campaign).values("customer_id"))
            .values_list("customer_id", flat=True)
        )
        if not missing:
            break
        codes = new_codes(len(missing))
        expires = now + timedelta(days=campaign.coupon_valid_days)
        if connection.vendor == "postgresql":   # one statement whatever the number
            with connection.cursor() as cur:
                cur.execute(
                    """INSERT INTO campaigns_coupon (code, customer_id, campaign_id, discount, value, min_basket,
                           currency, valid_from, expires_at, max_uses, uses, reason, created_at, updated_at)
                       SELECT c.code, c.cid, %s, %s, %s, %s, %s, %s, %s, %s, 0, '', %s, %s
                       FROM unnest(%s::text[], %s::bigint[]) AS c(code, cid)
                       ON CONFLICT DO NOTHING""",
                    [campaign.pk, campaign.coupon_discount, campaign.coupon_value, campaign.coupon_min_basket,
                     currency(), now, expires, campaign.coupon_uses, now, now, codes, missing])
                created += cur.rowcount
        else:
            rows = [Coupon(code=code, customer_id=cid, campaign=campaign, discount=campaign.coupon_discount,
                           value=campaign.coupon_value, min_basket=campaign.coupon_min_basket, currency=currency(),
                           valid_from=now, expires_at=expires, max_uses=campaign.coupon_uses)
                    for code, cid in zip(codes, missing, strict=True)]
            Coupon.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
            created += len(rows)
    return created


def discount_for(coupon: Coupon, amount: Decimal) -> Decimal:
    if coupon.discount == DiscountKind.PERCENT:
        value = (amount * coupon.value / Decimal(100)).quantize(CENT)
    else:
        value = coupon.value
    return min(value, amount)


@dataclass
class Validation:
    valid: bool
    reason: str = ""
    coupon: Coupon | None = None
    discount: Decimal | None = None


def _check(coupon: Coupon | None, customer_external_id: str, amount: Decimal, now: datetime) -> Validation:
    if coupon is None:
        return Validation(False, CouponInvalidReason.UNKNOWN)
    if coupon.customer.external_id != customer_external_id:
        return Validation(False, CouponInvalidReason.WRONG_CUSTOMER, coupon)
    if now < coupon.valid_from:
        return Validation(False, CouponInvalidReason.NOT_YET_VALID, coupon)
    if now >= coupon.expires_at:
        return Validation(False, CouponInvalidReason.EXPIRED, coupon)
    if coupon.uses >= coupon.max_uses:
        return Validation(False, CouponInvalidReason.USED, coupon)
    if amount < coupon.min_basket:
        return Validation(False, CouponInvalidReason.BASKET_TOO_SMALL, coupon)
    return Validation(True, "", coupon, discount_for(coupon, amount))


def coupon_validate(*, code: str, customer: str, amount: Decimal, now: datetime | None = None) -> Validation:
    """Would `code` apply to `customer`'s (external id) basket of `amount`? Reads only."""
    now = now or timezone.now()
    coupon = Coupon.objects.select_related("customer").filter(code=normalize_code(code)).first()
    return _check(coupon, customer, amount, now)


@dataclass
class Redemption:
    redemption: CouponRedemption
    replayed: bool


def coupon_redeem(*, code: str, customer: str, order_id: str, amount: Decimal,
                  now: datetime | None = None) -> Redemption:
    """Redeem `code` for an order; atomic and idempotent by order id. Locks the coupon row.

    Raises CouponNotRedeemable(reason). Writes a coupon_redeem event (event_id derived from the
    coupon and the order, so a replay stores nothing new).
    """
    now = now or timezone.now()
    with transaction.atomic():
        coupon = (Coupon.objects.select_for_update(of=("self",)).select_related("customer")
                  .filter(code=normalize_code(code)).first())
        if coupon is None:
            raise CouponNotRedeemable(CouponInvalidReason.UNKNOWN)
        done = CouponRedemption.objects.filter(coupon=coupon, order_id=order_id).first()
        if done is not None:
            return Redemption(done, replayed=True)
        check = _check(coupon, customer, amount, now)
        if not check.valid:
            raise CouponNotRedeemable(check.reason)
        redemption = CouponRedemption.objects.create(coupon=coupon, customer=coupon.customer, order_id=order_id,
                                                     amount=amount, discount_amount=check.discount, redeemed_at=now)
        coupon.uses += 1
        coupon.redeemed_at = now
        coupon.save(update_fields=["uses", "redeemed_at", "updated_at"])
        events_store([EventRow(
            event_id=f"coupon_redeem:{coupon.pk}:{order_id}"[:64], customer=coupon.customer.external_id,
            type=EventType.COUPON_REDEEM, occurred_at=now, amount=check.discount,
            properties={"code": coupon.code, "order_id": order_id, "order_amount": str(amount),
                        "campaign": coupon.campaign_id})])
    return Redemption(redemption, replayed=False)


def coupon_issue_goodwill(*, customer: Customer, by, discount: str, value: Decimal, valid_days: int = 30,
                          min_basket: Decimal = Decimal("0"), reason: str = "",
                          now: datetime | None = None) -> Coupon:
    """A customer-service agent gives `customer` a coupon. Needs campaigns.issue_goodwill_coupon;
    capped by CAMPAIGN_GOODWILL_MAX_PERCENT / _MAX_AMOUNT."""
    now = now or timezone.now()
    if by is None or not by.has_perm("campaigns.issue_goodwill_coupon"):
        raise GoodwillNotAllowed("You may not issue goodwill coupons.")
    if customer.erased_at is not None:
        raise InvalidInput("The customer has been erased.", code="customer_erased", http_status=409)
    limit = Decimal(settings.CAMPAIGN_GOODWILL_MAX_PERCENT if discount == DiscountKind.PERCENT
                    else settings.CAMPAIGN_GOODWILL_MAX_AMOUNT)
    if discount not in DiscountKind.values:
        raise InvalidInput("Unknown discount kind.", extra={"fields": {"discount": ["Choose percent or fixed."]}})
    if not (Decimal(0) < value <= limit):
        raise InvalidInput(f"A goodwill discount must be above 0 and at most {limit}.",
                           extra={"fields": {"value": [f"At most {limit}."]}})
    if not (1 <= valid_days <= 365):
        raise InvalidInput("Validity must be 1 to 365 days.", extra={"fields": {"valid_days": ["1 to 365."]}})
    for _ in range(5):
        try:
            with transaction.atomic():
                coupon = Coupon.objects.create(
                    code=new_code(), customer=customer, discount=discount, value=value, min_basket=min_basket,
                    currency=currency(), valid_from=now, expires_at=now + timedelta(days=valid_days),
                    max_uses=1, issued_by=by, reason=(reason or "").strip()[:1000])
            logger.info("goodwill_coupon_issued customer=%s by=%s coupon=%s", customer.pk, by.pk, coupon.pk)
            return coupon
        except IntegrityError:  # a code collision: draw again
            continue
    raise ApplicationError("Could not draw a unique coupon code.")


def customer_coupons(*, customer: Customer, active_only: bool = False, now: datetime | None = None):
    """The customer's coupons, newest first."""
    now = now or timezone.now()
    qs = Coupon.objects.filter(customer=customer).select_related("campaign").order_by("-created_at", "-id")
    if active_only:
        from django.db.models import F
        qs = qs.filter(expires_at__gt=now, uses__lt=F("max_uses"))
    return qs
