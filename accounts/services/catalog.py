"""The catalog as storefronts send it: set-based upsert of items."""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from recommendations.models import Item

logger = logging.getLogger(__name__)

ITEM_FIELDS = ("title", "category", "brand", "price", "tags", "attributes", "url", "active", "in_stock")
_IN_CHUNK = 900
_BATCH = 500


@dataclass(frozen=True, slots=True)
class ItemUpsertResult:
    created: int
    updated: int


def items_upsert(*, items: list[dict[str, Any]]) -> ItemUpsertResult:
    """Create or update catalog items, each a validated dict with `external_id` and any of ITEM_FIELDS.

    Partial per item: a field left out keeps its stored value (a new item gets the default),
    except `active`, which is true unless given: an item an event created inactive is
    activated by the catalog sending it. External ids must be unique within `items`.

    Set-based: one locking read per 900 ids and one INSERT ... ON CONFLICT DO UPDATE per 500
    items with the same set of fields, in one transaction. Rows are touched in external_id
    order so that concurrent upserts of overlapping catalogs lock in the same order.
    """
    if not items:
        return ItemUpsertResult(created=0, updated=0)
    external_ids = sorted(item["external_id"] for item in items)
    if len(set(external_ids)) != len(external_ids):
        raise ValueError("items_upsert: external ids must be unique within one call")

    with transaction.atomic():
        existing: set[str] = set()
        for start in range(0, len(external_ids), _IN_CHUNK):
            chunk = external_ids[start : start + _IN_CHUNK]
            existing.update(
                Item.objects.select_for_update().filter(external_id__in=chunk).order_by("external_id")
                .values_list("external_id", flat=True)
            )
        # ON CONFLICT DO UPDATE sets the same columns on every row of a statement, so items are
        # grouped by the fields they carry; a catalog feed usually makes one group.
        groups: dict[tuple[str, ...], list[Item]] = defaultdict(list)
        for data in sorted(items, key=lambda d: d["external_id"]):
            values = {name: data[name] for name in ITEM_FIELDS if name in data}
            values.setdefault("active", True)
            groups[tuple(sorted(values))].append(Item(external_id=data["external_id"], **values))
        for fields, objs in groups.items():
            Item.objects.bulk_create(
                objs, batch_size=_BATCH, update_conflicts=True, unique_fields=["external_id"],
                update_fields=[*fields, "updated_at"],
            )
    result = ItemUpsertResult(created=len(external_ids) - len(existing), updated=len(existing))
    logger.info("items_upserted created=%s updated=%s", result.created, result.updated)
    return result
