"""Reasons and the answer's items: what the storefront shows under each recommended item
("Because you bought X", "Popular with VIP customers"), in the active language, and the
rendering of a ranked list (item pk, score, reason code, argument) into the API's items."""
from __future__ import annotations

from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from crm.core.translations import translated_text

from .model_store import catalog

# Reason templates by code (gettext_noop marks them for the catalogue; Messages translates
# the ones used).
ITEM_REASONS = {
    "bought": gettext_noop("Because you bought %(item)s"),
    "carted": gettext_noop("Because you added %(item)s to your cart"),
    "rated": gettext_noop("Because you rated %(item)s"),
    "viewed": gettext_noop("Similar to %(item)s you viewed"),
    "similar": gettext_noop("Often chosen together with %(item)s"),
}


MESSAGES = {
    "an_item": gettext_noop("an item"),
    "picked_vip": gettext_noop("Picked for VIP customers"),
    "picked_tier": gettext_noop("Picked for %(tier)s customers"),
    "popular_vip": gettext_noop("Popular with VIP customers"),
    "popular_tier": gettext_noop("Popular with %(tier)s customers"),
    "trending": gettext_noop("Trending in %(category)s"),
    "same_category": gettext_noop("Also in %(category)s"),
    "for_you": gettext_noop("Based on your recent activity"),
    "popular": gettext_noop("Popular right now"),
}
# Translated messages by language, filled on first use: the catalogues are fixed for the life of
# the process, and looking each message up through gettext (the active translation is a
# context-local) cost about 20 us per item shown, cached answers included.
_TRANSLATED: dict[str, dict[str, str]] = {}


class Messages:
    """The reason messages in the active language (one language look-up per answer)."""

    def __init__(self):
        self.language = (get_language() or "").lower()
        self._texts = _TRANSLATED.setdefault(self.language, {})

    def __call__(self, msgid: str) -> str:
        text = self._texts.get(msgid)
        if text is None:
            text = self._texts[msgid] = _(msgid)
        return text


def reason_text(code: str, arg, titles: dict[int, str], messages: Messages | None = None) -> str:
    t = messages or Messages()
    if code in ITEM_REASONS:
        return t(ITEM_REASONS[code]) % {"item": titles.get(arg) or t(MESSAGES["an_item"])}
    if code in ("tier_popular", "pinned"):
        # [stored name, is_vip, the tier's translations] (entries cached before the translations
        # were added have two elements).
        name, vip = arg[0], arg[1]
        name = translated_text(name, arg[2] if len(arg) > 2 else None, "name", t.language)
        kind = "picked" if code == "pinned" else "popular"
        return t(MESSAGES[f"{kind}_vip"]) if vip else t(MESSAGES[f"{kind}_tier"]) % {"tier": name}
    if code in ("trending", "same_category"):
        return t(MESSAGES[code]) % {"category": arg}
    return t(MESSAGES["for_you" if code == "for_you" else "popular"])


def render_items(ranked: list, limit: int) -> list[dict]:
    """The first `limit` available items of a ranked list, with their reasons (items that went
    out of stock or inactive since the list was ranked are skipped)."""
    cat = catalog()
    out = []
    titles = {}
    for pk, score, code, arg in ranked:
        row = cat.by_pk.get(pk)
        if row is None or not row[3]:
            continue
        out.append((pk, score, code, arg, row))
        if len(out) >= limit:
            break
    for _pk, _s, code, arg, _row in out:
        if code in ITEM_REASONS and arg in cat.by_pk:
            titles[arg] = cat.by_pk[arg][1] or cat.by_pk[arg][0]
    items = []
    messages = Messages()
    for position, (pk, score, code, arg, row) in enumerate(out, start=1):
        ext, title, category, _avail = row
        reason_item = cat.by_pk[arg][0] if code in ITEM_REASONS and arg in cat.by_pk else None
        items.append({"item": ext, "title": title, "category": category, "score": score, "position": position,
                      "reason": reason_text(code, arg, titles, messages), "reason_code": code, "reason_item": reason_item})
    return items
