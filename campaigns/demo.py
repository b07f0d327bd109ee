"""The demo's three ready campaigns and one run with results (called by demo_setup)."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import Event
from segmentation.models import Tier

from .choices import CampaignKind, CampaignStatus, DiscountKind, TriggerKind
from .models import Campaign, Message
from .services import campaign_create, campaign_start

logger = logging.getLogger(__name__)

WELCOME = "Welcome to the shop (New)"
REACTIVATION = "We miss you: 15% off (Silent)"
VIP = "Thank you, VIP"

_FOOTER_TEXT = "\n\nDon't want these e-mails? Unsubscribe: {{ unsubscribe_url }}\n"
_FOOTER_HTML = '<p style="font-size:12px;color:#777"><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
_RECS_TEXT = ("{% if recommendations %}\nPicked for you:\n{% for r in recommendations %}- {{ r.title }} {{ r.url }}\n"
              "{% endfor %}{% endif %}")
_RECS_HTML = ("{% if recommendations %}<h3>Picked for you</h3><ul>{% for r in recommendations %}"
              '<li><a href="{{ r.url }}">{{ r.title }}</a></li>{% endfor %}</ul>{% endif %}')

DEMO_CAMPAIGNS = [
    {
        "name": WELCOME, "tier": ("behaviour", "new"), "kind": CampaignKind.EMAIL, "holdout_percent": Decimal("10"),
        "subject": "Welcome{% if first_name %}, {{ first_name }}{% endif %}!",
        "text_body": "Hi {{ first_name|default:'there' }},\n\nthanks for joining us. Here is what others like:"
                     + _RECS_TEXT + _FOOTER_TEXT,
        "html_body": "<html><body><p>Hi {{ first_name|default:'there' }},</p><p>thanks for joining us.</p>"
                     + _RECS_HTML + _FOOTER_HTML + "</body></html>",
    },
    {
        "name": REACTIVATION, "tier": ("behaviour", "silent"), "kind": CampaignKind.EMAIL_COUPON,
        "holdout_percent": Decimal("20"), "coupon_discount": DiscountKind.PERCENT, "coupon_value": Decimal("15"),
        "coupon_min_basket": Decimal("20"), "coupon_valid_days": 14,
        "subject": "{{ first_name|default:'Hello' }}, 15% off your next order",
        "text_body": "We have missed you. Use {{ coupon.code }} for {{ coupon.display }} off orders from "
                     "{{ coupon.min_basket }} until {{ coupon.expires_on }}." + _RECS_TEXT + _FOOTER_TEXT,
        "html_body": "<html><body><p>We have missed you.</p><p>Use <strong>{{ coupon.code }}</strong> for "
                     "{{ coupon.display }} off orders from {{ coupon.min_basket }} until {{ coupon.expires_on }}.</p>"
                     + _RECS_HTML + _FOOTER_HTML + "</body></html>",
    },
    {
        "name": VIP, "tier": ("value", "high"), "kind": CampaignKind.EMAIL, "holdout_percent": Decimal("10"),
        "subject": "Thank you, {{ first_name|default:'valued customer' }}",
        "text_body": "You are one of our best customers ({{ tier_names }}). Thank you!" + _RECS_TEXT + _FOOTER_TEXT,
        "html_body": "<html><body><p>You are one of our best customers ({{ tier_names }}). Thank you!</p>"
                     + _RECS_HTML + _FOOTER_HTML + "</body></html>",
    },
]


def campaigns_install_demo(*, run: bool = True, backdate: bool = True, by=None) -> dict:
    """Create the three demo campaigns (idempotent, found by name) and run the Silent
    reactivation once. Returns {"created": [...], "run": campaign id or None}.

    With `backdate` (demo data is history), the run is dated so that the attribution window
    ends at the last event of the data: its results then attribute the purchases that the
    data holds after it. Only the demo does this; real campaigns are dated when they happen.
    """
    created = []
    with transaction.atomic():
        for spec in DEMO_CAMPAIGNS:
            if Campaign.objects.filter(name=spec["name"]).exists():
                continue
            dim, slug = spec["tier"]
            tier = Tier.objects.filter(dimension__slug=dim, slug=slug).first()
            if tier is None:
                continue
            fields = {k: v for k, v in spec.items() if k != "tier"}
            campaign_create(by=by, tiers=[tier], trigger=TriggerKind.MANUAL, description="Demo campaign", **fields)
            created.append(spec["name"])
    ran = None
    if run:
        campaign = Campaign.objects.filter(name=REACTIVATION).first()
        if campaign is not None and campaign.status == CampaignStatus.DRAFT:
            campaign_start(campaign=campaign)
            ran = campaign.pk
            if backdate:
                _backdate(campaign)
    logger.info("campaigns_demo_installed created=%s run=%s", created, ran)
    return {"created": created, "run": ran}


def _backdate(campaign: Campaign) -> None:
    last = Event.objects.aggregate(m=Max("occurred_at"))["m"]
    if last is None:
        return
    at: datetime = min(last, timezone.now()) - timedelta(days=settings.CAMPAIGN_ATTRIBUTION_DAYS)
    Message.objects.filter(campaign=campaign).update(created_at=at)
    Message.objects.filter(campaign=campaign, sent_at__isnull=False).update(sent_at=at)
    Campaign.objects.filter(pk=campaign.pk).update(started_at=at, finished_at=at)
