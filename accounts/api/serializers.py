"""Input and output serializers of the storefront API (customers, catalog, feedback, privacy).

Serializers only translate: they check shapes and types and turn validated data into
plain values for the services. Output serializers are the one place where the wire
format of a model is defined, so a later issue extends the output here (for example the
segmentation issue adds `tiers` to CustomerOutputSerializer) and every endpoint that
returns a customer picks it up.
"""
from __future__ import annotations

import json
from collections.abc import Mapping

from django.conf import settings
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers

from crm.core.money import to_money
from segmentation.api.serializers import CustomerTierSerializer

from ..models import Customer, Feedback

EXTERNAL_ID_MAX = Customer._meta.get_field("external_id").max_length
ATTRIBUTES_MAX_BYTES = 16 * 1024
TAGS_MAX = 100
TAG_MAX_LENGTH = 100
FEEDBACK_TEXT_MAX = 10_000


# --- Shared fields -------------------------------------------------------------------------


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with a time zone. A naive timestamp is ambiguous, so it is refused, not guessed."""

    default_error_messages = {"naive": "Give a time zone (for example 2026-01-31T12:00:00Z or +08:00)."}

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)


class JsonObjectField(serializers.JSONField):
    """A JSON object (not a list or a scalar), at most `max_bytes` once encoded."""

    default_error_messages = {
        "not_object": "Must be a JSON object.",
        "too_large": "Must be at most {max_bytes} bytes of JSON.",
    }

    def __init__(self, *, max_bytes: int = ATTRIBUTES_MAX_BYTES, **kwargs):
        self.max_bytes = max_bytes
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            self.fail("not_object")
        if len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()) > self.max_bytes:
            self.fail("too_large", max_bytes=self.max_bytes)
        return data


@extend_schema_field({"type": "string", "format": "decimal", "pattern": r"^\d{1,10}(?:\.\d{1,2})?$", "example": "19.90"})
class MoneyField(serializers.Field):
    """A non-negative amount given as a decimal string ("19.90"); rendered as a string."""

    default_error_messages = {"negative": "Must not be negative."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, str | int | float):
            raise serializers.ValidationError("Must be a decimal string such as \"19.90\".")
        try:
            amount = to_money(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        if amount < 0:
            self.fail("negative")
        return amount

    def to_representation(self, value):
        return None if value is None else str(value)


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents `Authorization: Api-Key <key>` for drf-spectacular.

    It lives here because the API modules that import this file are what loads it; it would
    sit as well next to ApiKeyAuthentication in auth.py.
    """

    target_class = "accounts.api.auth.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_requirement(self, auto_schema):
        # SPECTACULAR_SETTINGS["SECURITY"] may already require this scheme on every operation.
        if {self.name: []} in (spectacular_settings.SECURITY or []):
            return None
        return {self.name: []}

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Api-Key <key>`. Create a key with `python manage.py create_api_key`."}


class StrictFieldsMixin:
    """Refuse fields the endpoint does not know: with partial updates a misspelt field would
    otherwise be ignored without a word. Free-form data belongs in `attributes`."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


# --- Errors ---------------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API."""

    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `invalid`, `not_found`.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    extra = serializers.DictField(help_text="Details; validation errors put `{field: [messages]}` under `fields`.")


def error_responses(*codes: int) -> dict:
    """OpenAPI responses for the given error statuses, all in the one error shape."""
    described = {
        400: "Validation error: `extra.fields` names each bad field.",
        401: "Missing or invalid API key.",
        403: "The API key lacks the scope.",
        404: "No customer with this external id.",
        409: "The customer has been erased (`customer_erased`).",
        413: "Too many items in one request.",
        429: "Throttled; retry after the `Retry-After` header.",
    }
    return {code: OpenApiResponse(ErrorSerializer, description=described[code]) for code in codes}


# --- Customers ------------------------------------------------------------------------------


class CustomerUpsertInputSerializer(StrictFieldsMixin, serializers.Serializer):
    """PUT body. Every field is optional; a field left out keeps its stored value.

    `external_id` may be repeated in the body (it must then match the URL); the serializer
    needs `context={"external_id": ...}` for that check and drops the key from its output.
    """

    external_id = serializers.CharField(required=False, help_text="Optional; must equal the id in the URL.")

    email = serializers.EmailField(max_length=254, required=False, allow_blank=True, allow_null=True)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, allow_null=True)
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True, allow_null=True)
    attributes = JsonObjectField(
        required=False, allow_null=True,
        help_text="Free-form JSON object (city, age band, occupation ...). Replaces the stored object when given.",
    )
    signup_at = AwareDateTimeField(required=False, allow_null=True, help_text="ISO 8601 with a time zone.")
    marketing_consent = serializers.BooleanField(
        required=False, help_text="When it changes, the time and the source (`api`) are recorded."
    )

    def validate_external_id(self, value):
        if value != self.context.get("external_id"):
            raise serializers.ValidationError("Does not match the external id in the URL.")
        return value

    def validate(self, attrs):
        attrs.pop("external_id", None)
        # null on a text field means "no value": store the empty string, as the columns do.
        for name in ("email", "name", "phone"):
            if name in attrs and attrs[name] is None:
                attrs[name] = ""
        if "attributes" in attrs and attrs["attributes"] is None:
            attrs["attributes"] = {}
        return attrs


class CustomerOutputSerializer(serializers.ModelSerializer):
    """How a customer looks on the wire (GET, PUT, erase and the export's `profile`).

    `tiers` lists the customer's tier on every dimension (segmentation) and `is_vip` says
    whether any of them is a VIP tier.
    """

    tiers = serializers.SerializerMethodField()
    is_vip = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = [
            "external_id", "email", "name", "phone", "attributes", "signup_at",
            "first_seen_at", "last_seen_at", "source_platform",
            "marketing_consent", "consent_at", "consent_source", "unsubscribed_at",
            "erased_at", "created_at", "updated_at", "is_vip", "tiers",
        ]
        read_only_fields = fields

    def _memberships(self, customer) -> list:
        if not hasattr(customer, "_tier_memberships"):
            from segmentation.selectors import customer_tiers

            customer._tier_memberships = customer_tiers(customer_id=customer.pk) if customer.pk else []
        return customer._tier_memberships

    @extend_schema_field(CustomerTierSerializer(many=True))
    def get_tiers(self, customer) -> list[dict]:
        return CustomerTierSerializer(self._memberships(customer), many=True).data

    def get_is_vip(self, customer) -> bool:
        return any(m.tier.is_vip for m in self._memberships(customer))


# --- Catalog -------------------------------------------------------------------------------------


class ItemInputSerializer(StrictFieldsMixin, serializers.Serializer):
    """One catalog item. Only external_id is required; other fields left out keep their stored value
    (or the default for a new item). `active` defaults to true, so an item that an event created
    inactive becomes active when the catalog sends it."""

    external_id = serializers.CharField(max_length=EXTERNAL_ID_MAX)
    title = serializers.CharField(max_length=300, required=False, allow_blank=True)
    category = serializers.CharField(max_length=100, required=False, allow_blank=True)
    brand = serializers.CharField(max_length=100, required=False, allow_blank=True)
    price = MoneyField(required=False, allow_null=True)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=TAG_MAX_LENGTH, allow_blank=False),
        max_length=TAGS_MAX, required=False,
    )
    attributes = JsonObjectField(required=False)
    url = serializers.URLField(max_length=500, required=False, allow_blank=True)
    active = serializers.BooleanField(required=False)
    in_stock = serializers.BooleanField(required=False)


class ItemUpsertInputSerializer(serializers.Serializer):
    """Documentation only: the view validates each item on its own so that one bad item does not
    reject the batch."""

    items = ItemInputSerializer(many=True, help_text=f"At most {settings.INGEST_MAX_BATCH} items.")


class RejectedItemSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position in the `items` list.")
    external_id = serializers.CharField(allow_null=True)
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class ItemUpsertResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    rejected = RejectedItemSerializer(many=True)


# --- Feedback ------------------------------------------------------------------------------------


class FeedbackInputSerializer(StrictFieldsMixin, serializers.Serializer):
    customer = serializers.CharField(max_length=EXTERNAL_ID_MAX, help_text="The customer's external id; unknown customers are created.")
    text = serializers.CharField(max_length=FEEDBACK_TEXT_MAX, required=False, allow_blank=True, default="")
    rating = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True, default=None)
    item = serializers.CharField(max_length=EXTERNAL_ID_MAX, required=False, allow_null=True, default=None,
                                 help_text="External id of the item the feedback is about; unknown items are created inactive.")
    occurred_at = AwareDateTimeField(required=False, allow_null=True, default=None,
                                     help_text="When the feedback was given (ISO 8601 with a time zone); default: now.")

    def validate_occurred_at(self, value):
        if value is not None and (value - timezone.now()).total_seconds() > settings.INGEST_MAX_FUTURE_SECONDS:
            raise serializers.ValidationError("Lies in the future.")
        return value

    def validate(self, attrs):
        if not attrs.get("text", "").strip() and attrs.get("rating") is None:
            raise serializers.ValidationError({"text": ["Give a text or a rating (or both)."]})
        return attrs


class FeedbackOutputSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="external_id", read_only=True)
    item = serializers.SlugRelatedField(slug_field="external_id", read_only=True, allow_null=True)

    class Meta:
        model = Feedback
        fields = ["id", "customer", "item", "text", "rating", "occurred_at",
                  "sentiment_score", "sentiment_label", "language", "created_at"]
        read_only_fields = fields


# --- Privacy --------------------------------------------------------------------------------------


class ExportEventSerializer(serializers.Serializer):
    event_id = serializers.CharField()
    type = serializers.CharField()
    item = serializers.CharField(allow_null=True)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    quantity = serializers.IntegerField(allow_null=True)
    platform = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    received_at = serializers.DateTimeField()
    properties = serializers.DictField()


class CustomerExportSerializer(serializers.Serializer):
    """Documentation of the export. Sections are assembled by accounts.services.privacy; apps
    added later (tiers, messages, coupons) register further top-level sections."""

    customer = serializers.CharField(help_text="External id.")
    exported_at = serializers.DateTimeField()
    profile = CustomerOutputSerializer()
    events = ExportEventSerializer(many=True)
    feedback = FeedbackOutputSerializer(many=True)
