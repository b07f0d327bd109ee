"""Celery tasks: thin wrappers of services. Tasks named send_* go to the "send" queue
(crm/celery.py); the others to "default". Every task is safe to run twice."""
from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True, soft_time_limit=600, time_limit=660)
def campaign_start(campaign_id: int) -> None:
    """Start a scheduled campaign (its ETA arrived). Idempotent: a started campaign is left as is."""
    from .models import Campaign
    from .services import campaign_start as start

    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is not None:
        start(campaign=campaign)


@shared_task(ignore_result=True, soft_time_limit=300, time_limit=330)
def send_campaign_batches(campaign_id: int) -> int:
    """Send batches of the campaign for up to CAMPAIGN_SEND_TASK_SECONDS, then hand over.

    No acks_late: a message is never re-sent because a task is redelivered; claims of a task
    whose worker died are taken back by the sweep (see campaigns/sending.py)."""
    from .services import campaign_send_batches

    return campaign_send_batches(campaign_id=campaign_id)


@shared_task(ignore_result=True, soft_time_limit=600, time_limit=660)
def campaign_fire_recurring(campaign_id: int) -> None:
    """Beat: one run of a recurring campaign."""
    from .services import campaign_fire_recurring as fire

    fire(campaign_id=campaign_id)


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def campaigns_sweep(force: bool = False) -> dict:
    """Beat (every minute) and every worker start: overdue starts, dead claims, stalled sends."""
    from .services import campaigns_sweep as sweep

    return sweep(force=force)
