"""Customer profiles and the customer's privacy rights (export, erase)."""
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from ..services.customers import customer_get, customer_upsert
from ..services.privacy import customer_erase, customer_export, export_sections
from .serializers import (
    CustomerExportSerializer,
    CustomerOutputSerializer,
    CustomerUpsertInputSerializer,
    error_responses,
)

EXTERNAL_ID = OpenApiParameter(
    "external_id", str, OpenApiParameter.PATH, description="The storefront's own id of the customer (up to 128 characters)."
)


PROFILE_EXAMPLE = {
    "external_id": "cust-1001",
    "email": "mei@example.com",
    "name": "Li Mei",
    "phone": "+86 138 0000 0000",
    "attributes": {"city": "Shanghai", "age_band": "25-34"},
    "signup_at": "2025-03-14T09:26:53Z",
    "first_seen_at": "2025-03-14T09:27:10Z",
    "last_seen_at": "2026-01-30T18:02:44Z",
    "source_platform": "web",
    "marketing_consent": True,
    "consent_at": "2025-03-14T09:26:53Z",
    "consent_source": "api",
    "unsubscribed_at": None,
    "erased_at": None,
    "created_at": "2025-03-14T09:26:53Z",
    "updated_at": "2026-01-30T18:02:44Z",
}


class CustomerDetailApi(APIView):
    required_scope = {"GET": "customers:read", "PUT": "customers:write"}

    @extend_schema(
        operation_id="customer_get",
        tags=["customers"],
        summary="Get a customer profile",
        description="**Scope:** `customers:read`.\n\nReturns the profile the storefront sent, plus what Stratum "
        "tracks (first/last seen, consent changes, erasure).",
        parameters=[EXTERNAL_ID],
        responses={200: CustomerOutputSerializer, **error_responses(401, 403, 404, 429)},
        examples=[OpenApiExample("Profile", value=PROFILE_EXAMPLE, response_only=True)],
    )
    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        return Response(CustomerOutputSerializer(customer).data)

    @extend_schema(
        operation_id="customer_upsert",
        tags=["customers"],
        summary="Create or update a customer profile",
        description="**Scope:** `customers:write`.\n\nPartial: fields left out of the body keep their stored value; "
        "`attributes` replaces the stored object when given; `null` clears a field. Unknown fields are refused. "
        "`signup_at` needs a time zone. When `marketing_consent` changes, the time and the source (`api`) are "
        "recorded. Responds 201 when the customer was created, 200 when updated. An erased customer cannot be "
        "filled with personal data again: 409 `customer_erased`.",
        parameters=[EXTERNAL_ID],
        request=CustomerUpsertInputSerializer,
        responses={200: CustomerOutputSerializer, 201: CustomerOutputSerializer, **error_responses(400, 401, 403, 409, 429)},
        examples=[
            OpenApiExample(
                "Full profile",
                request_only=True,
                value={"email": "mei@example.com", "name": "Li Mei", "phone": "+86 138 0000 0000",
                       "attributes": {"city": "Shanghai", "age_band": "25-34"},
                       "signup_at": "2025-03-14T09:26:53Z", "marketing_consent": True},
            ),
            OpenApiExample("Withdraw consent only", request_only=True, value={"marketing_consent": False}),
            OpenApiExample("Profile", value=PROFILE_EXAMPLE, response_only=True, status_codes=["200", "201"]),
            OpenApiExample(
                "Erased customer", response_only=True, status_codes=["409"],
                value={"code": "customer_erased",
                       "message": "Customer 'cust-1001' has been erased; their personal data cannot be stored again.",
                       "extra": {"external_id": "cust-1001"}},
            ),
            OpenApiExample(
                "Validation error", response_only=True, status_codes=["400"],
                value={"code": "invalid", "message": "Validation error.",
                       "extra": {"fields": {"signup_at": ["Give a time zone (for example 2026-01-31T12:00:00Z or +08:00)."]}}},
            ),
        ],
    )
    def put(self, request, external_id: str):
        data = CustomerUpsertInputSerializer(data=request.data, context={"external_id": external_id})
        data.is_valid(raise_exception=True)
        customer, created = customer_upsert(external_id=external_id, data=data.validated_data)
        return Response(CustomerOutputSerializer(customer).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class CustomerExportApi(APIView):
    required_scope = "customers:read"

    @extend_schema(
        operation_id="customer_export",
        tags=["privacy"],
        summary="Export everything stored about a customer",
        description="**Scope:** `customers:read`.\n\nThe data-subject access export: the profile, every event "
        "and all feedback, one top-level key per section (sections now: "
        + ", ".join(f"`{s}`" for s in export_sections())
        + "; later releases add more, e.g. tiers, messages and coupons). Works for erased customers too "
        "(it then shows what is kept).",
        parameters=[EXTERNAL_ID],
        responses={200: CustomerExportSerializer, **error_responses(401, 403, 404, 429)},
        examples=[
            OpenApiExample(
                "Export", response_only=True,
                value={
                    "customer": "cust-1001",
                    "exported_at": "2026-02-01T10:00:00Z",
                    "profile": PROFILE_EXAMPLE,
                    "events": [{"event_id": "ev-1", "type": "purchase", "item": "sku-42", "amount": "19.90",
                                "quantity": 1, "platform": "web", "occurred_at": "2026-01-30T18:02:44Z",
                                "received_at": "2026-01-30T18:02:45Z", "properties": {"order": "A-77"}}],
                    "feedback": [{"id": 7, "customer": "cust-1001", "item": "sku-42", "text": "Great quality!",
                                  "rating": 5, "occurred_at": "2026-01-31T08:00:00Z", "sentiment_score": 0.6588,
                                  "sentiment_label": "positive", "language": "en",
                                  "created_at": "2026-01-31T08:00:01Z"}],
                },
            )
        ],
    )
    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        return Response(customer_export(customer=customer))


class CustomerEraseApi(APIView):
    required_scope = "customers:write"

    @extend_schema(
        operation_id="customer_erase",
        tags=["privacy"],
        summary="Erase a customer's personal data",
        description="**Scope:** `customers:write`.\n\nRemoves e-mail, name, phone, attributes, feedback text and "
        "event properties, withdraws marketing consent and stamps `erased_at`. Anonymous aggregates stay: "
        "events with their types, items and amounts, feedback ratings and sentiment. An erased customer is "
        "never contacted again, and a later PUT of their profile is refused (409). Idempotent: erasing "
        "again returns the same profile. No request body.",
        parameters=[EXTERNAL_ID],
        request=None,
        responses={200: CustomerOutputSerializer, **error_responses(401, 403, 404, 429)},
        examples=[
            OpenApiExample(
                "Erased", response_only=True,
                value={**PROFILE_EXAMPLE, "email": "", "name": "", "phone": "", "attributes": {},
                       "marketing_consent": False, "consent_at": "2026-02-01T10:00:00Z",
                       "erased_at": "2026-02-01T10:00:00Z", "updated_at": "2026-02-01T10:00:00Z"},
            )
        ],
    )
    def post(self, request, external_id: str):
        customer = customer_erase(customer=customer_get(external_id=external_id))
        return Response(CustomerOutputSerializer(customer).data)
