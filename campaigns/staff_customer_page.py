"""The campaigns section of the staff customer page (registered from apps.py; see
accounts/customer_page.py): the customer's coupons and the campaign messages they received, and
the goodwill coupon form for users with campaigns.issue_goodwill_coupon."""
from __future__ import annotations

from django.conf import settings

from accounts.customer_page import CustomerSection, register_customer_section

from .coupons import customer_coupons
from .models import Message
from .staff_forms import GoodwillCouponForm

MESSAGES_SHOWN = 20
COUPONS_SHOWN = 20


def coupons_context(request, customer) -> dict | None:
    user = request.user
    can_coupons, can_messages = user.has_perm("campaigns.view_coupon"), user.has_perm("campaigns.view_message")
    can_goodwill = user.has_perm("campaigns.issue_goodwill_coupon")
    if not (can_coupons or can_messages or can_goodwill):
        return None
    coupons = list(customer_coupons(customer=customer).select_related("issued_by")[:COUPONS_SHOWN]) if can_coupons else []
    sent = (list(Message.objects.filter(customer=customer).select_related("campaign", "variant")
                 .order_by("-created_at", "-id")[:MESSAGES_SHOWN]) if can_messages else [])
    return {"customer": customer, "coupons": coupons, "messages": sent, "can_coupons": can_coupons,
            "can_messages": can_messages, "can_view_campaigns": user.has_perm("campaigns.view_campaign"),
            "goodwill_form": GoodwillCouponForm() if can_goodwill else None,
            "goodwill_max_percent": settings.CAMPAIGN_GOODWILL_MAX_PERCENT,
            "goodwill_max_amount": settings.CAMPAIGN_GOODWILL_MAX_AMOUNT}


def register() -> None:
    register_customer_section(CustomerSection("campaigns.coupons", "extra", "campaigns/customer/coupons.html",
                                              coupons_context, order=50))
