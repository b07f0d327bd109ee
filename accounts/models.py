"""Customers, their behaviour log, their feedback, storefront API keys and data imports."""
from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.core.models import BaseModel
from crm.core.money import money_field

from .choices import ApiScope, ConsentSource, EventType, ImportFormat, JobStatus, Platform, SentimentLabel


class Customer(BaseModel):
    """A storefront's customer, known by the storefront's own id (external_id)."""

    # Unique through Meta.constraints, not unique=True: on PostgreSQL unique=True on a CharField
    # adds a second, LIKE-pattern index that nothing here uses and every insert pays for.
    external_id = models.CharField(_("external id"), max_length=128)
    email = models.EmailField(_("e-mail"), max_length=254, blank=True, default="")
    name = models.CharField(_("name"), max_length=200, blank=True, default="")
    phone = models.CharField(_("phone"), max_length=40, blank=True, default="")
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    signup_at = models.DateTimeField(_("signed up at"), null=True, blank=True)
    first_seen_at = models.DateTimeField(_("first seen at"), null=True, blank=True)
    last_seen_at = models.DateTimeField(_("last seen at"), null=True, blank=True)
    source_platform = models.CharField(_("source platform"), max_length=16, choices=Platform.choices, blank=True, default="")
    marketing_consent = models.BooleanField(_("marketing consent"), default=False)
    consent_at = models.DateTimeField(_("consent changed at"), null=True, blank=True)
    consent_source = models.CharField(_("consent source"), max_length=16, choices=ConsentSource.choices, blank=True, default="")
    unsubscribed_at = models.DateTimeField(_("unsubscribed at"), null=True, blank=True)
    erased_at = models.DateTimeField(_("erased at"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        permissions = [("view_customer_pii", _("Can see customers' personal data unmasked"))]
        indexes = [
            # Customer-service search: exact e-mail / phone lookups, and the activity scans of segmentation.
            models.Index(fields=["email"], name="customer_email_idx"),
            models.Index(fields=["phone"], name="customer_phone_idx"),
        ]
        # No index on first_seen_at/last_seen_at: ingest moves them for every active customer,
        # and with no index on them PostgreSQL updates the row in place (HOT, see migration 0004).
        constraints = [
            models.UniqueConstraint(fields=["external_id"], name="customer_external_id_uniq"),
            models.CheckConstraint(condition=~Q(external_id=""), name="customer_external_id_not_empty"),
            models.CheckConstraint(
                condition=Q(first_seen_at__isnull=True) | Q(last_seen_at__isnull=True) | Q(first_seen_at__lte=models.F("last_seen_at")),
                name="customer_seen_order",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.external_id

    @property
    def is_erased(self) -> bool:
        return self.erased_at is not None

    @property
    def can_be_contacted(self) -> bool:
        return self.marketing_consent and self.unsubscribed_at is None and self.erased_at is None


class Event(models.Model):
    """Append-only behaviour log. `event_id` is the client's dedup key.

    No updated_at and no created_at index: rows never change, and on PostgreSQL the table is
    meant to reach 10^8 rows, so every index costs ingest throughput. The indexes are those
    the queries need: per-customer time scans (customer, occurred_at), per-item scans for
    recommendations, and a BRIN index on occurred_at (PostgreSQL only, see migration 0002)
    for time-window scans over the whole table.
    """

    id = models.BigAutoField(primary_key=True)
    event_id = models.CharField(_("event id"), max_length=64)  # unique: see Meta.constraints
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events", db_index=False)
    type = models.CharField(_("type"), max_length=20, choices=EventType.choices)
    item = models.ForeignKey("recommendations.Item", on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="events", db_index=False)
    amount = money_field(verbose_name=_("amount"), null=True, blank=True)
    quantity = models.IntegerField(_("quantity"), null=True, blank=True)
    platform = models.CharField(_("platform"), max_length=16, choices=Platform.choices, blank=True, default="")
    occurred_at = models.DateTimeField(_("occurred at"))
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    properties = models.JSONField(_("properties"), default=dict, blank=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        indexes = [
            # Covering (PostgreSQL): a customer's events with type, amount and item come from the
            # index alone, for the per-customer aggregation of incremental tier recomputes and the
            # recommendations' context query (each customer's events are spread over the table).
            models.Index(fields=["customer", "occurred_at"], name="event_customer_time_idx",
                         include=["type", "amount", "item"]),
            models.Index(fields=["item", "occurred_at"], name="event_item_time_idx", condition=Q(item__isnull=False)),
        ]
        constraints = [
            models.UniqueConstraint(fields=["event_id"], name="event_event_id_uniq"),
            models.CheckConstraint(condition=~Q(event_id=""), name="event_id_not_empty"),
            # Money: only refunds carry a negative amount.
            models.CheckConstraint(
                condition=Q(amount__isnull=True) | Q(amount__gte=0) | Q(type=EventType.REFUND),
                name="event_amount_negative_only_refund",
            ),
            models.CheckConstraint(condition=Q(quantity__isnull=True) | Q(quantity__gte=0), name="event_quantity_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class Feedback(BaseModel):
    """What a customer told us, with a sentiment score in [-1, 1] computed when stored."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="feedback")
    item = models.ForeignKey("recommendations.Item", on_delete=models.SET_NULL, null=True, blank=True, related_name="feedback")
    text = models.TextField(_("text"), blank=True, default="")
    rating = models.PositiveSmallIntegerField(_("rating"), null=True, blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True, default="")
    sentiment_score = models.FloatField(_("sentiment score"), null=True, blank=True)
    sentiment_label = models.CharField(_("sentiment"), max_length=10, choices=SentimentLabel.choices, blank=True, default="")
    occurred_at = models.DateTimeField(_("given at"), default=timezone.now)

    class Meta:
        verbose_name = _("feedback")
        verbose_name_plural = _("feedback")
        indexes = [models.Index(fields=["customer", "occurred_at"], name="feedback_customer_time_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5), name="feedback_rating_1_5"),
            models.CheckConstraint(
                condition=Q(sentiment_score__isnull=True) | Q(sentiment_score__gte=-1, sentiment_score__lte=1),
                name="feedback_sentiment_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.text[:40]}"


class ApiKey(BaseModel):
    """A storefront's key. Only a SHA-256 of the secret is stored; `prefix` finds the row."""

    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=12, unique=True, editable=False)
    hashed_key = models.CharField(_("hashed key"), max_length=64, editable=False)
    scopes = models.JSONField(_("scopes"), default=list)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    created_by = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])

    ALL_SCOPES = tuple(ApiScope.values)


class DataImport(BaseModel):
    """One run of import_transactions (or the demo generator): counts, bad rows, data time range.

    `data_start`/`data_end` record the time range of the imported history so that later
    computations (tiers, features) can run as of the data's own last day.
    """

    format = models.CharField(_("format"), max_length=16, choices=ImportFormat.choices)
    source = models.CharField(_("source"), max_length=500)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True, default="")
    status = models.CharField(_("status"), max_length=16, choices=JobStatus.choices, default=JobStatus.RUNNING)
    rows_total = models.PositiveIntegerField(_("rows read"), default=0)
    rows_bad = models.PositiveIntegerField(_("bad rows"), default=0)
    customers_created = models.PositiveIntegerField(_("customers created"), default=0)
    items_created = models.PositiveIntegerField(_("items created"), default=0)
    events_created = models.PositiveIntegerField(_("events created"), default=0)
    events_duplicate = models.PositiveIntegerField(_("duplicate events"), default=0)
    errors = models.JSONField(_("bad rows (first 1,000)"), default=list, blank=True)
    data_start = models.DateTimeField(_("data starts"), null=True, blank=True)
    data_end = models.DateTimeField(_("data ends"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True, default="")

    class Meta:
        verbose_name = _("data import")
        verbose_name_plural = _("data imports")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.format} {self.source} ({self.status})"
