"""Data-subject rights: export everything stored about a customer, and erase their personal data.

Both are assembled from registries so that apps added later contribute their own part
without this module knowing them:

    # segmentation/apps.py, in ready():
    from accounts.services.privacy import export_section, erase_step

    @export_section("tiers")
    def _tiers(customer): return [...]           # JSON-ready list or dict

    @erase_step("messages")
    def _scrub_messages(*, customer, now, by): ...  # inside customer_erase's transaction

Erasure keeps anonymous aggregates: the customer row (its external id, seen times and
sign-up time), events with their types, items and amounts, and feedback ratings and
sentiment. It removes e-mail, name, phone, attributes, feedback text and event properties,
and withdraws marketing consent. The erased_at stamp is what keeps an erased customer from
being contacted again or re-filled with personal data.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..choices import ConsentSource
from ..models import Customer, Event, Feedback

logger = logging.getLogger(__name__)

ExportSection = Callable[[Customer], Any]
EraseStep = Callable[..., None]

_EXPORT_SECTIONS: dict[str, ExportSection] = {}
_ERASE_STEPS: dict[str, EraseStep] = {}


def export_section(name: str) -> Callable[[ExportSection], ExportSection]:
    """Register `fn(customer) -> JSON-ready data` as the export's top-level key `name`."""

    def register(fn: ExportSection) -> ExportSection:
        if name in ("customer", "exported_at"):
            raise ValueError(f"'{name}' is reserved in the export")
        _EXPORT_SECTIONS[name] = fn
        return fn

    return register


def erase_step(name: str) -> Callable[[EraseStep], EraseStep]:
    """Register `fn(*, customer, now, by)`, run by customer_erase inside its transaction with the
    customer row locked. Steps must be idempotent: erasing twice runs them twice."""

    def register(fn: EraseStep) -> EraseStep:
        _ERASE_STEPS[name] = fn
        return fn

    return register


def export_sections() -> tuple[str, ...]:
    return tuple(_EXPORT_SECTIONS)


# --- Export -------------------------------------------------------------------------------------


def customer_export(*, customer: Customer, now: datetime | None = None) -> dict:
    """Everything stored about `customer`, as JSON-ready data: one key per registered section."""
    data: dict[str, Any] = {
        "customer": customer.external_id,
        "exported_at": (now or timezone.now()).isoformat().replace("+00:00", "Z"),
    }
    for name, section in _EXPORT_SECTIONS.items():
        data[name] = section(customer)
    return data


@export_section("profile")
def _export_profile(customer: Customer) -> dict:
    from ..api.serializers import CustomerOutputSerializer  # the one wire format of a customer

    return dict(CustomerOutputSerializer(customer).data)


@export_section("events")
def _export_events(customer: Customer) -> list[dict]:
    from ..api.serializers import ExportEventSerializer

    rows = (
        Event.objects.filter(customer=customer)
        .order_by("occurred_at", "id")
        .values("event_id", "type", "amount", "quantity", "platform", "occurred_at", "received_at", "properties",
                item_external_id=F("item__external_id"))
    )
    return [dict(ExportEventSerializer({**r, "item": r.pop("item_external_id")}).data) for r in rows.iterator(chunk_size=2000)]


@export_section("feedback")
def _export_feedback(customer: Customer) -> list[dict]:
    from ..api.serializers import FeedbackOutputSerializer

    rows = Feedback.objects.filter(customer=customer).select_related("customer", "item").order_by("occurred_at", "id")
    return [dict(d) for d in FeedbackOutputSerializer(rows, many=True).data]


# --- Erasure --------------------------------------------------------------------------------------


@erase_step("profile")
def _erase_profile(*, customer: Customer, now: datetime, by=None) -> None:
    customer.email, customer.name, customer.phone, customer.attributes = "", "", "", {}
    if customer.marketing_consent:
        customer.marketing_consent = False
        customer.consent_at = now
        customer.consent_source = ConsentSource.STAFF if by is not None else ConsentSource.API


@erase_step("feedback")
def _erase_feedback_text(*, customer: Customer, now: datetime, by=None) -> None:
    Feedback.objects.filter(customer=customer).exclude(text="").update(text="", updated_at=now)


@erase_step("events")
def _erase_event_properties(*, customer: Customer, now: datetime, by=None) -> None:
    # Properties are free-form (search terms, addresses, notes): none of it is kept.
    Event.objects.filter(customer=customer).exclude(properties={}).update(properties={})


_PROFILE_STATE = ("email", "name", "phone", "attributes", "marketing_consent", "consent_at", "consent_source", "erased_at")


def customer_erase(*, customer: Customer, by=None, now: datetime | None = None) -> Customer:
    """Remove the personal data of `customer` and mark them erased; returns the erased customer.

    Idempotent: erasing again scrubs anything that arrived since (e.g. event properties) and
    keeps the first erased_at. Locks the customer row for the whole erasure, so no write of
    a concurrent upsert or feedback can slip in between the steps. `by` is the staff user
    who asked (None: the storefront API).
    """
    now = now or timezone.now()
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        before = {name: getattr(locked, name) for name in _PROFILE_STATE}
        for step in _ERASE_STEPS.values():
            step(customer=locked, now=now, by=by)
        if locked.erased_at is None:
            locked.erased_at = now
        changed = [name for name in _PROFILE_STATE if getattr(locked, name) != before[name]]
        if changed:
            locked.save(update_fields=[*changed, "updated_at"])
    logger.info("customer_erased customer_id=%s by=%s first_time=%s", locked.pk, getattr(by, "pk", None),
                before["erased_at"] is None)
    if customer is not locked:
        customer.refresh_from_db()
    return locked
