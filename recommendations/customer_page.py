"""The staff customer page's "Recommendations" section (registered in apps.py; see
accounts/customer_page.py): what the storefront would show the customer now, with reasons."""
from __future__ import annotations

from accounts.customer_page import CustomerSection, register_customer_section

VIEW_PERMISSION = "recommendations.view_item"  # Operations, Analyst and Customer service hold it


def recommendations_context(request, customer) -> dict | None:
    if not request.user.has_perm(VIEW_PERMISSION):
        return None
    from .serving import customer_recommendations_safe

    data = None
    error = ""
    try:
        data = customer_recommendations_safe(external_id=customer.external_id, limit=8)
    except Exception as exc:  # the customer page must render even when serving fails; say so
        error = str(exc)[:300]
    return {"data": data, "error": error, "can_view_models": request.user.has_perm("recommendations.view_trainedmodel")}


def register() -> None:
    register_customer_section(CustomerSection("recommendations.current", "extra", "recommendations/customer/section.html",
                                              recommendations_context, order=30))
