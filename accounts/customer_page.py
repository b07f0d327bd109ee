"""A registry of extra sections on the staff customer page.

Later apps (segmentation, campaigns, recommendations) add what they know about a customer
without accounts importing them: each registers a `CustomerSection` from its AppConfig.ready().
`CustomerDetailView` calls every section's `context(request, customer)`; a section that returns
None is not shown (for example when the user lacks the app's permission). The template renders
each section's `template` in its slot with the returned dict as `section`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

SLOTS = ("badges", "sidebar", "top", "extra")  # customer_badges, customer_sidebar_extra, customer_sections_top/_extra


@dataclass(frozen=True)
class CustomerSection:
    key: str
    slot: str
    template: str
    context: Callable  # (request, customer) -> dict | None
    order: int = 100


_SECTIONS: dict[str, CustomerSection] = {}


def register_customer_section(section: CustomerSection) -> None:
    """Register (or replace, by key) a section; called from an AppConfig.ready()."""
    if section.slot not in SLOTS:
        raise ValueError(f"unknown customer page slot {section.slot!r}; use one of {SLOTS}")
    _SECTIONS[section.key] = section


def customer_sections(request, customer) -> dict[str, list[dict]]:
    """{slot: [{"template": ..., "context": {...}}, ...]} for the sections this user may see."""
    out: dict[str, list[dict]] = {slot: [] for slot in SLOTS}
    for section in sorted(_SECTIONS.values(), key=lambda s: (s.order, s.key)):
        context = section.context(request, customer)
        if context is not None:
            out[section.slot].append({"key": section.key, "template": section.template, "context": context})
    return out


# --- Filters of the customer list ------------------------------------------------------------
@dataclass(frozen=True)
class CustomerListFilter:
    """A query parameter of the customer list (e.g. ?tier=value:high) contributed by another app.

    `resolve(request, value)` returns (Q over Customer, human label), or None when the value
    names nothing (the list then shows nobody and says so) or the user may not use the filter.
    """

    param: str
    resolve: Callable  # (request, value: str) -> tuple[Q, str] | None


_FILTERS: dict[str, CustomerListFilter] = {}


def register_customer_list_filter(flt: CustomerListFilter) -> None:
    _FILTERS[flt.param] = flt


def customer_list_filters(request) -> tuple[list, list[dict]]:
    """([Q, ...], [{"param", "value", "label", "valid"}]) for the filters present in request.GET."""
    from django.db.models import Q

    qs, active = [], []
    for param, flt in _FILTERS.items():
        value = (request.GET.get(param) or "").strip()
        if not value:
            continue
        resolved = flt.resolve(request, value)
        if resolved is None:
            qs.append(Q(pk__in=[]))
            active.append({"param": param, "value": value, "label": value, "valid": False})
        else:
            qs.append(resolved[0])
            active.append({"param": param, "value": value, "label": resolved[1], "valid": True})
    return qs, active
