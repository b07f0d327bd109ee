"""POST /api/v1/events/: a storefront sends a batch of behaviour events."""
from __future__ import annotations

import orjson
from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.core.errors import PayloadTooLarge

from ..choices import ApiScope, EventType, Platform
from ..services.ingest import events_ingest
from .serializers import ErrorSerializer


class OrjsonParser(BaseParser):
    """JSON bodies parsed with orjson: about five times faster than the standard library on a
    1,000-event batch, which matters at ingest rates."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read() if stream is not None else b""
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"The body is not valid JSON: {exc}.") from None


def max_body_bytes() -> int:
    """A ceiling on the request body, checked before it is read: a full batch of events with
    properties at their size limit, with room for whitespace and escapes."""
    return settings.INGEST_MAX_BATCH * (2 * settings.INGEST_MAX_PROPERTIES_BYTES + 2048)


# --- OpenAPI documentation only: the view validates by hand (accounts/services/ingest.py) ----

class EventInSerializer(serializers.Serializer):
    event_id = serializers.CharField(max_length=64, help_text="The client's unique id of the event: the dedup key. "
                                     "Sending an event_id again stores nothing and counts as a duplicate.")
    customer = serializers.CharField(max_length=128, help_text="The storefront's id of the customer; "
                                     "an unknown customer is created.")
    type = serializers.ChoiceField(choices=EventType.choices)
    occurred_at = serializers.DateTimeField(help_text="ISO 8601 with a time zone (`Z` or an offset). Naive "
                                            "date-times and times more than 5 minutes in the future are rejected.")
    item = serializers.CharField(max_length=128, required=False, allow_null=True,
                                 help_text="The storefront's id of the catalog item; an unknown item is created inactive.")
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, allow_null=True,
                                      help_text="Decimal string, e.g. \"19.90\". Negative only for `refund` events.")
    quantity = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    platform = serializers.ChoiceField(choices=Platform.choices, required=False, allow_null=True)
    properties = serializers.DictField(required=False, allow_null=True,
                                       help_text="Any JSON object, at most 4 KB serialized.")


class EventBatchInSerializer(serializers.Serializer):
    events = EventInSerializer(many=True, help_text="At most 1,000 events (more: 413).")


class EventRejectionSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the event in the batch (0-based).")
    event_id = serializers.CharField(allow_null=True, help_text="The event_id as sent, if it was a string.")
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                   help_text="Messages per field (`non_field_errors` when the event is not an object).")


class EventIngestOutSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Events stored by this request.")
    duplicates = serializers.IntegerField(help_text="Valid events already stored (or repeated in the batch).")
    rejected = EventRejectionSerializer(many=True, help_text="Invalid events; nothing of them was stored.")


_REQUEST_EXAMPLE = OpenApiExample(
    "A purchase and a view",
    request_only=True,
    value={"events": [
        {"event_id": "web-7f3a9c-0001", "customer": "cust-1001", "type": "purchase",
         "occurred_at": "2026-01-30T18:02:44+08:00", "item": "sku-8812", "amount": "59.90", "quantity": 1,
         "platform": "web", "properties": {"order_id": "SO-20260130-77", "coupon": "WELCOME10"}},
        {"event_id": "ios-19e2-0042", "customer": "cust-1002", "type": "view",
         "occurred_at": "2026-01-30T10:02:44Z", "item": "sku-1200", "platform": "ios"},
    ]},
)
_RESPONSE_EXAMPLE = OpenApiExample(
    "Some events rejected",
    response_only=True,
    status_codes=["200"],
    value={"accepted": 998, "duplicates": 1, "rejected": [
        {"index": 17, "event_id": "web-7f3a9c-0018",
         "errors": {"occurred_at": ["Must include a time zone (e.g. 'Z' or '+08:00'); naive date-times are ambiguous."]}},
        {"index": 42, "event_id": "web-7f3a9c-0043",
         "errors": {"amount": ["Must not be negative for a 'purchase' event; only refunds are negative."]}},
    ]},
)


def _error(description: str, code: str, message: str, extra: dict | None = None) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description, examples=[
        OpenApiExample(code, value={"code": code, "message": message, "extra": extra or {}}, response_only=True)])


class EventIngestApi(APIView):
    required_scope = ApiScope.EVENTS_WRITE.value
    parser_classes = [OrjsonParser]

    @extend_schema(
        operation_id="events_ingest",
        tags=["events"],
        summary="Send a batch of behaviour events",
        description=(
            "**Scope:** `events:write`.\n\n"
            "Stores up to 1,000 events per request in one transaction. Each event is validated on "
            "its own: valid events are stored even when others in the batch are rejected, and each "
            "rejection names the event's `index`, its `event_id` and, per field, what is wrong.\n\n"
            "Idempotent: `event_id` is the dedup key, so sending a batch again (after a timeout, say) "
            "stores nothing new and counts every event as a duplicate. Unknown customers are created; "
            "unknown items are created inactive until the catalog names them. Customers' "
            "`first_seen_at`/`last_seen_at` cover their events.\n\n"
            "Throttled per API key (429 with `Retry-After`)."
        ),
        request=EventBatchInSerializer,
        responses={
            200: EventIngestOutSerializer,
            400: _error("The body is not JSON, or has no `events` list.", "invalid",
                        "The body must be a JSON object with an 'events' list: {\"events\": [...]}."),
            401: _error("Missing, invalid or revoked API key.", "authentication_failed", "Invalid or revoked API key."),
            403: _error("The API key lacks the `events:write` scope.", "permission_denied",
                        "This API key lacks the scope 'events:write'."),
            413: _error("More than 1,000 events in one request.", "payload_too_large",
                        "A batch holds at most 1000 events; this one has 1500. Split it into several requests.",
                        {"max_events": 1000, "events": 1500}),
            429: _error("Too many requests for this API key; retry after `Retry-After` seconds.", "throttled",
                        "Request was throttled. Expected available in 12 seconds.", {"retry_after_seconds": 13}),
        },
        examples=[_REQUEST_EXAMPLE, _RESPONSE_EXAMPLE],
    )
    def post(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > max_body_bytes():
            raise PayloadTooLarge(f"The body is {length} bytes; the limit is {max_body_bytes()} bytes. "
                                  f"Send at most {settings.INGEST_MAX_BATCH} events per request.",
                                  extra={"max_bytes": max_body_bytes()})
        result = events_ingest(payload=request.data)
        return Response(result.as_dict())
