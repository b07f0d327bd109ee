"""Campaigns, their A/B variants, messages (one per campaign and customer: the idempotency key
of sending), coupons and coupon redemptions.

Workflows live in campaigns/services.py (lifecycle), sending.py (delivery), coupons.py,
tracking.py and results.py; nothing here loops over customers.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.core.models import BaseModel
from crm.core.money import money_field

from .choices import (CampaignKind, CampaignStatus, DiscountKind, MessageStatus, SkipReason, TriggerKind,
                      WinnerMetric)


class Campaign(BaseModel):
    """What to send (kind, content, coupon policy), to whom (tiers and/or a segment, minus the
    holdout and the exclusions), and when (trigger). Status changes go through services."""

    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True, default="")
    kind = models.CharField(_("kind"), max_length=16, choices=CampaignKind.choices, default=CampaignKind.EMAIL)
    status = models.CharField(_("status"), max_length=12, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)

    # Audience: customers in any of `tiers`, and (when set) matching `segment`.
    tiers = models.ManyToManyField("segmentation.Tier", blank=True, related_name="campaigns", verbose_name=_("tiers"))
    segment = models.ForeignKey("segmentation.Segment", on_delete=models.PROTECT, null=True, blank=True,
                                related_name="campaigns", verbose_name=_("segment"))
    holdout_percent = models.DecimalField(_("holdout %"), max_digits=5, decimal_places=2, default=10)

    # Trigger
    trigger = models.CharField(_("trigger"), max_length=12, choices=TriggerKind.choices, default=TriggerKind.MANUAL)
    send_at = models.DateTimeField(_("send at"), null=True, blank=True)
    cron = models.CharField(_("recurring schedule (cron: minute hour day month weekday)"), max_length=100,
                            blank=True, default="")
    periodic_task = models.ForeignKey("django_celery_beat.PeriodicTask", on_delete=models.SET_NULL, null=True,
                                      blank=True, related_name="+")
    entry_tier = models.ForeignKey("segmentation.Tier", on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="entry_campaigns", verbose_name=_("on entering tier"))
    allow_reentry = models.BooleanField(_("send again when the customer re-enters"), default=False)
    parent = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="occurrences",
                               help_text=_("The recurring campaign this run was made from."))
    occurrence_key = models.CharField(max_length=40, blank=True, default="")

    # Content (the default variant)
    from_email = models.CharField(_("from"), max_length=254, blank=True, default="")
    subject = models.CharField(_("subject"), max_length=300, blank=True, default="")
    html_body = models.TextField(_("HTML body"), blank=True, default="")
    text_body = models.TextField(_("text body"), blank=True, default="")
    winner_metric = models.CharField(_("winner metric"), max_length=24, choices=WinnerMetric.choices,
                                     default=WinnerMetric.CONVERSION_RATE)
    winner = models.ForeignKey("Variant", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    # Coupon policy
    coupon_discount = models.CharField(_("discount kind"), max_length=8, choices=DiscountKind.choices,
                                       default=DiscountKind.PERCENT)
    coupon_value = money_field(verbose_name=_("discount value"), default=0)
    coupon_min_basket = money_field(verbose_name=_("minimum basket"), default=0)
    coupon_valid_days = models.PositiveIntegerField(_("valid for (days)"), default=30)
    coupon_uses = models.PositiveIntegerField(_("uses per code"), default=1)

    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at"]
        permissions = [("issue_goodwill_coupon", _("Can issue goodwill coupons to customers"))]
        constraints = [
            models.CheckConstraint(condition=Q(holdout_percent__gte=0, holdout_percent__lte=90),
                                   name="campaign_holdout_0_90"),
            models.CheckConstraint(condition=Q(coupon_value__gte=0) & Q(coupon_min_basket__gte=0),
                                   name="campaign_coupon_money_gte_0"),
            models.CheckConstraint(condition=Q(coupon_uses__gte=1), name="campaign_coupon_uses_gte_1"),
            # One run per recurring campaign and occurrence: a beat tick delivered twice makes one run.
            models.UniqueConstraint(fields=["parent", "occurrence_key"], condition=Q(parent__isnull=False),
                                    name="campaign_one_run_per_occurrence"),
        ]
        indexes = [models.Index(fields=["status", "trigger"], name="campaign_status_trigger_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def sends_email(self) -> bool:
        return self.kind in (CampaignKind.EMAIL, CampaignKind.EMAIL_COUPON)

    @property
    def gives_coupon(self) -> bool:
        return self.kind in (CampaignKind.COUPON, CampaignKind.EMAIL_COUPON)


class Variant(BaseModel):
    """An A/B variant: its share of the treated audience and the parts of the content it changes
    (an empty field falls back to the campaign's)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(_("name"), max_length=40)
    weight = models.PositiveSmallIntegerField(_("split %"), default=50)
    subject = models.CharField(_("subject"), max_length=300, blank=True, default="")
    html_body = models.TextField(_("HTML body"), blank=True, default="")
    text_body = models.TextField(_("text body"), blank=True, default="")

    class Meta:
        verbose_name = _("variant")
        verbose_name_plural = _("variants")
        ordering = ["campaign", "id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "name"], name="variant_unique_name"),
            models.CheckConstraint(condition=Q(weight__gte=1, weight__lte=100), name="variant_weight_1_100"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.name}"


class Message(models.Model):
    """One campaign's message to one customer: the idempotency key of sending.

    Written set-based when the campaign starts (every audience member, including the holdout
    and the skipped with their reason). A send task claims queued rows (status SENDING with a
    claim token), and marks each SENT right after the SMTP server accepted it; see sending.py
    for the crash-safety argument. `trigger_key` is empty except for tier-entry campaigns that
    allow re-entry (one message per entry).
    """

    id = models.BigAutoField(primary_key=True)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="messages")
    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="campaign_messages")
    trigger_key = models.CharField(max_length=40, blank=True, default="")
    variant = models.ForeignKey(Variant, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages")
    tier = models.ForeignKey("segmentation.Tier", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                             help_text=_("The tier the customer was targeted in (for per-tier results)."))
    status = models.CharField(_("status"), max_length=10, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    skip_reason = models.CharField(_("skip reason"), max_length=16, choices=SkipReason.choices, blank=True, default="")
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    claim_token = models.CharField(max_length=32, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set when a crashed worker's claim was taken back while this message may have been in the
    # SMTP DATA phase: the resend reuses the Message-ID, so a duplicate is detectable.
    uncertain = models.BooleanField(default=False)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True, default="")
    opened_at = models.DateTimeField(_("first opened"), null=True, blank=True)
    clicked_at = models.DateTimeField(_("first clicked"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(_("unsubscribed"), null=True, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "customer", "trigger_key"], name="message_once_per_customer"),
        ]
        indexes = [
            # Claiming: queued rows of a campaign in primary-key order.
            models.Index(fields=["campaign", "status", "id"], name="message_claim_idx"),
            # Frequency cap: a customer's recent sends.
            models.Index(fields=["customer", "sent_at"], name="message_customer_sent_idx",
                         condition=Q(sent_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} -> {self.customer_id} ({self.status})"


class Coupon(BaseModel):
    """A discount code for one customer. Campaign coupons are unique per (campaign, customer);
    goodwill coupons carry no campaign and name the agent who issued them."""

    code = models.CharField(_("code"), max_length=24, unique=True)
    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="coupons")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, null=True, blank=True, related_name="coupons")
    discount = models.CharField(_("discount kind"), max_length=8, choices=DiscountKind.choices)
    value = money_field(verbose_name=_("value"))
    min_basket = money_field(verbose_name=_("minimum basket"), default=0)
    currency = models.CharField(_("currency"), max_length=3, default="USD")
    valid_from = models.DateTimeField(_("valid from"))
    expires_at = models.DateTimeField(_("expires at"))
    max_uses = models.PositiveIntegerField(_("uses"), default=1)
    uses = models.PositiveIntegerField(_("used"), default=0)
    redeemed_at = models.DateTimeField(_("last redeemed at"), null=True, blank=True)
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+")
    reason = models.TextField(_("reason"), blank=True, default="")

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "customer"], condition=Q(campaign__isnull=False),
                                    name="coupon_one_per_campaign_customer"),
            models.CheckConstraint(condition=Q(uses__lte=models.F("max_uses")), name="coupon_uses_lte_max"),
            models.CheckConstraint(condition=Q(value__gte=0) & Q(min_basket__gte=0), name="coupon_money_gte_0"),
            models.CheckConstraint(condition=~Q(discount="percent") | Q(value__lte=100), name="coupon_percent_lte_100"),
        ]
        indexes = [models.Index(fields=["customer", "expires_at"], name="coupon_customer_idx")]

    def __str__(self) -> str:
        return self.code


class CouponRedemption(models.Model):
    """One use of a coupon by an order. Unique per (coupon, order id): a replay finds this row."""

    id = models.BigAutoField(primary_key=True)
    coupon = models.ForeignKey(Coupon, on_delete=models.CASCADE, related_name="redemptions")
    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="coupon_redemptions")
    order_id = models.CharField(_("order id"), max_length=128)
    amount = money_field(verbose_name=_("order amount"))
    discount_amount = money_field(verbose_name=_("discount"))
    redeemed_at = models.DateTimeField(_("redeemed at"))

    class Meta:
        verbose_name = _("coupon redemption")
        verbose_name_plural = _("coupon redemptions")
        constraints = [
            models.UniqueConstraint(fields=["coupon", "order_id"], name="redemption_once_per_order"),
            models.CheckConstraint(condition=Q(amount__gte=0) & Q(discount_amount__gte=0),
                                   name="redemption_money_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.coupon_id} by order {self.order_id}"
