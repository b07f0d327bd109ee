"""Reads behind the staff pages: customer search, a customer's history, the overview figures,
and the masking of personal data for staff without `accounts.view_customer_pii`."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import F, Q, QuerySet

from .models import Customer, DataImport, Event, Feedback

# Columns the customer list shows; .only() keeps JSON attributes out of list pages.
CUSTOMER_LIST_FIELDS = (
    "id", "external_id", "email", "name", "phone", "first_seen_at", "last_seen_at",
    "marketing_consent", "unsubscribed_at", "erased_at",
)

# sort key -> ORDER BY. Never-seen customers go last either way; pk breaks ties so pages are stable.
CUSTOMER_SORTS = {
    "last_seen": (F("last_seen_at").asc(nulls_last=True), "id"),
    "-last_seen": (F("last_seen_at").desc(nulls_last=True), "-id"),
    "first_seen": (F("first_seen_at").asc(nulls_last=True), "id"),
    "-first_seen": (F("first_seen_at").desc(nulls_last=True), "-id"),
    "name": ("name", "id"),
    "-name": ("-name", "-id"),
}

_NAME_CONTAINS_MIN = 3


def customer_search(*, query: str) -> QuerySet[Customer]:
    """Customers matching `query`: exact e-mail, phone or external id, else a name match.

    The exact lookups hit indexes (unique external_id, customer_email_idx, customer_phone_idx),
    so an agent who pastes an e-mail or an order's customer id gets an answer at once on a
    million customers. Only when nothing matches exactly do we fall back to the name: a prefix
    match for short input, a substring match from three characters on.
    """
    query = (query or "").strip()
    qs = Customer.objects.all()
    if not query:
        return qs
    exact = Q(external_id=query) | Q(email=query) | Q(phone=query)
    if "@" in query and query.lower() != query:
        exact |= Q(email=query.lower())
    compact_phone = re.sub(r"[\s\-().]", "", query)
    if compact_phone != query and re.fullmatch(r"\+?\d{4,}", compact_phone):
        exact |= Q(phone=compact_phone)
    exact_qs = qs.filter(exact)
    if exact_qs.exists():
        return exact_qs
    if len(query) >= _NAME_CONTAINS_MIN:
        return qs.filter(name__icontains=query)
    return qs.filter(name__istartswith=query)


def customer_list(*, query: str = "", sort: str = "-last_seen", filters: list[Q] | None = None) -> QuerySet[Customer]:
    """The staff customer list: search, sort, filters from other apps (tier, segment; see
    accounts/customer_page.py), and only the columns the list shows."""
    order = CUSTOMER_SORTS.get(sort, CUSTOMER_SORTS["-last_seen"])
    qs = customer_search(query=query)
    for q in filters or []:
        qs = qs.filter(q)
    return qs.only(*CUSTOMER_LIST_FIELDS).order_by(*order)


def customer_events(*, customer: Customer) -> QuerySet[Event]:
    """A customer's events, newest first, with their items (one query per page, no N+1).

    Walks event_customer_time_idx (customer, occurred_at) backwards.
    """
    return (
        Event.objects.filter(customer=customer)
        .select_related("item")
        .only("id", "event_id", "type", "amount", "quantity", "platform", "occurred_at", "properties",
              "item__id", "item__title", "item__external_id", "item__category")
        .order_by("-occurred_at", "-id")
    )


def customer_feedback(*, customer: Customer) -> QuerySet[Feedback]:
    return (
        Feedback.objects.filter(customer=customer)
        .select_related("item")
        .only("id", "text", "rating", "language", "sentiment_score", "sentiment_label", "occurred_at",
              "customer_id", "item__id", "item__title", "item__external_id")
        .order_by("-occurred_at", "-id")
    )


@dataclass(frozen=True)
class OverviewFigures:
    customers: int
    events_24h: int
    events_7d: int
    latest_imports: list[DataImport]
    data_end: datetime | None
    # Imported history (a 1997 purchase log, say) has no events "this week": these figures look at
    # the last 7 days of the data itself. None when the data reaches into the last 7 days.
    events_data_7d: int | None = None

    @property
    def empty(self) -> bool:
        return self.customers == 0


def overview_figures(*, now: datetime, imports: int = 5) -> OverviewFigures:
    """Figures for the staff overview page. Four to five cheap queries.

    Event windows filter on occurred_at, which the BRIN index (PostgreSQL) serves; we do not
    count the whole events table, which may hold 10^8 rows.
    """
    recent = Event.objects.filter(occurred_at__gt=now - timedelta(days=7), occurred_at__lte=now)
    latest = list(DataImport.objects.order_by("-started_at", "-id")[:imports])
    data_end = max((i.data_end for i in latest if i.data_end), default=None)
    events_data_7d = None
    if data_end is not None and data_end < now - timedelta(days=7):
        events_data_7d = Event.objects.filter(occurred_at__gt=data_end - timedelta(days=7), occurred_at__lte=data_end).count()
    return OverviewFigures(
        customers=Customer.objects.count(),
        events_24h=recent.filter(occurred_at__gt=now - timedelta(hours=24)).count(),
        events_7d=recent.count(),
        latest_imports=latest,
        data_end=data_end,
        events_data_7d=events_data_7d,
    )


# --- Masking -------------------------------------------------------------------------------
MASK = "•"


def mask_email(value: str) -> str:
    """alice.smith@example.com -> a•••@e•••.com (fixed-width masks: the length is not shown either)"""
    if not value:
        return ""
    local, _, domain = value.partition("@")
    if not domain:
        return _mask_word(local)
    host, dot, tld = domain.rpartition(".")
    masked_domain = f"{_mask_word(host)}{dot}{tld}" if dot else _mask_word(domain)
    return f"{_mask_word(local)}@{masked_domain}"


def mask_phone(value: str) -> str:
    """+1 555 123 4567 -> •••4567: only the last two to four digits stay readable."""
    digits = re.sub(r"\D", "", value or "")
    if not digits:
        return ""
    keep = 4 if len(digits) >= 8 else 2 if len(digits) >= 4 else 0
    return MASK * 3 + digits[len(digits) - keep:]


def mask_name(value: str) -> str:
    """Alice Smith -> A••• S•••; 王小明 -> 王•••"""
    return " ".join(_mask_word(part) for part in (value or "").split())


def _mask_word(word: str) -> str:
    if not word:
        return ""
    return word[0] + MASK * 3


@dataclass(frozen=True)
class CustomerContact:
    """What a staff member may see of a customer's e-mail, name and phone."""

    email: str
    name: str
    phone: str
    masked: bool

    @property
    def display_name(self) -> str:
        return self.name or self.email


def customer_contact(customer: Customer, *, unmasked: bool) -> CustomerContact:
    if unmasked:
        return CustomerContact(email=customer.email, name=customer.name, phone=customer.phone, masked=False)
    return CustomerContact(
        email=mask_email(customer.email), name=mask_name(customer.name), phone=mask_phone(customer.phone), masked=True
    )
