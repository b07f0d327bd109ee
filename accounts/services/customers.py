"""Customer profiles written by storefronts: look-up and upsert."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.core.errors import ApplicationError, InvalidInput, NotFound

from ..choices import ConsentSource
from ..models import Customer

logger = logging.getLogger(__name__)

# The profile fields a storefront may write. Everything else (seen times, erasure, unsubscribe)
# is Stratum's own bookkeeping.
PROFILE_FIELDS = ("email", "name", "phone", "attributes", "signup_at", "marketing_consent")


class CustomerNotFound(NotFound):
    def __init__(self, *, external_id: str):
        super().__init__(f"No customer with external id '{external_id}'.", extra={"external_id": external_id})


class CustomerErased(ApplicationError):
    """Personal data of an erased customer is never stored again, so writes that carry it are refused."""

    code, http_status = "customer_erased", 409

    def __init__(self, *, external_id: str):
        super().__init__(
            f"Customer '{external_id}' has been erased; their personal data cannot be stored again.",
            extra={"external_id": external_id},
        )


def customer_get(*, external_id: str) -> Customer:
    """The customer with this external id, or CustomerNotFound."""
    customer = Customer.objects.filter(external_id=external_id).first()
    if customer is None:
        raise CustomerNotFound(external_id=external_id)
    return customer


def _check_external_id(external_id: str) -> None:
    limit = Customer._meta.get_field("external_id").max_length
    if not external_id or len(external_id) > limit:
        raise InvalidInput(
            "Validation error.",
            extra={"fields": {"external_id": [f"Must be 1 to {limit} characters."]}},
        )


def _apply(customer: Customer, data: dict[str, Any], *, now: datetime, created: bool) -> list[str]:
    """Copy the given profile fields onto `customer`; returns the names of the fields that changed."""
    changed = []
    for name in PROFILE_FIELDS:
        if name not in data or name == "marketing_consent":
            continue
        if getattr(customer, name) != data[name]:
            setattr(customer, name, data[name])
            changed.append(name)
    if "marketing_consent" in data:
        consent = data["marketing_consent"]
        # A new customer's consent is recorded even when it is "no": it is what the storefront said, and when.
        if created or consent != customer.marketing_consent:
            customer.marketing_consent = consent
            customer.consent_at = now
            customer.consent_source = ConsentSource.API
            changed += ["marketing_consent", "consent_at", "consent_source"]
    return changed


@transaction.atomic
def customer_upsert(*, external_id: str, data: dict[str, Any], now: datetime | None = None) -> tuple[Customer, bool]:
    """Create or update the profile of `external_id` with the fields in `data` (partial: fields
    not in `data` keep their value). Returns (customer, created).

    Locks the customer row, so concurrent upserts of one customer apply one after the other.
    Raises CustomerErased for an erased customer, whatever `data` holds.
    """
    _check_external_id(external_id)
    unknown = set(data) - set(PROFILE_FIELDS)
    if unknown:
        raise InvalidInput("Validation error.", extra={"fields": {name: ["Unknown field."] for name in sorted(unknown)}})
    now = now or timezone.now()

    customer = Customer.objects.select_for_update().filter(external_id=external_id).first()
    created = customer is None
    if created:
        customer = Customer(external_id=external_id)
        _apply(customer, data, now=now, created=True)
        customer.clean_fields()
        try:
            with transaction.atomic():  # savepoint: a concurrent request may create the same customer
                customer.save(force_insert=True)
        except IntegrityError:
            customer = Customer.objects.select_for_update().filter(external_id=external_id).first()
            if customer is None:  # not a lost race: a real constraint violation
                raise
            created = False
        else:
            logger.info("customer_created external_id=%s source=api", external_id)
            return customer, True

    if customer.is_erased:
        raise CustomerErased(external_id=external_id)
    changed = _apply(customer, data, now=now, created=False)
    if changed:
        # Only what this request wrote is validated: old imported data must not block an update.
        customer.clean_fields(exclude=[f.name for f in Customer._meta.concrete_fields if f.name not in changed])
        customer.save(update_fields=[*changed, "updated_at"])
    return customer, False
