"""Customer feedback, stored with its sentiment."""
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from ..services.feedback import feedback_create
from .serializers import FeedbackInputSerializer, FeedbackOutputSerializer, error_responses


class FeedbackCreateApi(APIView):
    required_scope = "customers:write"

    @extend_schema(
        operation_id="feedback_create",
        tags=["feedback"],
        summary="Store a customer's feedback",
        description="**Scope:** `customers:write`.\n\nStores the text and/or rating (1-5) with the sentiment of "
        "the text: a score from -1 to 1, a label and the language. English (and other Latin-script text) is "
        "scored with VADER, Chinese with SnowNLP. Give a text, a rating or both (neither: 400). An unknown "
        "customer is created; an unknown item is created inactive. Feedback for an erased customer is "
        "refused (409 `customer_erased`).",
        request=FeedbackInputSerializer,
        responses={201: FeedbackOutputSerializer, **error_responses(400, 401, 403, 409, 429)},
        examples=[
            OpenApiExample("English", request_only=True,
                           value={"customer": "cust-1001", "text": "Great quality, fast delivery!", "rating": 5,
                                  "item": "sku-42", "occurred_at": "2026-01-31T08:00:00Z"}),
            OpenApiExample("Chinese", request_only=True,
                           value={"customer": "cust-1002", "text": "质量很差，非常失望。", "rating": 1}),
            OpenApiExample("Stored", response_only=True, status_codes=["201"],
                           value={"id": 7, "customer": "cust-1001", "item": "sku-42",
                                  "text": "Great quality, fast delivery!", "rating": 5,
                                  "occurred_at": "2026-01-31T08:00:00Z", "sentiment_score": 0.6588,
                                  "sentiment_label": "positive", "language": "en",
                                  "created_at": "2026-01-31T08:00:01Z"}),
        ],
    )
    def post(self, request):
        data = FeedbackInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        feedback = feedback_create(
            customer_external_id=v["customer"], text=v["text"], rating=v["rating"],
            item_external_id=v["item"], occurred_at=v["occurred_at"],
        )
        return Response(FeedbackOutputSerializer(feedback).data, status=status.HTTP_201_CREATED)
