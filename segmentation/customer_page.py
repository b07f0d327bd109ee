"""The segmentation sections of the staff customer page (registered in apps.py; see
accounts/customer_page.py): tier badges with VIP status and service level at the top, tiers with
"why", pins and history in the main column, the features behind the tiers in the sidebar."""
from __future__ import annotations

from accounts.customer_page import CustomerListFilter, CustomerSection, register_customer_list_filter, register_customer_section

from . import views_support as support
from .forms import TierOverrideForm

VIEW_PERMISSION = "segmentation.view_dimension"


def _data(request, customer) -> dict | None:
    """Computed once per request for the three slots."""
    if not request.user.has_perm(VIEW_PERMISSION):
        return None
    cache = request.__dict__.setdefault("_segmentation_customer", {})
    if customer.pk not in cache:
        cache[customer.pk] = support.customer_segmentation(customer=customer)
    return cache[customer.pk]


def badges_context(request, customer) -> dict | None:
    return _data(request, customer)


def tiers_context(request, customer) -> dict | None:
    data = _data(request, customer)
    if data is None:
        return None
    user = request.user
    can_pin = user.has_perm("segmentation.add_tieroverride")
    return {**data, "customer": customer, "can_pin": can_pin, "can_revoke": user.has_perm("segmentation.change_tieroverride"),
            "can_view_tier": user.has_perm("segmentation.view_tier"),
            "pin_form": TierOverrideForm() if can_pin else None}


def features_context(request, customer) -> dict | None:
    data = _data(request, customer)
    if data is None or not request.user.has_perm("segmentation.view_customerfeatures"):
        return None
    return data


def register() -> None:
    register_customer_section(CustomerSection("segmentation.badges", "badges", "segmentation/customer/badges.html",
                                              badges_context, order=10))
    register_customer_section(CustomerSection("segmentation.tiers", "top", "segmentation/customer/tiers.html",
                                              tiers_context, order=10))
    register_customer_section(CustomerSection("segmentation.features", "sidebar", "segmentation/customer/features.html",
                                              features_context, order=10))
    register_customer_list_filter(CustomerListFilter("tier", support.customer_filter_tier))
    register_customer_list_filter(CustomerListFilter("segment", support.customer_filter_segment))
