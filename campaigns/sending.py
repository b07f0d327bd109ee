"""Delivery: claim a batch of queued messages, send them over one SMTP connection, mark each
one sent the moment the SMTP server has it.

Exactly once, and where the limit is
-------------------------------------
A Message row is the idempotency key: a message is sent only by the worker that claimed it
(status SENDING + a random claim token, taken with SELECT ... FOR UPDATE SKIP LOCKED in
primary-key order), and a row marked SENT is never claimed again. A batch that fails halfway
leaves its unsent rows to be retried; only those go out again.

The one gap no design can close without the SMTP server's help is the moment between the
server accepting the message (it has received the final "." of DATA) and our database
recording it: the two are different systems and no transaction spans both. We make that
window as small as it can be made in a single process:

1. MAIL FROM, RCPT TO and DATA run first; the message body goes out *together with* the
   terminating "." in one sendall(). Before that call returns, nothing is delivered: if the
   worker dies earlier, the server sees the connection drop in the middle of DATA and
   discards the message (RFC 5321 4.1.1.4); the row stays SENDING and is resent.
2. The very next statement, before reading the server's reply, is one autocommit UPDATE
   ... SET status = 'sent' on a raw DB-API cursor: its bytes reach PostgreSQL within a few
   microseconds of the "." reaching the SMTP server. Once those bytes are in the kernel,
   a SIGKILL no longer matters: PostgreSQL reads and commits the statement anyway. The
   server's reply is read afterwards; a rejection (4xx/5xx after DATA) undoes the mark.
3. A crashed worker's claims are recognised at once on PostgreSQL: the claimer holds a
   session-level advisory lock named after its claim token, which PostgreSQL releases when
   the connection dies. The sweep (run on every worker start, every minute by beat, and by
   `run_campaign --wait`) takes dead claims back. Messages are sent in primary-key order,
   so of a dead claim only the lowest still-SENDING message can have been inside the
   window; it is flagged `uncertain` and resent with the *same* Message-ID header, so a
   duplicate is detectable (and receiving services that collapse identical Message-IDs
   collapse it).

4. If the connection drops after the "." but before the server's reply, the server may or
   may not have kept the message; as MTAs do (RFC 1047), it is retried, flagged `uncertain`.

So a duplicate needs a SIGKILL to land in the few microseconds between two consecutive
system calls, out of the ~2 ms each message takes (of the order of 1 in 1,000 for a kill at a
uniformly random moment during sending), or a lost reply to "."; a missing message needs the
server to reject after DATA *and* a kill in the same microseconds. In both cases the message
is flagged and carries the same Message-ID. Nothing else loses or doubles a message; see the
crash test (tests/campaigns/test_crash.py).

The sent-mark is an autocommit UPDATE. By default (CAMPAIGN_SEND_SYNCHRONOUS_COMMIT off) the
sender's session uses synchronous_commit=off: PostgreSQL has the commit (and shows it to every
other session) before it flushes the WAL, which is all a killed *worker* needs; only a crash of
the *database server* within ~0.6 s of a mark could undo it and cause a resend. Turning the
setting on makes every mark durable at the price of one WAL flush per message.

Without PostgreSQL (the embedded SQLite default, one process) claims are leases that expire
after CAMPAIGN_CLAIM_LEASE_SECONDS.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
import smtplib
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.mail.message import sanitize_address
from django.db import connection, transaction
from django.db.models import F, Max, Min, Q
from django.utils import timezone

from segmentation.models import Membership

from . import mime, rendering, tracking
from .choices import CampaignStatus, MessageStatus, SkipReason
from .models import Campaign, Coupon, Message

logger = logging.getLogger(__name__)

# PostgreSQL: now() is the statement's own time in autocommit, and keeps Python work out of the
# window between the "." and this statement.
_SENT_SQL_PG = ("UPDATE campaigns_message SET status = 'sent', sent_at = now(), error = '' "
                "WHERE id = %s AND claim_token = %s AND status = 'sending'")
_SENT_SQL = ("UPDATE campaigns_message SET status = 'sent', sent_at = %s, error = '' "
             "WHERE id = %s AND claim_token = %s AND status = 'sending'")


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _lock_key(token: str) -> int:
    return int.from_bytes(hashlib.sha1(f"campaigns.claim:{token}".encode()).digest()[:8], "big", signed=True)


# --- claiming -------------------------------------------------------------------------------


def claim_batch(*, campaign_id: int, size: int, now: datetime | None = None) -> tuple[str, list[int]]:
    """Claim up to `size` due queued messages, in primary-key order. Returns (token, ids).

    Concurrent claimers skip each other's locked rows (SKIP LOCKED), so two workers never
    claim the same message; pk order keeps lock acquisition ordered (no deadlocks). On
    PostgreSQL the claimer takes the token's advisory lock (session level) before commit, so
    a claim is visibly alive exactly as long as its worker's connection.
    """
    now = now or timezone.now()
    token = secrets.token_hex(8)
    with transaction.atomic():
        ids = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(campaign_id=campaign_id, status=MessageStatus.QUEUED)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .order_by("id").values_list("id", flat=True)[:size]
        )
        if not ids:
            return token, []
        if _pg():
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_lock(%s)", [_lock_key(token)])
        Message.objects.filter(id__in=ids).update(status=MessageStatus.SENDING, claim_token=token, claimed_at=now,
                                                  attempts=F("attempts") + 1)
    return token, ids


def release_claim_lock(token: str) -> None:
    if _pg() and connection.connection is not None:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", [_lock_key(token)])


def claims_recover(*, campaign_id: int, now: datetime | None = None) -> int:
    """Give the messages of dead claims back to the queue; returns how many.

    Dead: on PostgreSQL, nobody holds the claim's advisory lock (its worker's connection is
    gone); elsewhere, the claim is older than the lease. The lowest message of each dead claim
    may have reached the SMTP server (see the module docstring): it is flagged `uncertain`.
    """
    now = now or timezone.now()
    claims = (Message.objects.filter(campaign_id=campaign_id, status=MessageStatus.SENDING)
              .values("claim_token").annotate(first=Min("id"), claimed=Max("claimed_at")))
    recovered = 0
    for claim in claims:
        token = claim["claim_token"]
        if _pg():
            with connection.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(%s)", [_lock_key(token)])
                dead = cur.fetchone()[0]
        else:
            dead = claim["claimed"] is None or claim["claimed"] < now - timedelta(seconds=settings.CAMPAIGN_CLAIM_LEASE_SECONDS)
        if not dead:
            continue
        try:
            with transaction.atomic():
                rows = Message.objects.filter(campaign_id=campaign_id, status=MessageStatus.SENDING, claim_token=token)
                Message.objects.filter(pk=claim["first"], status=MessageStatus.SENDING).update(uncertain=True)
                recovered += rows.update(status=MessageStatus.QUEUED, claim_token="", claimed_at=None)
        finally:
            release_claim_lock(token) if _pg() else None
        logger.warning("campaign_claim_recovered campaign=%s token=%s first=%s", campaign_id, token, claim["first"])
    return recovered


# --- building messages ----------------------------------------------------------------------------


@dataclass
class Content:
    subject: str
    text: str
    html: str


def content_for(campaign: Campaign, variant) -> Content:
    if variant is None:
        return Content(campaign.subject, campaign.text_body, campaign.html_body)
    return Content(variant.subject or campaign.subject, variant.text_body or campaign.text_body,
                   variant.html_body or campaign.html_body)


def uses_recommendations(campaign: Campaign) -> bool:
    parts = [campaign.subject, campaign.text_body, campaign.html_body]
    parts += [p for v in campaign.variants.all() for p in (v.subject, v.text_body, v.html_body)]
    return any("recommendations" in p for p in parts)


def unsubscribe_headers(message_id: int) -> dict[str, str]:
    url = tracking.unsubscribe_url(message_id)
    targets = [f"<{url}>"]
    if settings.CAMPAIGN_UNSUBSCRIBE_MAILTO:
        targets.insert(0, f"<mailto:{settings.CAMPAIGN_UNSUBSCRIBE_MAILTO}?subject=unsubscribe-{tracking.unsubscribe_token(message_id)}>")
    return {"List-Unsubscribe": ", ".join(targets), "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


@dataclass
class Prepared:
    """One rendered message, ready to become an EmailMessage (file/locmem backends, test sends)
    or raw MIME bytes (the SMTP path)."""

    from_email: str
    to: str
    subject: str
    text: str
    html: str
    headers: dict[str, str]

    def as_email(self, connection=None) -> EmailMultiAlternatives:
        email = EmailMultiAlternatives(subject=self.subject, body=self.text or " ", from_email=self.from_email,
                                       to=[self.to], headers=self.headers, connection=connection)
        if self.html:
            email.attach_alternative(self.html, "text/html")
        return email

    def as_bytes(self) -> bytes:
        return mime.build(from_email=self.from_email, to=self.to, subject=self.subject, text=self.text or " ",
                          html=self.html, headers=self.headers)


def prepare(*, campaign: Campaign, message: Message, customer, memberships, coupon, recommendations,
            test_to: str | None = None) -> Prepared:
    """Render one message: content for its variant, tracked links and the open pixel, the
    List-Unsubscribe headers and the deterministic Message-ID."""
    unsub = tracking.unsubscribe_url(message.pk)
    context = rendering.message_context(customer=customer, campaign_name=campaign.name, tiers=memberships,
                                        coupon=coupon, recommendations=recommendations, unsubscribe_url=unsub)
    content = content_for(campaign, message.variant)
    rendered = rendering.render_message(subject=content.subject, text_body=content.text, html_body=content.html,
                                        context=context)
    headers = {"Message-ID": tracking.message_id_header(campaign.pk, message.pk), **unsubscribe_headers(message.pk),
               "X-Stratum-Campaign": str(campaign.pk)}
    html = rendered.html
    if html and not test_to:
        html = rendering.track_html(html, click_url=lambda url: tracking.click_url(message.pk, url),
                                    open_url=tracking.open_url(message.pk), skip=(settings.CAMPAIGN_BASE_URL + "/t/",))
    return Prepared(from_email=campaign.from_email or settings.CAMPAIGN_FROM_EMAIL, to=test_to or customer.email,
                    subject=rendered.subject if not test_to else f"[TEST] {rendered.subject}",
                    text=rendered.text, html=html, headers=headers)


def build_email(*, connection=None, **kwargs) -> EmailMultiAlternatives:
    return prepare(**kwargs).as_email(connection)


# --- transports -----------------------------------------------------------------------------------


class TemporaryFailure(Exception):
    """The server or the connection failed in a way worth retrying (4xx, disconnects)."""


class PermanentFailure(Exception):
    """The server refused this message for good (5xx)."""


class ConnectionLost(TemporaryFailure):
    after_data = False   # True: the whole message and its "." went out, the reply did not come


def _reply(code: int, resp: bytes) -> str:
    return f"{code} {resp.decode('utf-8', 'replace') if isinstance(resp, bytes) else resp}"[:500]


class Transport:
    """One connection for a batch. `deliver(email, mark_sent)` calls mark_sent() at the moment
    the message is handed over for good, and raises Temporary/PermanentFailure."""

    def __init__(self):
        self.backend = get_connection(fail_silently=False)
        self.smtp_mode = isinstance(self.backend, SmtpBackend)

    def open(self) -> None:
        try:
            self.backend.open()
            if self.smtp_mode:
                self.backend.connection.ehlo_or_helo_if_needed()
        except (smtplib.SMTPException, OSError) as exc:
            self.backend.connection = None
            raise ConnectionLost(f"cannot connect: {exc}") from exc

    def close(self) -> None:
        try:
            self.backend.close()
        except Exception:  # closing a broken connection
            self.backend.connection = None

    def deliver(self, prepared: Prepared, mark_sent) -> None:
        if not self.smtp_mode:
            self.backend.send_messages([prepared.as_email(self.backend)])
            mark_sent()
            return
        smtp = self.backend.connection
        if smtp is None:
            self.open()
            smtp = self.backend.connection
        from_addr = self._envelope(prepared.from_email)
        to_addr = self._envelope(prepared.to)
        data = prepared.as_bytes()
        payload = smtplib._quote_periods(data)
        if payload[-2:] != b"\r\n":
            payload += b"\r\n"
        payload += b".\r\n"
        try:
            code, resp = smtp.mail(from_addr)
            if code != 250:
                self._refused(smtp, code, resp)
            code, resp = smtp.rcpt(to_addr)
            if code not in (250, 251):
                self._refused(smtp, code, resp)
            code, resp = smtp.docmd("data")
            if code != 354:
                self._refused(smtp, code, resp)
            smtp.send(payload)   # body and the final "." in one write: accepted from here on
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.backend.connection = None
            raise ConnectionLost(str(exc) or type(exc).__name__) from exc
        mark_sent()              # the next system call: the commit of status = 'sent'
        try:
            code, resp = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # The reply to "." was lost: the server may or may not have kept the message. As
            # MTAs do (RFC 1047), retry; the message is flagged uncertain and keeps its Message-ID.
            self.backend.connection = None
            lost = ConnectionLost(f"reply to DATA lost: {exc or type(exc).__name__}")
            lost.after_data = True
            raise lost from exc
        if code != 250:
            raise (PermanentFailure if 500 <= code < 600 else TemporaryFailure)(_reply(code, resp) + " (after DATA)")

    _senders: dict[str, str] = {}

    def _envelope(self, value: str) -> str:
        """The bare address for MAIL FROM / RCPT TO (IDNA-encoded when needed)."""
        if value.isascii() and "<" not in value:
            return value
        if value not in self._senders:
            self._senders[value] = sanitize_address(value, "utf-8")
        return self._senders[value]

    @staticmethod
    def _refused(smtp, code: int, resp: bytes) -> None:
        try:
            smtp.rset()
        except (smtplib.SMTPException, OSError):
            pass
        if 500 <= code < 600:
            raise PermanentFailure(_reply(code, resp))
        raise TemporaryFailure(_reply(code, resp))


# --- the batch ------------------------------------------------------------------------------------


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retry: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


class _Pacer:
    def __init__(self, rate: float):
        self.interval = 1.0 / rate if rate and rate > 0 else 0.0
        self.next = time.monotonic()

    def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if self.next > now:
            time.sleep(self.next - now)
        self.next = max(self.next, now) + self.interval


def _retry_or_fail(message: Message, token: str, reason: str, now: datetime) -> str:
    if message.attempts >= settings.CAMPAIGN_MAX_ATTEMPTS:
        Message.objects.filter(pk=message.pk, claim_token=token).update(
            status=MessageStatus.FAILED, error=f"gave up after {message.attempts} attempts: {reason}"[:1000],
            claim_token="")
        return "failed"
    delay = settings.CAMPAIGN_RETRY_BACKOFF_SECONDS * (2 ** max(0, message.attempts - 1))
    Message.objects.filter(pk=message.pk, claim_token=token).update(
        status=MessageStatus.QUEUED, error=reason[:1000], claim_token="", claimed_at=None, sent_at=None,
        next_attempt_at=now + timedelta(seconds=delay))
    return "retry"


def _skip_reason_now(customer, sends_email: bool) -> str:
    if customer.erased_at is not None:
        return SkipReason.ERASED
    if customer.unsubscribed_at is not None:
        return SkipReason.UNSUBSCRIBED
    if not customer.marketing_consent:
        return SkipReason.NO_CONSENT
    if sends_email and not customer.email:
        return SkipReason.NO_EMAIL
    return ""


def send_batch(*, campaign_id: int, size: int | None = None, pacer: _Pacer | None = None) -> BatchResult:
    """Claim one batch of `campaign_id` and deliver it over one connection. Returns counts
    (claimed == 0: nothing was due)."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    result = BatchResult()
    if campaign is None or campaign.status != CampaignStatus.SENDING:
        return result
    token, ids = claim_batch(campaign_id=campaign_id, size=size or settings.CAMPAIGN_SEND_BATCH_SIZE)
    result.claimed = len(ids)
    if not ids:
        return result
    try:
        _deliver(campaign, token, ids, result, pacer or _Pacer(settings.CAMPAIGN_SEND_RATE))
    finally:
        release_claim_lock(token)
    logger.info("campaign_batch_done campaign=%s claimed=%s sent=%s failed=%s retry=%s skipped=%s", campaign_id,
                result.claimed, result.sent, result.failed, result.retry, result.skipped)
    return result


def _deliver(campaign: Campaign, token: str, ids: list[int], result: BatchResult, pacer: _Pacer) -> None:
    messages = list(Message.objects.filter(id__in=ids, claim_token=token, status=MessageStatus.SENDING)
                    .select_related("customer", "variant").order_by("id"))
    customer_ids = [m.customer_id for m in messages]
    coupons = ({c.customer_id: c for c in Coupon.objects.filter(campaign=campaign, customer_id__in=customer_ids)}
               if campaign.gives_coupon else {})
    memberships: dict[int, list] = {}
    for m in (Membership.objects.filter(customer_id__in=customer_ids).select_related("tier", "dimension")
              .order_by("dimension__order", "dimension__slug")):
        memberships.setdefault(m.customer_id, []).append(m)
    recs = rendering.recommendations_for(customer_ids) if uses_recommendations(campaign) else {}

    # Checked again at send time: consent can be withdrawn after the snapshot.
    skip = {}
    for m in messages:
        reason = _skip_reason_now(m.customer, campaign.sends_email)
        if reason:
            skip.setdefault(reason, []).append(m.pk)
    for reason, pks in skip.items():
        result.skipped += Message.objects.filter(pk__in=pks, claim_token=token).update(
            status=MessageStatus.SKIPPED, skip_reason=reason, claim_token="")
    messages = [m for m in messages if m.pk not in {pk for pks in skip.values() for pk in pks}]

    transport = Transport()
    raw = None
    outside_atomic = not connection.in_atomic_block
    if _pg() and outside_atomic:
        connection.ensure_connection()
        raw = connection.connection.cursor()   # the DB-API cursor: no wrapper between "." and the commit
        if not settings.CAMPAIGN_SEND_SYNCHRONOUS_COMMIT:
            raw.execute("SET synchronous_commit TO off")

    def marker(message: Message):
        params = (message.pk, token)
        # Formatted now, so that after the "." only the send of ready bytes remains.
        ready = raw.mogrify(_SENT_SQL_PG, params) if raw is not None else None

        def mark_sent() -> None:
            if ready is not None:
                raw.execute(ready)
                return
            with connection.cursor() as cur:
                cur.execute(_SENT_SQL, [connection.ops.adapt_datetimefield_value(timezone.now()), *params])
        return mark_sent

    try:
        if messages:
            transport.open()
        for index, message in enumerate(messages):
            pacer.wait()
            prepared = prepare(campaign=campaign, message=message, customer=message.customer,
                               memberships=memberships.get(message.customer_id, []),
                               coupon=coupons.get(message.customer_id), recommendations=recs.get(message.customer_id))
            mark_sent = marker(message)
            try:
                transport.deliver(prepared, mark_sent)
                result.sent += 1
            except PermanentFailure as exc:
                now = timezone.now()
                Message.objects.filter(pk=message.pk, claim_token=token).update(
                    status=MessageStatus.FAILED, error=str(exc)[:1000], sent_at=None, claim_token="")
                result.failed += 1
            except ConnectionLost as exc:
                # The rest of the batch was not handed over: retry it later. This message too,
                # flagged uncertain when only the server's reply to its "." was lost.
                now = timezone.now()
                if exc.after_data:
                    Message.objects.filter(pk=message.pk, claim_token=token).update(uncertain=True)
                for rest in messages[index:]:
                    outcome = _retry_or_fail(rest, token, f"connection: {exc}", now)
                    setattr(result, outcome, getattr(result, outcome) + 1)
                result.errors.append(str(exc))
                return
            except TemporaryFailure as exc:
                outcome = _retry_or_fail(message, token, str(exc), timezone.now())
                setattr(result, outcome, getattr(result, outcome) + 1)
    except ConnectionLost as exc:   # could not open the connection at all
        now = timezone.now()
        for rest in messages:
            outcome = _retry_or_fail(rest, token, f"connection: {exc}", now)
            setattr(result, outcome, getattr(result, outcome) + 1)
        result.errors.append(str(exc))
    finally:
        transport.close()
        if raw is not None:
            try:
                raw.execute("RESET synchronous_commit")
            finally:
                raw.close()


def test_send(*, campaign: Campaign, to: str, customer, variant=None) -> None:
    """Send the campaign's content, rendered for `customer`, to a staff address (subject
    prefixed [TEST]); nothing is recorded against the customer."""
    fake = Message(pk=0, campaign=campaign, customer=customer, variant=variant)
    memberships = list(Membership.objects.filter(customer=customer).select_related("tier", "dimension")
                       .order_by("dimension__order"))
    coupon = Coupon.objects.filter(campaign=campaign, customer=customer).first() or _sample_coupon(campaign, customer)
    recs = rendering.recommendations_for([customer.pk]).get(customer.pk, [])
    build_email(campaign=campaign, message=fake, customer=customer, memberships=memberships, coupon=coupon,
                recommendations=recs, test_to=to).send()


def _sample_coupon(campaign: Campaign, customer):
    if not campaign.gives_coupon:
        return None
    now = timezone.now()
    return Coupon(code="PREVIEW0000", customer=customer, campaign=campaign, discount=campaign.coupon_discount,
                  value=campaign.coupon_value, min_basket=campaign.coupon_min_basket, currency=settings.CURRENCY,
                  valid_from=now, expires_at=now + timedelta(days=campaign.coupon_valid_days))

