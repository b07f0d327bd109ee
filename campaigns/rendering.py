"""Message content: Django templates rendered against a context of plain values.

Staff write subject, HTML and text in the Django template language. The engine used here is
sandboxed as far as the template language allows: no template loaders (so no {% include %}
or {% extends %} of server files), only the built-in tags and filters, and a context made of
strings, numbers, booleans, lists and dicts, never model instances, so a template cannot
call a method that reaches the database.

The context (see `message_context`):
    first_name, name, email, is_vip, tiers [{dimension, name, slug, is_vip}], tier_names,
    recommendations [{title, url, price, category}], coupon {code, value, kind, display,
    min_basket, expires_at, expires_on} or None, unsubscribe_url, campaign_name, shop_name
"""
from __future__ import annotations

import functools
import html as html_lib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template import Context, Engine, TemplateSyntaxError
from django.utils.module_loading import import_string

from .choices import DiscountKind

_HTML_ENGINE = Engine(debug=True, autoescape=True, loaders=[("django.template.loaders.locmem.Loader", {})],
                      libraries={}, string_if_invalid="")
_TEXT_ENGINE = Engine(debug=True, autoescape=False, loaders=[("django.template.loaders.locmem.Loader", {})],
                      libraries={}, string_if_invalid="")

CONTEXT_KEYS = ("first_name", "name", "email", "is_vip", "tiers", "tier_names", "recommendations", "coupon",
                "unsubscribe_url", "campaign_name", "shop_name")


def template_check(source: str, *, field: str, html: bool = False) -> None:
    """Raise ValidationError({field: ["Line N: ..."]}) when `source` does not compile."""
    try:
        (_HTML_ENGINE if html else _TEXT_ENGINE).from_string(source or "")
    except TemplateSyntaxError as exc:
        info = getattr(exc, "template_debug", None) or {}
        line = info.get("line")
        prefix = f"Line {line}: " if line else ""
        raise ValidationError({field: [f"{prefix}{exc}"]}) from None


@functools.lru_cache(maxsize=256)
def _compiled(source: str, html: bool):
    return (_HTML_ENGINE if html else _TEXT_ENGINE).from_string(source)


def render(source: str, context: dict, *, html: bool) -> str:
    if not source:
        return ""
    return _compiled(source, html).render(Context(context, autoescape=html))


# --- context -----------------------------------------------------------------------------------


def default_recommender(customer_ids: list[int], *, n: int) -> dict[int, list[dict]]:
    """Top-N recommendations per customer, from the recommendations app when it offers
    `recommendations.selectors.recommendations_for_customers(customer_ids, n=...)`, else none.

    The contract for a replacement (setting CAMPAIGN_RECOMMENDER): take customer pks, return
    {pk: [{"title", "url", "price", "category"}]} with plain values only; missing pks get [].
    """
    try:
        from recommendations.selectors import recommendations_for_customers  # type: ignore[attr-defined]
    except Exception:  # the recommendations service is optional
        return {}
    try:
        return recommendations_for_customers(customer_ids, n=n) or {}
    except Exception:  # recommendations must never stop a campaign
        import logging

        logging.getLogger(__name__).exception("campaign_recommendations_failed")
        return {}


def recommendations_for(customer_ids: list[int]) -> dict[int, list[dict]]:
    fn = import_string(settings.CAMPAIGN_RECOMMENDER)
    raw = fn(list(customer_ids), n=settings.CAMPAIGN_RECOMMENDATIONS_N) or {}
    return {cid: [_plain_rec(r) for r in recs][: settings.CAMPAIGN_RECOMMENDATIONS_N] for cid, recs in raw.items()}


def _plain_rec(rec) -> dict:
    get = rec.get if isinstance(rec, dict) else (lambda k, d=None: getattr(rec, k, d))
    price = get("price")
    return {"title": str(get("title", "") or ""), "url": str(get("url", "") or ""),
            "price": str(price) if price is not None else "", "category": str(get("category", "") or "")}


def coupon_display(discount: str, value: Decimal, currency: str) -> str:
    if discount == DiscountKind.PERCENT:
        return f"{value.normalize():f}%"
    return f"{value:.2f} {currency}"


def coupon_context(coupon) -> dict | None:
    if coupon is None:
        return None
    return {
        "code": coupon.code, "value": str(coupon.value), "kind": coupon.discount,
        "display": coupon_display(coupon.discount, coupon.value, coupon.currency),
        "min_basket": str(coupon.min_basket), "currency": coupon.currency,
        "expires_at": coupon.expires_at.isoformat(), "expires_on": coupon.expires_at.strftime("%d %B %Y"),
    }


def message_context(*, customer, campaign_name: str, tiers: Iterable, coupon=None, recommendations=None,
                    unsubscribe_url: str = "") -> dict:
    """The plain-values context of one message. `tiers`: Membership rows with tier and dimension."""
    tier_list = [{"dimension": m.dimension.name if hasattr(m, "dimension") else "", "name": m.tier.name,
                  "slug": m.tier.slug, "is_vip": bool(m.tier.is_vip)} for m in tiers]
    name = customer.name or ""
    return {
        "first_name": name.split()[0] if name.strip() else "",
        "name": name,
        "email": customer.email,
        "is_vip": any(t["is_vip"] for t in tier_list),
        "tiers": tier_list,
        "tier_names": ", ".join(t["name"] for t in tier_list),
        "recommendations": list(recommendations or []),
        "coupon": coupon_context(coupon),
        "unsubscribe_url": unsubscribe_url,
        "campaign_name": campaign_name,
        "shop_name": getattr(settings, "SHOP_NAME", "Stratum"),
    }


# --- HTML post-processing: tracked links and the open pixel --------------------------------------

_HREF = re.compile(r"""href=(["'])(https?://[^"'\s>]+)\1""", re.IGNORECASE)


def track_html(body: str, *, click_url, open_url: str, skip: tuple[str, ...] = ()) -> str:
    """Route every http(s) link through the click redirect (signed: only these URLs redirect)
    and add the open pixel."""

    def swap(match: re.Match) -> str:
        url = html_lib.unescape(match.group(2))
        if url.startswith(skip):
            return match.group(0)
        return f'href="{html_lib.escape(click_url(url))}"'

    body = _HREF.sub(swap, body)
    pixel = f'<img src="{html_lib.escape(open_url)}" width="1" height="1" alt="" style="display:none">'
    if "</body>" in body:
        return body.replace("</body>", pixel + "</body>", 1)
    return body + pixel


@dataclass(slots=True)
class Rendered:
    subject: str
    text: str
    html: str


def render_message(*, subject: str, text_body: str, html_body: str, context: dict) -> Rendered:
    subject_out = " ".join(render(subject, context, html=False).split())
    return Rendered(subject=subject_out, text=render(text_body, context, html=False),
                    html=render(html_body, context, html=True))
