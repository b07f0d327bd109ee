"""Triggers: on entering a tier (once per customer unless re-entry is allowed), scheduled once,
recurring (django-celery-beat)."""
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Message
from campaigns.services import campaign_fire_recurring, campaign_schedule, campaigns_sweep
from segmentation.models import TierChange
from segmentation.signals import tiers_changed
from tests.campaigns import factories as f

pytestmark = pytest.mark.django_db


def _enter(customers, tier, from_tier=None):
    now = timezone.now()
    ids = [TierChange.objects.create(customer=c, dimension=tier.dimension, from_tier=from_tier, to_tier=tier, at=now).pk
           for c in customers]
    tiers_changed.send(sender=None, run_id=None, changes=TierChange.objects.filter(pk__in=ids))


def test_entering_a_tier_fires_once_per_customer(run_commits, mailoutbox):
    silent, active = f.tier("behaviour", "silent"), f.tier("behaviour", "active")
    a, b = f.customers(2, prefix="t", in_tier=silent)
    campaign = f.campaign(tiers=[], trigger="tier_entry", entry_tier=silent, holdout_percent=0)
    run_commits(campaign_schedule, campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == "sending"        # armed
    assert not Message.objects.exists()        # nobody gets it for being there already

    run_commits(_enter, [a], silent, active)
    run_commits(_enter, [a, b], silent, active)   # a re-enters: no second message
    assert Message.objects.filter(campaign=campaign).count() == 2
    assert sorted(m.to[0] for m in mailoutbox) == ["t0@example.com", "t1@example.com"]
    # other tiers' changes do not fire it
    run_commits(_enter, [a], active, silent)
    assert Message.objects.filter(campaign=campaign).count() == 2


def test_reentry_allowed_sends_again(run_commits, mailoutbox):
    silent = f.tier("behaviour", "silent")
    (a,) = f.customers(1, prefix="re", in_tier=silent)
    campaign = f.campaign(tiers=[], trigger="tier_entry", entry_tier=silent, allow_reentry=True)
    run_commits(campaign_schedule, campaign=campaign)
    run_commits(_enter, [a], silent)
    run_commits(_enter, [a], silent)
    assert Message.objects.filter(campaign=campaign, status="sent").count() == 2
    assert len(mailoutbox) == 2


def test_scheduled_once_starts_when_due(run_commits, mailoutbox, settings):
    f.customers(2, prefix="once")
    campaign = f.campaign()
    later = timezone.now() + timedelta(hours=1)
    campaign = campaign_schedule(campaign=campaign, send_at=later)
    assert campaign.status == "scheduled" and campaign.trigger == "once"
    run_commits(campaigns_sweep, now=timezone.now())
    assert Campaign.objects.get(pk=campaign.pk).status == "scheduled"
    run_commits(campaigns_sweep, now=later + timedelta(seconds=1))
    assert Campaign.objects.get(pk=campaign.pk).status == "sent" and len(mailoutbox) == 2


def test_recurring_creates_a_periodic_task_and_one_run_per_tick(run_commits, mailoutbox):
    f.customers(2, prefix="rec")
    campaign = f.campaign(trigger="recurring", cron="0 9 * * 1")
    campaign = run_commits(campaign_schedule, campaign=campaign)
    task = campaign.periodic_task
    assert task.task == "campaigns.tasks.campaign_fire_recurring" and task.crontab.hour == "9"
    tick = timezone.now()
    first = run_commits(campaign_fire_recurring, campaign_id=campaign.pk, now=tick)
    again = run_commits(campaign_fire_recurring, campaign_id=campaign.pk, now=tick)
    first.refresh_from_db()
    assert first.pk == again.pk and first.parent_id == campaign.pk and first.status == "sent"
    assert len(mailoutbox) == 2
