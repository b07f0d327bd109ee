"""The audience snapshot: exclusions, holdout, idempotency."""
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import Customer
from campaigns.audience import audience_estimate, bucket
from campaigns.choices import MessageStatus
from campaigns.models import Message
from campaigns.services import campaign_counts, campaign_start
from tests.campaigns import factories as f

pytestmark = pytest.mark.django_db


def _status(campaign, customer):
    return Message.objects.values_list("status", "skip_reason").get(campaign=campaign, customer=customer)


def test_exclusions_are_recorded_with_their_reason_and_get_nothing(run_commits, settings):
    """No consent, unsubscribed, erased and over-the-cap customers are skipped with the reason."""
    settings.CAMPAIGN_FREQUENCY_CAP = 2
    ok, no_consent, unsub, erased, capped, no_email = f.customers(6)
    Customer.objects.filter(pk=no_consent.pk).update(marketing_consent=False)
    Customer.objects.filter(pk=unsub.pk).update(unsubscribed_at=timezone.now())
    Customer.objects.filter(pk=erased.pk).update(erased_at=timezone.now())
    Customer.objects.filter(pk=no_email.pk).update(email="")
    earlier = f.campaign(name="earlier")
    for days in (1, 3):
        Message.objects.create(campaign=earlier, customer=capped, status=MessageStatus.SENT, created_at=timezone.now(),
                               sent_at=timezone.now() - timedelta(days=days), trigger_key=str(days))
    # a send 8 days ago no longer counts toward the rolling 7 days
    Message.objects.create(campaign=earlier, customer=ok, status=MessageStatus.SENT, created_at=timezone.now(),
                           sent_at=timezone.now() - timedelta(days=8), trigger_key="x")
    Message.objects.create(campaign=earlier, customer=ok, status=MessageStatus.SENT, created_at=timezone.now(),
                           sent_at=timezone.now() - timedelta(days=9), trigger_key="y")

    campaign = f.campaign()
    run_commits(campaign_start, campaign=campaign)

    assert _status(campaign, ok) == ("sent", "")
    assert _status(campaign, no_consent) == ("skipped", "no_consent")
    assert _status(campaign, unsub) == ("skipped", "unsubscribed")
    assert _status(campaign, erased) == ("skipped", "erased")
    assert _status(campaign, capped) == ("skipped", "frequency_cap")
    assert _status(campaign, no_email) == ("skipped", "no_email")
    assert [m.to for m in mail.outbox] == [[ok.email]]


def test_holdout_is_reproducible_and_about_the_right_share(run_commits):
    """20% holdout: the md5 bucket decides, so the same customers are held out every time."""
    people = f.customers(1000)
    campaign = f.campaign(holdout_percent=20, kind="coupon", coupon_value=10)
    run_commits(campaign_start, campaign=campaign)
    held = set(Message.objects.filter(campaign=campaign, status="holdout").values_list("customer_id", flat=True))
    assert 150 <= len(held) <= 250
    assert held == {c.pk for c in people if bucket("holdout", campaign.pk, c.pk) < 2000}
    # the holdout gets no coupon
    assert not campaign.coupons.filter(customer_id__in=held).exists()
    assert campaign.coupons.count() == 1000 - len(held)


def test_starting_twice_writes_no_extra_rows(run_commits):
    f.customers(30)
    campaign = f.campaign(holdout_percent=10)
    run_commits(campaign_start, campaign=campaign)
    first = campaign_counts(campaign=campaign)
    sent = len(mail.outbox)
    run_commits(campaign_start, campaign=campaign)
    from campaigns.audience import snapshot
    assert snapshot(campaign, now=timezone.now()) == 0   # even the raw snapshot inserts nothing again
    assert campaign_counts(campaign=campaign) == first
    assert Message.objects.filter(campaign=campaign).count() == 30
    assert len(mail.outbox) == sent == first["sent"]


def test_estimate_counts_eligible_and_excluded():
    a, b = f.customers(2)
    Customer.objects.filter(pk=b.pk).update(marketing_consent=False)
    campaign = f.campaign(holdout_percent=50)
    est = audience_estimate(campaign)
    assert est["audience"] == 2 and est["eligible"] == 1 and est["excluded"] == {"no_consent": 1}


def test_segment_and_tiers_intersect():
    from segmentation.models import Segment

    f.customers(3, prefix="s")
    Customer.objects.filter(external_id="s1").update(attributes={"city": "Paris"})
    seg = Segment.objects.create(slug="paris", name="Paris", rule={"field": "attributes.city", "op": "=", "value": "Paris"})
    campaign = f.campaign(segment=seg)
    assert audience_estimate(campaign)["audience"] == 1
