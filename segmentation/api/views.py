"""Tiers, dimensions and segments for storefronts (scope customers:read)."""
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import error_responses
from accounts.services.customers import customer_get

from ..selectors import customer_tiers, dimensions_with_counts, segments_with_counts
from .serializers import CustomerTierSerializer, DimensionSerializer, SegmentSerializer

TIER_EXAMPLE = [
    {"dimension": "behaviour", "tier": "active", "tier_name": "Active", "since": "2026-10-02T02:30:00Z",
     "is_vip": False, "service_level": "Standard service, answer within one business day.", "overridden": False},
    {"dimension": "value", "tier": "high", "tier_name": "High (VIP)", "since": "2026-08-14T02:30:00Z",
     "is_vip": True, "service_level": "VIP: priority queue, answer within 2 hours.", "overridden": False},
]


class CustomerTiersApi(APIView):
    required_scope = "customers:read"

    @extend_schema(
        operation_id="customer_tiers", tags=["segmentation"], summary="A customer's tiers",
        description="**Scope:** `customers:read`.\n\nOne entry per active dimension: the tier, since when, whether it "
        "is a VIP tier and the service level it is owed. A customer not yet tiered has an empty list.",
        parameters=[OpenApiParameter("external_id", str, OpenApiParameter.PATH)],
        responses={200: CustomerTierSerializer(many=True), **error_responses(401, 403, 404, 429)},
        examples=[OpenApiExample("Tiers", value=TIER_EXAMPLE, response_only=True)],
    )
    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        return Response(CustomerTierSerializer(customer_tiers(customer_id=customer.pk), many=True).data)


class DimensionListApi(APIView):
    required_scope = "customers:read"

    @extend_schema(
        operation_id="dimension_list", tags=["segmentation"], summary="Dimensions and their tiers, with sizes",
        description="**Scope:** `customers:read`.\n\nEvery active dimension with its tiers in order and the current "
        "number of customers in each.",
        responses={200: DimensionSerializer(many=True), **error_responses(401, 403, 429)},
    )
    def get(self, request):
        return Response(DimensionSerializer(dimensions_with_counts(), many=True).data)


class SegmentListApi(APIView):
    required_scope = "customers:read"

    @extend_schema(
        operation_id="segment_list", tags=["segmentation"], summary="Segments with their current sizes",
        description="**Scope:** `customers:read`.\n\nNamed ad-hoc audiences defined by rules, each with the number of "
        "customers it matches now. A segment whose rule no longer compiles (a tier it names was removed) is listed "
        "with `customers` null and `error` saying why; the others are counted all the same.",
        responses={200: SegmentSerializer(many=True), **error_responses(401, 403, 429)},
    )
    def get(self, request):
        return Response(SegmentSerializer(segments_with_counts(), many=True).data)
