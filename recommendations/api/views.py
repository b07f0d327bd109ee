"""Storefront API of recommendations: a customer's recommendations, an item's similar items,
and a trivial authenticated ping (the baseline of bench/recs_serving.py)."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import exceptions, permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import error_responses
from accounts.models import ApiKey

from ..serving import customer_recommendations, parse_exclude, parse_limit, similar_items
from .serializers import PingSerializer, RecommendationsSerializer, SimilarItemsSerializer

EXTERNAL_ID = OpenApiParameter("external_id", str, OpenApiParameter.PATH, description="The storefront's id.")
LIMIT = OpenApiParameter("limit", int, description="How many items, 1 to 100 (default 10).")

EXAMPLE = {
    "customer": "cust-1001", "rec_id": "m7.x0.3f9a2c41d0b7", "model": 7, "experiment": None, "arm": None,
    "strategy": "personalised", "known_customer": True,
    "items": [
        {"item": "sku-42", "title": "Trail running shoes", "category": "Sports", "score": 1.93, "position": 1,
         "reason": "Because you bought Running socks", "reason_code": "bought", "reason_item": "sku-17"},
        {"item": "sku-88", "title": "The Pragmatic Programmer", "category": "Books", "score": 0.71, "position": 2,
         "reason": "Trending in Books", "reason_code": "trending", "reason_item": None},
    ],
}


class CustomerRecommendationsApi(APIView):
    required_scope = "recommendations:read"

    @extend_schema(
        operation_id="customer_recommendations",
        tags=["recommendations"],
        summary="Recommendations for a customer",
        description=(
            "**Scope:** `recommendations:read`.\n\nItems for the customer, best first, each with a score and a reason. "
            "Reflects the customer's events up to now (also those since the model was trained); leaves out inactive and "
            "out-of-stock items and (by default) items the customer bought; at most a few items per category; applies "
            "the rules staff set for the customer's tiers. A customer without history gets what is popular in their "
            "tier, then what is popular overall; an unknown customer gets the cold-start list (not an error).\n\n"
            "Attribution: send `rec_impression` when you show the list and `rec_click` when one is clicked, with "
            "`properties: {\"rec_id\": ...}` as returned here and the clicked item; purchases of a clicked item "
            "within 7 days are attributed to the model (and experiment arm) that served it."
        ),
        parameters=[EXTERNAL_ID, LIMIT,
                    OpenApiParameter("category", str, description="Only items of this category (400 if unknown)."),
                    OpenApiParameter("exclude", str, description="Item external ids to leave out, comma-separated.")],
        responses={200: RecommendationsSerializer, **error_responses(400, 401, 403, 429)},
        examples=[OpenApiExample("Recommendations", value=EXAMPLE, response_only=True)],
    )
    def get(self, request, external_id: str):
        limit = parse_limit(request.query_params.get("limit"))
        exclude = parse_exclude(request.query_params.getlist("exclude"))
        data = customer_recommendations(external_id=external_id, limit=limit,
                                        category=request.query_params.get("category"), exclude=exclude)
        return Response(data)


class ItemSimilarApi(APIView):
    required_scope = "recommendations:read"

    @extend_schema(
        operation_id="item_similar",
        tags=["recommendations"],
        summary="Items similar to an item",
        description="**Scope:** `recommendations:read`.\n\nThe item's nearest neighbours in the active model (customers "
        "who engage with it engage with these); an item the model has not seen yet gets popular items of its "
        "category. Unavailable items are left out.",
        parameters=[EXTERNAL_ID, LIMIT],
        responses={200: SimilarItemsSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def get(self, request, external_id: str):
        limit = parse_limit(request.query_params.get("limit"))
        return Response(similar_items(external_id=external_id, limit=limit))


class AnyApiKey(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, ApiKey):
            raise exceptions.NotAuthenticated("Send 'Authorization: Api-Key <key>'.")
        return True


class PingApi(APIView):
    """The cheapest authenticated endpoint: what any request costs before its own work."""

    permission_classes = [AnyApiKey]

    @extend_schema(operation_id="ping", tags=["health"], summary="Check an API key",
                   description="Any valid key. Answers `{\"ok\": true}`.",
                   responses={200: PingSerializer, **error_responses(401, 429)})
    def get(self, request):
        return Response({"ok": True})
