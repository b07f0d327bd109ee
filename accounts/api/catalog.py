"""The storefront's catalog: bulk upsert of items."""
from collections.abc import Mapping

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.core.errors import InvalidInput, PayloadTooLarge

from ..services.catalog import items_upsert
from .serializers import ItemInputSerializer, ItemUpsertInputSerializer, ItemUpsertResultSerializer, error_responses


def _flat_errors(errors, prefix: str = "") -> dict[str, list[str]]:
    """{"tags": {0: ["..."]}} -> {"tags.0": ["..."]}: one list of messages per field path."""
    flat: dict[str, list[str]] = {}
    for field, value in errors.items():
        name = f"{prefix}{field}"
        if isinstance(value, Mapping):
            flat.update(_flat_errors(value, prefix=f"{name}."))
        else:
            flat[name] = [str(message) for message in value]
    return flat


def items_validate(raw_items: list) -> tuple[list[dict], list[dict]]:
    """Validate each item on its own: (valid items, rejections with index, external_id, errors).

    A repeated external_id is rejected at its second and later occurrences, so each item is
    written once and the result says which copy was used.
    """
    valid: list[dict] = []
    rejected: list[dict] = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(raw_items):
        external_id = raw.get("external_id") if isinstance(raw, Mapping) else None
        if not isinstance(external_id, str):
            external_id = None
        item = ItemInputSerializer(data=raw)
        if not item.is_valid():
            rejected.append({"index": index, "external_id": external_id, "errors": _flat_errors(item.errors)})
            continue
        external_id = item.validated_data["external_id"]
        if external_id in first_index:
            rejected.append({"index": index, "external_id": external_id, "errors": {
                "external_id": [f"Repeats the item at index {first_index[external_id]}."]}})
            continue
        first_index[external_id] = index
        valid.append(item.validated_data)
    return valid, rejected


class ItemUpsertApi(APIView):
    required_scope = "catalog:write"

    @extend_schema(
        operation_id="items_upsert",
        tags=["catalog"],
        summary="Create or update catalog items",
        description=f"**Scope:** `catalog:write`.\n\nUp to {settings.INGEST_MAX_BATCH} items per request (more: 413). "
        "Each item is validated on its own: valid items are stored even when others are rejected, and each "
        "rejection gives the item's index, external id and errors per field. Per item, fields left out keep "
        "their stored value; `active` is true unless given, so an item first seen in an event (created "
        "inactive) is activated when the catalog sends it. `price` is a decimal string. Unknown fields are "
        "refused; put anything else in `attributes`. Stored with bulk upserts in one transaction.",
        request=ItemUpsertInputSerializer,
        responses={200: ItemUpsertResultSerializer, **error_responses(400, 401, 403, 413, 429)},
        examples=[
            OpenApiExample(
                "Two items", request_only=True,
                value={"items": [
                    {"external_id": "sku-42", "title": "Linen shirt", "category": "apparel", "brand": "Aster",
                     "price": "39.90", "tags": ["linen", "summer"], "attributes": {"colour": "white"},
                     "url": "https://shop.example.com/p/sku-42", "active": True, "in_stock": True},
                    {"external_id": "sku-43", "price": "-1"},
                ]},
            ),
            OpenApiExample(
                "Result", response_only=True,
                value={"created": 1, "updated": 0, "rejected": [
                    {"index": 1, "external_id": "sku-43", "errors": {"price": ["Must not be negative."]}}]},
            ),
        ],
    )
    def put(self, request):
        body = request.data
        if not isinstance(body, Mapping) or not isinstance(body.get("items"), list):
            raise InvalidInput(
                "The body must be a JSON object with an 'items' list.",
                extra={"fields": {"items": ["Expected a list of items."]}},
            )
        limit = settings.INGEST_MAX_BATCH
        if len(body["items"]) > limit:
            raise PayloadTooLarge(
                f"At most {limit} items per request; this one has {len(body['items'])}. Split it into smaller requests.",
                extra={"max_items": limit, "items": len(body["items"])},
            )
        valid, rejected = items_validate(body["items"])
        result = items_upsert(items=valid)
        return Response({"created": result.created, "updated": result.updated, "rejected": rejected})
