"""Template tags of the staff UI: the top navigation, sortable column headers, badges.

Navigation: every area of the staff UI is one `NavEntry` in NAV below. A later app adds its
area by appending an entry (its URL name and the permission that opens it); an entry is shown
only when its URL exists and the user holds its permission, so the bar never links to a page
that is not there or would answer 403.
"""
from __future__ import annotations

from dataclasses import dataclass

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

register = template.Library()


@dataclass(frozen=True)
class NavEntry:
    label: str
    url_name: str
    permission: str | None = None  # None: every staff member
    icon: str = ""


NAV: list[NavEntry] = [
    NavEntry(_("Overview"), "home"),
    NavEntry(_("Customers"), "accounts:customer-list", "accounts.view_customer"),
    NavEntry(_("Segmentation"), "segmentation:overview", "segmentation.view_dimension"),
    NavEntry(_("Recommendations"), "recommendations:overview", "recommendations.view_trainedmodel"),
    NavEntry(_("Campaigns"), "campaigns:campaign-list", "campaigns.view_campaign"),
    # Later issues append their areas here, e.g.
    # NavEntry(_("Segments"), "segmentation:segment-list", "segmentation.view_segment"),
    # NavEntry(_("Recommendations"), "recommendations:overview", "recommendations.view_item"),
    # NavEntry(_("Campaigns"), "campaigns:campaign-list", "campaigns.view_campaign"),
]


@register.inclusion_tag("includes/nav_items.html", takes_context=True)
def stratum_nav(context) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    path = request.path if request else ""
    items = []
    for entry in NAV:
        if entry.permission and not (user and user.has_perm(entry.permission)):
            continue
        try:
            url = reverse(entry.url_name)
        except NoReverseMatch:
            continue
        active = path == url if url == "/" else path.startswith(url)
        items.append({"label": entry.label, "url": url, "active": active})
    return {"items": items}


@register.inclusion_tag("includes/sort_header.html", takes_context=True)
def sort_header(context, key: str, label: str, current: str) -> dict:
    """A sortable <th>: toggles between ascending and descending; announces the order (aria-sort)."""
    if current == key:
        next_sort, aria = f"-{key}", "ascending"
    elif current == f"-{key}":
        next_sort, aria = key, "descending"
    else:
        next_sort, aria = (f"-{key}" if key != "name" else key), "none"
    params = context["request"].GET.copy()
    params["sort"] = next_sort
    params.pop("page", None)
    return {"label": label, "href": f"?{params.urlencode()}", "aria": aria}


SENTIMENT_BADGES = {"positive": "text-bg-success", "neutral": "text-bg-secondary", "negative": "text-bg-danger"}
STATUS_BADGES = {"succeeded": "text-bg-success", "running": "text-bg-info", "failed": "text-bg-danger"}


@register.filter
def sentiment_badge(label: str) -> str:
    return SENTIMENT_BADGES.get(label, "text-bg-light")


@register.filter
def status_badge(status: str) -> str:
    return STATUS_BADGES.get(status, "text-bg-light")


@register.simple_tag(takes_context=True)
def page_url(context, number: int, param: str = "page") -> str:
    """The current URL with `param` set to `number`, other query parameters kept."""
    params = context["request"].GET.copy()
    params[param or "page"] = number
    return f"?{params.urlencode()}"


CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CNY": "¥", "JPY": "¥", "INR": "₹", "KRW": "₩"}


@register.simple_tag
def money(value, currency: str | None = None, places: int = 2) -> str:
    """{% money amount %}: the amount in settings.CURRENCY, with the active language's decimal
    and thousands separators ("$1,234.50"; unknown symbols: "1,234.50 CHF"). None renders "–"."""
    from django.conf import settings
    from django.utils.formats import number_format

    if value is None or value == "":
        return "–"
    code = currency or settings.CURRENCY
    text = number_format(value, decimal_pos=places, use_l10n=True, force_grouping=True)
    symbol = CURRENCY_SYMBOLS.get(code)
    if symbol:
        return f"-{symbol}{text[1:]}" if text.startswith("-") else f"{symbol}{text}"
    return f"{text} {code}"


@register.filter
def percent(value, places: int = 1) -> str:
    """A share in percent with localised decimals ("12.5 %"); None renders "–"."""
    from django.utils.formats import number_format

    if value is None:
        return "–"
    return f"{number_format(value, decimal_pos=places, use_l10n=True)} %"
