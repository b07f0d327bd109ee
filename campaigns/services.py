"""Campaign use cases: create and edit, schedule, start (the audience snapshot), pause, resume,
cancel, finish; triggers (once, recurring, on entering a tier); preview and test send.

Every status change goes through one function here, which locks the campaign row
(SELECT ... FOR UPDATE) and checks the transition, so two requests (or a request and a
task) cannot both start or finish a campaign. Tasks are enqueued after commit.

    draft -> scheduled -> sending -> sent
                 |           |  ^
                 |           v  |
                 |         paused           (any but sent) -> cancelled
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from crm.core.errors import ApplicationError, InvalidInput

from . import rendering
from .audience import snapshot
from .choices import CampaignStatus, MessageStatus, TriggerKind
from .coupons import coupons_issue_for_campaign
from .models import Campaign, Message, Variant

logger = logging.getLogger(__name__)

EDITABLE = (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)
CONTENT_FIELDS = ("subject", "html_body", "text_body")
CAMPAIGN_FIELDS = ("name", "description", "kind", "segment", "segment_id", "holdout_percent", "trigger", "send_at",
                   "cron", "entry_tier", "entry_tier_id", "allow_reentry", "from_email", "subject", "html_body",
                   "text_body", "winner_metric", "coupon_discount", "coupon_value", "coupon_min_basket",
                   "coupon_valid_days", "coupon_uses")


class CampaignStateError(ApplicationError):
    code, http_status = "campaign_bad_state", 409

    def __init__(self, message: str, *, campaign: Campaign):
        super().__init__(message, extra={"campaign_id": campaign.pk, "status": campaign.status})


# --- validation, create, update -------------------------------------------------------------------


def campaign_validate(*, campaign: Campaign, variants: list[dict] | None = None) -> None:
    """Templates compile (errors name the line), the trigger has what it needs, the audience
    is set, the coupon policy is sound. Raises InvalidInput with `extra.fields`."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    for name in CONTENT_FIELDS:
        try:
            rendering.template_check(getattr(campaign, name), field=name, html=name == "html_body")
        except ValidationError as exc:
            for field, msgs in exc.message_dict.items():
                for m in msgs:
                    add(field, m)
    if variants is None and campaign.pk:
        variants = list(campaign.variants.values("name", "weight", *CONTENT_FIELDS))
    for i, v in enumerate(variants or []):
        for name in CONTENT_FIELDS:
            try:
                rendering.template_check(v.get(name, ""), field=f"variants[{i}].{name}", html=name == "html_body")
            except ValidationError as exc:
                for field, msgs in exc.message_dict.items():
                    for m in msgs:
                        add(field, m)
    if campaign.sends_email and not campaign.subject.strip() and not all((v.get("subject") or "").strip() for v in variants or [{}]):
        add("subject", "An e-mail campaign needs a subject.")
    if campaign.sends_email and not (campaign.text_body.strip() or campaign.html_body.strip()):
        add("text_body", "An e-mail campaign needs a text or an HTML body.")
    if campaign.gives_coupon and campaign.coupon_value <= 0:
        add("coupon_value", "A coupon campaign needs a discount above 0.")
    if campaign.gives_coupon and campaign.coupon_discount == "percent" and campaign.coupon_value > 100:
        add("coupon_value", "A percentage cannot exceed 100.")
    if campaign.trigger == TriggerKind.ONCE and campaign.send_at is None:
        add("send_at", "A campaign scheduled once needs a send time.")
    if campaign.trigger == TriggerKind.RECURRING:
        if len(campaign.cron.split()) != 5:
            add("cron", "Give five fields: minute hour day-of-month month day-of-week (e.g. '0 9 * * 1').")
    if campaign.trigger == TriggerKind.TIER_ENTRY and not campaign.entry_tier_id:
        add("entry_tier", "Choose the tier whose new members get the campaign.")
    has_tiers = campaign.pk and campaign.tiers.exists()
    if campaign.trigger != TriggerKind.TIER_ENTRY and not has_tiers and not campaign.segment_id:
        add("tiers", "Choose one or more tiers and/or a segment.")
    if not (0 <= campaign.holdout_percent <= 90):
        add("holdout_percent", "Between 0 and 90.")
    if variants:
        if len({v["name"] for v in variants}) != len(variants):
            add("variants", "Variant names must differ.")
        if any(not (1 <= int(v.get("weight") or 0) <= 100) for v in variants):
            add("variants", "Each split must be 1 to 100.")
    if errors:
        raise InvalidInput("The campaign is not valid.", extra={"fields": errors})


def _set_variants(campaign: Campaign, variants: list[dict]) -> None:
    campaign.variants.all().delete()
    Variant.objects.bulk_create([Variant(campaign=campaign, name=v["name"], weight=int(v.get("weight") or 50),
                                         **{f: v.get(f, "") or "" for f in CONTENT_FIELDS}) for v in variants])


@transaction.atomic
def campaign_create(*, by=None, tiers=(), variants: list[dict] | None = None, **fields) -> Campaign:
    """A new draft. Templates are checked now (errors name the line)."""
    unknown = set(fields) - set(CAMPAIGN_FIELDS)
    if unknown:
        raise InvalidInput("Unknown fields.", extra={"fields": {f: ["Unknown field."] for f in sorted(unknown)}})
    campaign = Campaign(created_by=by if getattr(by, "pk", None) else None, **fields)
    campaign.save()
    campaign.tiers.set(tiers)
    campaign_validate(campaign=campaign, variants=variants)
    if variants:
        _set_variants(campaign, variants)
    return campaign


@transaction.atomic
def campaign_update(*, campaign: Campaign, tiers=None, variants: list[dict] | None = None, **fields) -> Campaign:
    """Edit a draft or scheduled campaign (a running one keeps the content it started with)."""
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if locked.status not in EDITABLE:
        raise CampaignStateError("Only draft or scheduled campaigns can be edited.", campaign=locked)
    unknown = set(fields) - set(CAMPAIGN_FIELDS)
    if unknown:
        raise InvalidInput("Unknown fields.", extra={"fields": {f: ["Unknown field."] for f in sorted(unknown)}})
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.save()
    if tiers is not None:
        locked.tiers.set(tiers)
    campaign_validate(campaign=locked, variants=variants)
    if variants is not None:
        _set_variants(locked, variants)
    return locked


# --- lifecycle ----------------------------------------------------------------------------------------


def _lock(campaign: Campaign | int) -> Campaign:
    pk = campaign.pk if isinstance(campaign, Campaign) else campaign
    return Campaign.objects.select_for_update().get(pk=pk)


def _cron_schedule(cron: str):
    from django_celery_beat.models import CrontabSchedule

    minute, hour, dom, month, dow = cron.split()
    schedule, _ = CrontabSchedule.objects.get_or_create(minute=minute, hour=hour, day_of_month=dom,
                                                         month_of_year=month, day_of_week=dow, timezone="UTC")
    return schedule


@transaction.atomic
def campaign_schedule(*, campaign: Campaign, send_at: datetime | None = None, by=None) -> Campaign:
    """Draft -> scheduled. Once: a start task with an ETA (the sweep also starts overdue ones).
    Recurring: a django-celery-beat PeriodicTask (editable in the admin). Tier entry: armed
    at once (status sending: every new member of the tier gets it)."""
    c = _lock(campaign)
    if c.status != CampaignStatus.DRAFT:
        raise CampaignStateError("Only a draft can be scheduled.", campaign=c)
    if send_at is not None:
        c.send_at = send_at
        if c.trigger == TriggerKind.MANUAL:
            c.trigger = TriggerKind.ONCE
    if c.trigger == TriggerKind.MANUAL:
        raise InvalidInput("Choose a trigger (once with a send time, recurring, or on entering a tier).",
                           extra={"fields": {"trigger": ["Choose a trigger."]}})
    campaign_validate(campaign=c)
    if c.trigger == TriggerKind.TIER_ENTRY:
        c.status, c.started_at = CampaignStatus.SENDING, timezone.now()
        c.save(update_fields=["status", "started_at", "send_at", "trigger", "updated_at"])
        return c
    c.status = CampaignStatus.SCHEDULED
    if c.trigger == TriggerKind.RECURRING:
        from django_celery_beat.models import PeriodicTask

        task, _ = PeriodicTask.objects.update_or_create(
            name=f"Campaign {c.pk}: {c.name}"[:200],
            defaults={"task": "campaigns.tasks.campaign_fire_recurring", "args": f"[{c.pk}]",
                      "crontab": _cron_schedule(c.cron), "interval": None, "enabled": True,
                      "description": "Runs the recurring campaign: a new run with its own audience snapshot."})
        c.periodic_task = task
    c.save(update_fields=["status", "send_at", "trigger", "periodic_task", "updated_at"])
    if c.trigger == TriggerKind.ONCE:
        from .tasks import campaign_start as start_task

        pk, eta = c.pk, c.send_at
        transaction.on_commit(lambda: start_task.apply_async((pk,), eta=eta))
    return c


def campaign_start(*, campaign: Campaign | int, now: datetime | None = None) -> Campaign:
    """Start sending: snapshot the audience (Message rows, set-based), issue coupons, then
    enqueue the send tasks after commit. Idempotent: a campaign already started is returned
    as it is, and the snapshot never writes a second row for a customer."""
    now = now or timezone.now()
    with transaction.atomic():
        c = _lock(campaign)
        if c.status not in EDITABLE:
            return c
        if c.trigger == TriggerKind.RECURRING and c.parent_id is None:
            raise CampaignStateError("A recurring campaign runs on its schedule: schedule it.", campaign=c)
        campaign_validate(campaign=c)
        c.status, c.started_at = CampaignStatus.SENDING, now
        c.save(update_fields=["status", "started_at", "updated_at"])
        if c.trigger == TriggerKind.TIER_ENTRY:
            return c
        inserted = snapshot(c, now=now)
        _after_snapshot(c, now)
        logger.info("campaign_started campaign=%s rows=%s", c.pk, inserted)
        campaign_dispatch(campaign_id=c.pk)
    return c


def _after_snapshot(c: Campaign, now: datetime) -> None:
    if c.gives_coupon:
        coupons_issue_for_campaign(campaign=c, now=now)
    if not c.sends_email:  # coupon only: the coupon is delivered into the customer's account
        Message.objects.filter(campaign=c, status=MessageStatus.QUEUED).update(status=MessageStatus.SENT, sent_at=now)


def campaign_dispatch(*, campaign_id: int, chains: int | None = None) -> None:
    """Enqueue send tasks for the campaign after commit: CAMPAIGN_SEND_CONCURRENCY parallel
    chains of batches (one when tasks run in process). Extra chains are harmless: each claims
    its own rows and ends when none are left."""
    from .tasks import send_campaign_batches

    n = 1 if settings.CELERY_TASK_ALWAYS_EAGER else (chains or settings.CAMPAIGN_SEND_CONCURRENCY)
    transaction.on_commit(lambda: [send_campaign_batches.delay(campaign_id) for _ in range(max(1, n))])


def campaign_send_batches(*, campaign_id: int, budget_seconds: float | None = None) -> int:
    """Send batches until none is due or the time budget is spent (then hand over to a new
    task). Finishes the campaign when nothing is left. Returns messages sent."""
    from . import sending
    from .tasks import send_campaign_batches

    budget = settings.CAMPAIGN_SEND_TASK_SECONDS if budget_seconds is None else budget_seconds
    deadline = time.monotonic() + budget
    pacer = sending._Pacer(settings.CAMPAIGN_SEND_RATE)
    sent = 0
    while True:
        result = sending.send_batch(campaign_id=campaign_id, pacer=pacer)
        sent += result.sent
        if not result.claimed:
            break
        if result.errors and not (result.sent or result.failed):
            break   # the server is unreachable: the sweep or a retry comes back later
        if not settings.CELERY_TASK_ALWAYS_EAGER and time.monotonic() > deadline:
            send_campaign_batches.delay(campaign_id)
            return sent
    campaign_finish_if_done(campaign_id=campaign_id)
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        wait = (Message.objects.filter(campaign_id=campaign_id, status=MessageStatus.QUEUED,
                                       next_attempt_at__isnull=False)
                .order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first())
        if wait is not None:
            send_campaign_batches.apply_async((campaign_id,), eta=max(wait, timezone.now()))
    return sent


def campaign_finish_if_done(*, campaign_id: int) -> bool:
    """Sending -> sent when no message is queued or in flight (tier-entry campaigns stay armed)."""
    open_rows = Q(status__in=[MessageStatus.QUEUED, MessageStatus.SENDING])
    if Message.objects.filter(open_rows, campaign_id=campaign_id).exists():
        return False
    with transaction.atomic():
        c = _lock(campaign_id)
        if c.status != CampaignStatus.SENDING or c.trigger == TriggerKind.TIER_ENTRY:
            return False
        if Message.objects.filter(open_rows, campaign_id=campaign_id).exists():
            return False
        c.status, c.finished_at = CampaignStatus.SENT, timezone.now()
        c.save(update_fields=["status", "finished_at", "updated_at"])
    if c.variants.exists():
        from .results import campaign_pick_winner

        campaign_pick_winner(campaign=c)
    logger.info("campaign_sent campaign=%s", campaign_id)
    return True


@transaction.atomic
def campaign_pause(*, campaign: Campaign) -> Campaign:
    """Sending -> paused: workers stop after the batch in hand."""
    c = _lock(campaign)
    if c.status != CampaignStatus.SENDING:
        raise CampaignStateError("Only a sending campaign can be paused.", campaign=c)
    c.status = CampaignStatus.PAUSED
    c.save(update_fields=["status", "updated_at"])
    return c


def campaign_resume(*, campaign: Campaign) -> Campaign:
    """Paused -> sending (or a sending campaign whose worker died): take back dead claims and
    enqueue send tasks."""
    from .sending import claims_recover

    with transaction.atomic():
        c = _lock(campaign)
        if c.status not in (CampaignStatus.PAUSED, CampaignStatus.SENDING):
            raise CampaignStateError("Only a paused or sending campaign can be resumed.", campaign=c)
        if c.status == CampaignStatus.PAUSED:
            c.status = CampaignStatus.SENDING
            c.save(update_fields=["status", "updated_at"])
    claims_recover(campaign_id=c.pk)
    with transaction.atomic():
        campaign_dispatch(campaign_id=c.pk)
    return c


@transaction.atomic
def campaign_cancel(*, campaign: Campaign) -> Campaign:
    """Any status but sent -> cancelled: queued messages are cancelled (messages in flight finish)."""
    c = _lock(campaign)
    if c.status in (CampaignStatus.SENT, CampaignStatus.CANCELLED):
        raise CampaignStateError("This campaign is already over.", campaign=c)
    c.status, c.finished_at = CampaignStatus.CANCELLED, timezone.now()
    c.save(update_fields=["status", "finished_at", "updated_at"])
    Message.objects.filter(campaign=c, status=MessageStatus.QUEUED).update(status=MessageStatus.CANCELLED)
    if c.periodic_task_id:
        c.periodic_task.delete()
    return c


# --- triggers -------------------------------------------------------------------------------------------


def campaign_fire_recurring(*, campaign_id: int, now: datetime | None = None) -> Campaign | None:
    """One run of a recurring campaign: a child campaign (own snapshot, own results) made from
    it and started. A beat tick delivered twice makes one run (unique parent + minute)."""
    now = now or timezone.now()
    parent = Campaign.objects.filter(pk=campaign_id).first()
    if parent is None or parent.status != CampaignStatus.SCHEDULED or parent.trigger != TriggerKind.RECURRING:
        return None
    key = now.strftime("%Y%m%d%H%M")
    try:
        with transaction.atomic():
            run = Campaign.objects.create(
                parent=parent, occurrence_key=key, trigger=TriggerKind.MANUAL, status=CampaignStatus.DRAFT,
                **{f: getattr(parent, f) for f in CAMPAIGN_FIELDS
                   if f not in ("name", "trigger", "send_at", "cron", "segment", "entry_tier")},
                name=f"{parent.name} ({now:%Y-%m-%d %H:%M})", created_by=parent.created_by)
            run.tiers.set(parent.tiers.all())
            _set_variants(run, list(parent.variants.values("name", "weight", *CONTENT_FIELDS)))
    except IntegrityError:
        return Campaign.objects.get(parent=parent, occurrence_key=key)
    return campaign_start(campaign=run, now=now)


def on_tiers_changed(sender=None, changes=None, **kwargs) -> None:
    """segmentation.signals.tiers_changed receiver: customers who entered a tier get the armed
    tier-entry campaigns of that tier (at most once per campaign unless re-entry is allowed)."""
    from .models import Campaign as C

    if changes is None:
        return
    entered = set(changes.values_list("to_tier_id", flat=True).distinct())
    armed = C.objects.filter(trigger=TriggerKind.TIER_ENTRY, entry_tier_id__in=entered,
                             status__in=[CampaignStatus.SENDING, CampaignStatus.PAUSED])
    for campaign in armed:
        try:
            campaign_trigger_entries(campaign=campaign, changes=changes)
        except Exception as exc:  # one campaign's failure must not stop the others; it is recorded
            logger.exception("campaign_trigger_failed campaign=%s", campaign.pk)
            C.objects.filter(pk=campaign.pk).update(last_error=f"trigger: {type(exc).__name__}: {exc}"[:2000])


def campaign_trigger_entries(*, campaign: Campaign, changes, now: datetime | None = None) -> int:
    """Write messages for the customers that `changes` brought into the campaign's entry tier
    (set-based; existing keys are kept) and enqueue sending. Returns rows written."""
    now = now or timezone.now()
    with transaction.atomic():
        c = _lock(campaign)
        if c.status not in (CampaignStatus.SENDING, CampaignStatus.PAUSED):
            return 0
        inserted = snapshot(c, now=now, entry_changes=changes)
        if inserted:
            _after_snapshot(c, now)
            if c.status == CampaignStatus.SENDING:
                campaign_dispatch(campaign_id=c.pk, chains=1)
    logger.info("campaign_tier_entry campaign=%s rows=%s", campaign.pk, inserted)
    return inserted


def campaigns_sweep(*, now: datetime | None = None, force: bool = False) -> dict:
    """Housekeeping (beat, every minute; every worker start with force=True): start overdue
    scheduled-once campaigns, take back dead claims, and re-enqueue sending campaigns that have
    due work and no recent progress (or always, when forced)."""
    from .sending import claims_recover

    now = now or timezone.now()
    started = 0
    for c in Campaign.objects.filter(status=CampaignStatus.SCHEDULED, trigger=TriggerKind.ONCE, send_at__lte=now):
        campaign_start(campaign=c, now=now)
        started += 1
    recovered, dispatched = 0, 0
    for c in Campaign.objects.filter(status=CampaignStatus.SENDING):
        got = claims_recover(campaign_id=c.pk, now=now)
        recovered += got
        due = Message.objects.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
                                     campaign=c, status=MessageStatus.QUEUED)
        if not due.exists():
            campaign_finish_if_done(campaign_id=c.pk)
            continue
        recent = Message.objects.filter(Q(claimed_at__gte=now - timedelta(seconds=30))
                                        | Q(sent_at__gte=now - timedelta(seconds=30)), campaign=c).exists()
        if force or got or not recent:
            with transaction.atomic():
                campaign_dispatch(campaign_id=c.pk, chains=1)
            dispatched += 1
    return {"started": started, "recovered": recovered, "dispatched": dispatched}


# --- reading and trying ---------------------------------------------------------------------------------


def campaign_counts(*, campaign: Campaign) -> dict:
    """{"audience", "holdout", "skipped", "sent", "failed"}: the run_campaign summary."""
    by_status = dict(Message.objects.filter(campaign=campaign).values("status").annotate(n=Count("id"))
                     .values_list("status", "n"))
    return {"audience": sum(by_status.values()), "holdout": by_status.get(MessageStatus.HOLDOUT, 0),
            "skipped": by_status.get(MessageStatus.SKIPPED, 0), "sent": by_status.get(MessageStatus.SENT, 0),
            "failed": by_status.get(MessageStatus.FAILED, 0)}


def campaign_is_done(*, campaign: Campaign) -> bool:
    return not Message.objects.filter(campaign=campaign,
                                      status__in=[MessageStatus.QUEUED, MessageStatus.SENDING]).exists()


def campaign_preview(*, campaign: Campaign, customer, variant: Variant | None = None) -> dict:
    """The message `customer` would get: subject, text, HTML and the (plain-values) context."""
    from segmentation.models import Membership

    from .models import Coupon
    from .sending import _sample_coupon, content_for

    memberships = list(Membership.objects.filter(customer=customer).select_related("tier", "dimension")
                       .order_by("dimension__order"))
    coupon = Coupon.objects.filter(campaign=campaign, customer=customer).first() or _sample_coupon(campaign, customer)
    recs = rendering.recommendations_for([customer.pk]).get(customer.pk, [])
    context = rendering.message_context(customer=customer, campaign_name=campaign.name, tiers=memberships,
                                        coupon=coupon, recommendations=recs,
                                        unsubscribe_url=f"{settings.CAMPAIGN_BASE_URL}/t/u/preview/")
    content = content_for(campaign, variant)
    rendered = rendering.render_message(subject=content.subject, text_body=content.text, html_body=content.html,
                                        context=context)
    return {"subject": rendered.subject, "text": rendered.text, "html": rendered.html, "context": context}


def campaign_test_send(*, campaign: Campaign, to: str, customer, variant: Variant | None = None) -> None:
    """Send the preview for `customer` to a staff address, subject prefixed [TEST]."""
    from django.core.validators import validate_email

    from .sending import test_send

    try:
        validate_email(to)
    except ValidationError:
        raise InvalidInput("Give a valid e-mail address.", extra={"fields": {"to": ["Enter a valid e-mail address."]}}) from None
    test_send(campaign=campaign, to=to, customer=customer, variant=variant)
