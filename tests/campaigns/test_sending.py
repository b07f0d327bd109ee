"""Sending over a real SMTP server (aiosmtpd): retries, permanent failures, half-failed batches,
never twice; lifecycle pause/resume/cancel."""
import collections

import pytest
from aiosmtpd.controller import Controller

from campaigns import sending
from campaigns.models import Campaign, Message
from campaigns.services import campaign_cancel, campaign_pause, campaign_resume, campaign_start
from crm.core.errors import ApplicationError
from tests.campaigns import factories as f
from tests.campaigns.smtp_sink import free_port

pytestmark = pytest.mark.django_db


class Server:
    """Accepts everything except: `temporary` recipients get 451 on their first try(s), `permanent`
    get 550, and the connection drops after `drop_after` messages (once)."""

    def __init__(self):
        self.received = []
        self.temporary: dict[str, int] = {}
        self.permanent: set[str] = set()
        self.drop_after: int | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.permanent:
            return "550 5.1.1 no such user"
        if self.temporary.get(address, 0) > 0:
            self.temporary[address] -= 1
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.drop_after is not None and len(self.received) >= self.drop_after:
            self.drop_after = None
            server.transport.close()
            return "421 closing"
        self.received.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def smtp(settings):
    handler = Server()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.CAMPAIGN_RETRY_BACKOFF_SECONDS = 0
    settings.CAMPAIGN_MAX_ATTEMPTS = 3
    settings.CAMPAIGN_SEND_BATCH_SIZE = 5
    yield handler
    controller.stop()


def test_temporary_errors_retry_and_permanent_ones_fail_with_the_reason(smtp, run_commits):
    people = f.customers(8, prefix="s")
    smtp.temporary = {"s1@example.com": 1, "s2@example.com": 99}
    smtp.permanent = {"s3@example.com"}
    campaign = f.campaign()
    run_commits(campaign_start, campaign=campaign)
    by = {m.customer.email: m for m in Message.objects.filter(campaign=campaign).select_related("customer")}
    assert by["s1@example.com"].status == "sent" and by["s1@example.com"].attempts == 2
    assert by["s2@example.com"].status == "failed" and "gave up after 3 attempts: 451" in by["s2@example.com"].error
    assert by["s3@example.com"].status == "failed" and by["s3@example.com"].error.startswith("550")
    counts = collections.Counter(smtp.received)
    assert set(counts.values()) == {1} and len(counts) == len(people) - 2
    assert Campaign.objects.get(pk=campaign.pk).status == "sent"


def test_a_batch_that_fails_halfway_resends_only_what_did_not_go(smtp, run_commits):
    f.customers(12, prefix="h")
    smtp.drop_after = 3          # the server hangs up after the 4th message's data, without a reply
    campaign = f.campaign()
    run_commits(campaign_start, campaign=campaign)
    counts = collections.Counter(smtp.received)
    assert len(counts) == 12 and set(counts.values()) == {1}
    assert Message.objects.filter(campaign=campaign, status="sent").count() == 12
    # the one whose reply was lost was retried, and is flagged as possibly delivered twice
    assert list(Message.objects.filter(campaign=campaign, uncertain=True).values_list("customer__email", flat=True)) == [
        "h3@example.com"]
    # a message marked sent is never sent again
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    assert sending.send_batch(campaign_id=campaign.pk).claimed == 0
    assert len(smtp.received) == 12


def test_unsubscribed_after_the_snapshot_is_not_sent(smtp, run_commits):
    from django.utils import timezone

    from accounts.models import Customer
    people = f.customers(3, prefix="late")
    campaign = f.campaign()
    campaign_pause_after_snapshot = campaign_start(campaign=campaign)   # on-commit sends not run yet
    Customer.objects.filter(pk=people[0].pk).update(unsubscribed_at=timezone.now())
    run_commits(lambda: None)
    sending.send_batch(campaign_id=campaign_pause_after_snapshot.pk)
    assert smtp.received == ["late1@example.com", "late2@example.com"]
    assert Message.objects.get(campaign=campaign, customer=people[0]).skip_reason == "unsubscribed"


def test_pause_resume_cancel(smtp, run_commits):
    f.customers(10, prefix="p")
    campaign = f.campaign()
    campaign = campaign_start(campaign=campaign)      # sends are queued on commit (not run here)
    campaign_pause(campaign=campaign)
    assert sending.send_batch(campaign_id=campaign.pk).claimed == 0   # paused: nothing goes
    with pytest.raises(ApplicationError):
        campaign_pause(campaign=campaign)
    run_commits(campaign_resume, campaign=campaign)
    assert len(smtp.received) == 10 and Campaign.objects.get(pk=campaign.pk).status == "sent"
    with pytest.raises(ApplicationError):
        campaign_cancel(campaign=campaign)


def test_cancel_cancels_queued_messages(smtp):
    f.customers(4, prefix="x")
    campaign = campaign_start(campaign=f.campaign())
    campaign_cancel(campaign=campaign)
    assert sending.send_batch(campaign_id=campaign.pk).claimed == 0
    assert set(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) == {"cancelled"}


def test_dead_claims_are_taken_back_and_the_first_is_flagged_uncertain(smtp, settings):
    from datetime import timedelta

    from django.utils import timezone
    f.customers(6, prefix="d")
    campaign = campaign_start(campaign=f.campaign())
    token, ids = sending.claim_batch(campaign_id=campaign.pk, size=3)
    sending.release_claim_lock(token)       # the claimer "dies": its lock is gone
    later = timezone.now() + timedelta(seconds=settings.CAMPAIGN_CLAIM_LEASE_SECONDS + 1)
    assert sending.claims_recover(campaign_id=campaign.pk, now=later) == 3
    assert list(Message.objects.filter(campaign=campaign, uncertain=True).values_list("pk", flat=True)) == [ids[0]]
    assert not Message.objects.filter(campaign=campaign, status="sending").exists()


def test_rate_limit_paces_messages(smtp, run_commits, settings):
    """CAMPAIGN_SEND_RATE=50/s: 10 messages take at least 9 intervals of 20 ms."""
    import time

    settings.CAMPAIGN_SEND_RATE = 50
    f.customers(10, prefix="rate")
    t = time.monotonic()
    run_commits(campaign_start, campaign=f.campaign())
    assert time.monotonic() - t >= 0.18 and len(smtp.received) == 10
