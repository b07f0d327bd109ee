"""Customer feedback: stored with the sentiment of its text."""
from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from crm.core.errors import InvalidInput

from ..models import Customer, Feedback
from ..sentiment import analyze
from .bulk import customers_ensure, items_ensure
from .customers import CustomerErased

logger = logging.getLogger(__name__)


def feedback_create(
    *,
    customer_external_id: str,
    text: str = "",
    rating: int | None = None,
    item_external_id: str | None = None,
    occurred_at: datetime | None = None,
) -> Feedback:
    """Store a customer's feedback with its sentiment (score, label, language).

    An unknown customer is created; an unknown item is created inactive (as events do), so
    nothing is lost. Refuses feedback for an erased customer (CustomerErased): its text is
    personal data. Locks the customer row so that a concurrent erasure cannot miss it.
    """
    text = (text or "").strip()
    if not text and rating is None:
        raise InvalidInput("Validation error.", extra={"fields": {"text": ["Give a text or a rating (or both)."]}})
    if rating is not None and not 1 <= rating <= 5:
        raise InvalidInput("Validation error.", extra={"fields": {"rating": ["Must be 1 to 5."]}})
    # Outside the transaction: the sentiment models take a few milliseconds, the lock need not wait.
    sentiment = analyze(text)

    with transaction.atomic():
        customer_id = customers_ensure([customer_external_id])[0][customer_external_id]
        customer = Customer.objects.select_for_update().get(pk=customer_id)
        if customer.is_erased:
            raise CustomerErased(external_id=customer_external_id)
        item_id = items_ensure([item_external_id])[0][item_external_id] if item_external_id else None
        feedback = Feedback.objects.create(
            customer=customer,
            item_id=item_id,
            text=text,
            rating=rating,
            occurred_at=occurred_at or timezone.now(),
            sentiment_score=sentiment.score if sentiment else None,
            sentiment_label=sentiment.label if sentiment else "",
            language=sentiment.language if sentiment else "",
        )
    logger.info("feedback_created id=%s customer_id=%s label=%s", feedback.pk, customer.pk, feedback.sentiment_label)
    return feedback
