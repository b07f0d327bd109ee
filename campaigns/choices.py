from django.db import models
from django.utils.translation import gettext_lazy as _


class CampaignKind(models.TextChoices):
    EMAIL = "email", _("E-mail")
    COUPON = "coupon", _("Coupon")
    EMAIL_COUPON = "email_coupon", _("E-mail with coupon")


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SCHEDULED = "scheduled", _("Scheduled")
    SENDING = "sending", _("Sending")
    PAUSED = "paused", _("Paused")
    SENT = "sent", _("Sent")
    CANCELLED = "cancelled", _("Cancelled")


class TriggerKind(models.TextChoices):
    MANUAL = "manual", _("Started by hand")
    ONCE = "once", _("Scheduled once")
    RECURRING = "recurring", _("Recurring")
    TIER_ENTRY = "tier_entry", _("On entering a tier")


class MessageStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending (claimed by a worker)")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    HOLDOUT = "holdout", _("Holdout (gets nothing)")
    SKIPPED = "skipped", _("Skipped")
    CANCELLED = "cancelled", _("Cancelled")


class SkipReason(models.TextChoices):
    NONE = "", _("—")
    ERASED = "erased", _("Erased")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
    NO_CONSENT = "no_consent", _("No marketing consent")
    NO_EMAIL = "no_email", _("No e-mail address")
    FREQUENCY_CAP = "frequency_cap", _("Over the frequency cap")


class DiscountKind(models.TextChoices):
    PERCENT = "percent", _("Percent")
    FIXED = "fixed", _("Fixed amount")


class WinnerMetric(models.TextChoices):
    OPEN_RATE = "open_rate", _("Open rate")
    CLICK_RATE = "click_rate", _("Click rate")
    CONVERSION_RATE = "conversion_rate", _("Conversion rate")
    REVENUE = "revenue_per_message", _("Revenue per message")


class CouponInvalidReason(models.TextChoices):
    UNKNOWN = "unknown", _("Unknown code")
    EXPIRED = "expired", _("Expired")
    USED = "used", _("Already used")
    WRONG_CUSTOMER = "wrong_customer", _("Issued to another customer")
    BASKET_TOO_SMALL = "basket_too_small", _("Basket below the minimum")
    NOT_YET_VALID = "not_yet_valid", _("Not valid yet")
