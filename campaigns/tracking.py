"""Signed tracking links (open pixel, click redirect, unsubscribe) and what each records.

Tokens are signed with django.core.signing (the SECRET_KEY), each with its own salt, so a
token of one kind cannot be used as another. The click token signs the target URL together
with the message id: the redirect only goes to a URL that the message itself contained (no
open redirect); a tampered URL fails the signature.

Each hit writes through the events log (accounts.services.bulk.events_store) with a
deterministic event_id, so an open is recorded once per message and a click once per
message and link, however often the pixel loads.
"""
from __future__ import annotations

import hashlib
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.choices import ConsentSource, EventType, Platform
from accounts.models import Customer
from accounts.services.bulk import EventRow, events_store
from crm.core.errors import ApplicationError

from .models import Message

_OPEN, _CLICK, _UNSUB, _MID = "campaigns.open", "campaigns.click", "campaigns.unsubscribe", "campaigns.message-id"


class BadToken(ApplicationError):
    code, http_status = "bad_token", 400


def _b36(n: int) -> str:
    chars, out = "0123456789abcdefghijklmnopqrstuvwxyz", ""
    while True:
        n, r = divmod(n, 36)
        out = chars[r] + out
        if not n:
            return out


def _signer(salt: str) -> signing.Signer:
    return signing.Signer(salt=salt)


def _sign_id(message_id: int, salt: str) -> str:
    return _signer(salt).sign(_b36(message_id))


def _unsign_id(token: str, salt: str) -> int:
    try:
        return int(_signer(salt).unsign(token), 36)
    except (signing.BadSignature, ValueError):
        raise BadToken("This link is not valid.") from None


def open_url(message_id: int) -> str:
    return f"{settings.CAMPAIGN_BASE_URL}/t/o/{_sign_id(message_id, _OPEN)}/"


def unsubscribe_token(message_id: int) -> str:
    return _sign_id(message_id, _UNSUB)


def unsubscribe_url(message_id: int) -> str:
    return f"{settings.CAMPAIGN_BASE_URL}/t/u/{unsubscribe_token(message_id)}/"


def click_url(message_id: int, url: str) -> str:
    token = signing.dumps([_b36(message_id), url], salt=_CLICK, compress=True)
    return f"{settings.CAMPAIGN_BASE_URL}/t/c/{token}/"


def click_target(token: str) -> tuple[int, str]:
    """(message id, URL) of a click token; BadToken when tampered or not an http(s) URL."""
    try:
        mid, url = signing.loads(token, salt=_CLICK)
        message_id = int(mid, 36)
    except (signing.BadSignature, ValueError, TypeError):
        raise BadToken("This link is not valid.") from None
    if urlsplit(url).scheme not in ("http", "https"):
        raise BadToken("This link is not valid.")
    return message_id, url


def message_id_header(campaign_id: int, message_id: int) -> str:
    """Deterministic Message-ID: the same message always carries the same one (a resend after a
    crash is recognisable), and a bounce's Message-ID leads back to the row (message_from_header)."""
    sig = _signer(_MID).signature(f"{campaign_id}.{message_id}")[:10]
    return f"<c{campaign_id}.m{message_id}.{sig}@{settings.CAMPAIGN_MESSAGE_ID_DOMAIN}>"


def message_from_header(header: str) -> Message | None:
    """The Message a Message-ID header (of a bounce, say) belongs to, or None."""
    try:
        local = header.strip().strip("<>").split("@", 1)[0]
        c, m, sig = local.split(".")
        campaign_id, message_id = int(c[1:]), int(m[1:])
    except ValueError:
        return None
    if message_id_header(campaign_id, message_id) != header.strip():
        return None
    return Message.objects.filter(pk=message_id, campaign_id=campaign_id).first()


# --- what a hit records --------------------------------------------------------------------------


def _event(message: Message, type_: str, event_id: str, now: datetime, **props) -> None:
    customer = Customer.objects.only("external_id").get(pk=message.customer_id)
    events_store([EventRow(event_id=event_id, customer=customer.external_id, type=type_, occurred_at=now,
                           platform=Platform.EMAIL,
                           properties={"campaign": message.campaign_id, "message": message.pk, **props})])


def track_open(*, token: str, now: datetime | None = None) -> Message | None:
    """Record the first open of a message (email_open event). Unknown messages are ignored."""
    now = now or timezone.now()
    message = Message.objects.filter(pk=_unsign_id(token, _OPEN)).first()
    if message is None:
        return None
    if Message.objects.filter(pk=message.pk, opened_at__isnull=True).update(opened_at=now):
        _event(message, EventType.EMAIL_OPEN, f"email_open:{message.pk}", now)
    return message


def track_click(*, token: str, now: datetime | None = None) -> str:
    """Record a click (email_click, once per message and link; a click implies an open) and
    return the URL to redirect to: only a URL signed into this message's token."""
    now = now or timezone.now()
    message_id, url = click_target(token)
    message = Message.objects.filter(pk=message_id).first()
    if message is not None:
        Message.objects.filter(pk=message.pk, clicked_at__isnull=True).update(clicked_at=now)
        if Message.objects.filter(pk=message.pk, opened_at__isnull=True).update(opened_at=now):
            _event(message, EventType.EMAIL_OPEN, f"email_open:{message.pk}", now)
        link = hashlib.sha256(url.encode()).hexdigest()[:16]
        _event(message, EventType.EMAIL_CLICK, f"email_click:{message.pk}:{link}", now, url=url[:500])
    return url


def unsubscribe_message(token: str) -> Message:
    message = Message.objects.select_related("campaign", "customer").filter(pk=_unsign_id(token, _UNSUB)).first()
    if message is None:
        raise BadToken("This link is not valid.")
    return message


def unsubscribe(*, token: str, now: datetime | None = None) -> Message:
    """Withdraw the customer's consent to marketing (unsubscribed_at, consent source
    `unsubscribe`) and cancel their queued messages. Idempotent; no login needed."""
    now = now or timezone.now()
    message = unsubscribe_message(token)
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=message.customer_id)
        if customer.unsubscribed_at is None:
            customer.unsubscribed_at = now
            customer.marketing_consent = False
            customer.consent_at = now
            customer.consent_source = ConsentSource.UNSUBSCRIBE
            customer.save(update_fields=["unsubscribed_at", "marketing_consent", "consent_at", "consent_source",
                                         "updated_at"])
        Message.objects.filter(pk=message.pk, unsubscribed_at__isnull=True).update(unsubscribed_at=now)
        # Nothing queued for them goes out any more, in any campaign.
        Message.objects.filter(Q(status="queued"), customer_id=customer.pk).update(
            status="skipped", skip_reason="unsubscribed")
    return message
