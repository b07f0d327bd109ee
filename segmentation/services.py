"""Segmentation use cases: recompute, overrides, segments, as_of defaults."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import Customer, DataImport
from crm.core.errors import ApplicationError, InvalidInput
from crm.core.locks import single_flight

from . import engine
from .choices import ChangeCause, RunMode, RunStatus
from .models import Dimension, Membership, RecomputeRun, Segment, Tier, TierChange, TierOverride
from .rules import compile_rule
from .signals import tiers_changed

logger = logging.getLogger(__name__)

RECOMPUTE_LOCK = "segmentation.recompute"
LIVE_DATA_WITHIN = timedelta(days=7)


def default_as_of(*, now: datetime | None = None) -> datetime:
    """Now, unless the data ends in the past (imported history): then the end of its last day.

    "Ends in the past" means no customer was seen in the last 7 days. The newest activity
    comes from the customers' last_seen_at (indexed), not from a scan of the events.
    """
    now = now or timezone.now()
    latest = Customer.objects.aggregate(m=Max("last_seen_at"))["m"]
    if latest is None or latest >= now - LIVE_DATA_WITHIN:
        return now
    data_end = DataImport.objects.filter(status="succeeded").aggregate(m=Max("data_end"))["m"]
    end = max(filter(None, [latest, data_end]))
    end_of_day = datetime(end.year, end.month, end.day, tzinfo=end.tzinfo) + timedelta(days=1) - timedelta(microseconds=1)
    return min(end_of_day, now)


class RecomputeFailed(ApplicationError):
    code, http_status = "recompute_failed", 500


def recompute_run_create(*, as_of: datetime | None = None, mode: str = RunMode.FULL, requested_by=None) -> RecomputeRun:
    if mode not in RunMode.values:
        raise InvalidInput(f"Unknown recompute mode '{mode}'; use one of {', '.join(RunMode.values)}.")
    return RecomputeRun.objects.create(as_of=as_of or default_as_of(), mode=mode, requested_by=requested_by)


def _previous_run(as_of: datetime) -> RecomputeRun | None:
    """The run an incremental run starts from: the last one that succeeded, whose tiers the
    tables hold now. None (so a full run) when there is none, or when it was as of a later time
    (a run back in time, after a back-dated import, say, has nothing to be incremental from)."""
    last = (RecomputeRun.objects.filter(status=RunStatus.SUCCEEDED).exclude(score_bounds={})
            .order_by("-finished_at", "-id").first())
    return last if last is not None and last.as_of <= as_of else None


def recompute_tiers(*, run: RecomputeRun, progress=None) -> RecomputeRun:
    """Run a recompute (single-flight). A second concurrent run ends as SKIPPED at once.

    Idempotent: running again with the same as_of records no new changes. Sends
    `tiers_changed` after the run when it recorded changes.
    """
    with single_flight(RECOMPUTE_LOCK) as got:
        if not got:
            # Not a run that is RUNNING: that is the lock holder's own run (a redelivered task).
            RecomputeRun.objects.filter(pk=run.pk).exclude(status=RunStatus.RUNNING).update(
                status=RunStatus.SKIPPED, finished_at=timezone.now(),
                error="Another recompute was running; this one did nothing.")
            run.refresh_from_db()
            return run
        started = timezone.now()
        # Holding the lock, no other run can be in progress: one still marked running was cut
        # short (its worker or database connection died, which released the lock) and says so.
        interrupted = (RecomputeRun.objects.filter(status=RunStatus.RUNNING).exclude(pk=run.pk)
                       .update(status=RunStatus.FAILED, finished_at=started,
                               error=f"Interrupted: its worker stopped before the run finished "
                                     f"(found by run #{run.pk}, which started afresh)."))
        if interrupted:
            logger.warning("tier_recompute_interrupted_runs_closed count=%s by_run=%s", interrupted, run.pk)
        RecomputeRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, started_at=started, stage="", progress=0)

        incremental_from = None
        mode = run.mode
        if mode == RunMode.INCREMENTAL:
            prev = _previous_run(run.as_of)
            if prev is None:
                mode = RunMode.FULL  # nothing to be incremental from
            else:
                incremental_from = {"as_of": prev.as_of, "event_high_water": prev.event_high_water,
                                    "score_bounds": prev.score_bounds, "started_at": prev.started_at}

        def on_stage(name: str, percent: int) -> None:
            RecomputeRun.objects.filter(pk=run.pk).update(stage=name, progress=percent)
            if progress:
                progress(name, percent)

        try:
            result = engine.recompute_pass(as_of=run.as_of, computed_at=started, run_id=run.pk,
                                           incremental_from=incremental_from, on_stage=on_stage)
        except Exception as exc:
            logger.exception("tier_recompute_failed run=%s", run.pk)
            RecomputeRun.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, finished_at=timezone.now(),
                                                          error=f"{type(exc).__name__}: {exc}"[:4000])
            raise
        RecomputeRun.objects.filter(pk=run.pk).update(
            status=RunStatus.SUCCEEDED, mode=mode, finished_at=timezone.now(), stage="done", progress=100,
            customers=result.customers, changes=result.changes,
            timings={**result.timings, "changes_by_dimension": result.changes_by_dimension},
            score_bounds=result.score_bounds, event_high_water=result.event_high_water)
    run.refresh_from_db()
    logger.info("tier_recompute_done run=%s mode=%s customers=%s changes=%s", run.pk, mode, run.customers, run.changes)
    if run.changes:
        # After commit: when a caller wraps the run in its own transaction, receivers (campaign
        # triggers) only see changes that were committed.
        run_id = run.pk
        transaction.on_commit(lambda: tiers_changed.send(sender=RecomputeRun, run_id=run_id,
                                                         changes=TierChange.objects.filter(run_id=run_id)))
    return run


# --- Overrides -------------------------------------------------------------------------------
@transaction.atomic
def tier_override_create(*, customer: Customer, tier: Tier, reason: str, expires_at: datetime, by=None,
                         now: datetime | None = None) -> TierOverride:
    """Pin `customer` to `tier` until `expires_at`; the membership changes at once (audited).

    Recompute respects the pin until it expires, then the rules decide again.
    """
    now = now or timezone.now()
    if not (reason or "").strip():
        raise InvalidInput("An override needs a reason.", extra={"fields": {"reason": ["This field is required."]}})
    if expires_at <= now:
        raise InvalidInput("An override must expire in the future.", extra={"fields": {"expires_at": ["Must be in the future."]}})
    override = TierOverride.objects.create(customer=customer, dimension=tier.dimension, tier=tier, reason=reason.strip(),
                                           expires_at=expires_at, created_by=by)
    membership = Membership.objects.select_for_update().filter(customer=customer, dimension=tier.dimension).first()
    change = None
    if membership is None:
        Membership.objects.create(customer=customer, dimension=tier.dimension, tier=tier, since=now, overridden=True)
        change = TierChange.objects.create(customer=customer, dimension=tier.dimension, from_tier=None, to_tier=tier, at=now,
                                           cause=ChangeCause.OVERRIDE)
    elif membership.tier_id != tier.id or not membership.overridden:
        if membership.tier_id != tier.id:
            change = TierChange.objects.create(customer=customer, dimension=tier.dimension, from_tier_id=membership.tier_id,
                                               to_tier=tier, at=now, cause=ChangeCause.OVERRIDE)
            membership.since = now
        membership.tier, membership.overridden = tier, True
        membership.save(update_fields=["tier", "overridden", "since"])
    if change is not None:
        transaction.on_commit(lambda: tiers_changed.send(sender=TierOverride, run_id=None,
                                                         changes=TierChange.objects.filter(pk=change.pk)))
    return override


@transaction.atomic
def tier_override_revoke(*, override: TierOverride, by=None) -> TierOverride:
    """End a pin now; the next recompute puts the customer back where the rules say."""
    if override.revoked_at is None:
        override.revoked_at, override.revoked_by = timezone.now(), by
        override.save(update_fields=["revoked_at", "revoked_by", "updated_at"])
    return override


# --- Segments and previews ---------------------------------------------------------------------
def segment_preview(*, rule, sample: int = 10, as_of: datetime | None = None) -> dict:
    """Count and a sample of the customers a rule matches (validates the rule first)."""
    from .selectors import audience_count, latest_as_of

    as_of = as_of or latest_as_of()
    compiled = compile_rule(rule, as_of=as_of)
    qs = Customer.objects.filter(compiled.q)
    count = audience_count(qs)
    rows = list(qs.order_by("-id").values("id", "external_id", "name", "email")[:sample])
    return {"count": count, "sample": rows, "as_of": as_of}


def segment_create(*, name: str, slug: str, rule, description: str = "", by=None) -> Segment:
    compile_rule(rule)
    if Segment.objects.filter(slug=slug).exists():
        raise InvalidInput(f"A segment with slug '{slug}' exists already.", extra={"fields": {"slug": ["Already used."]}})
    return Segment.objects.create(name=name, slug=slug, rule=rule, description=description, created_by=by)


def segment_update(*, segment: Segment, **changes) -> Segment:
    if "rule" in changes:
        compile_rule(changes["rule"])
    for key, value in changes.items():
        setattr(segment, key, value)
    segment.full_clean()
    segment.save()
    return segment


def tier_update_rule(*, tier: Tier, rule) -> Tier:
    """Change a tier's rule after validating it (the next recompute applies it)."""
    compile_rule(rule, dimension=tier.dimension.slug)
    tier.rule = rule
    tier.save(update_fields=["rule", "updated_at"])
    return tier


@transaction.atomic
def tier_settings_update(*, tier: Tier, rule, **fields) -> Tier:
    """Change a tier's rule (validated as by tier_update_rule) and its display settings (name,
    colour, VIP, service level, order, description, their translations) together. The next
    recompute applies it."""
    tier = Tier.objects.select_for_update().select_related("dimension").get(pk=tier.pk)
    tier_update_rule(tier=tier, rule=rule)  # validates first (RuleError), then saves the rule
    for key, value in fields.items():
        setattr(tier, key, value)
    tier.full_clean()
    tier.save()
    return tier


def dimension_validate(*, dimension: Dimension) -> None:
    for tier in dimension.tiers.all():
        compile_rule(tier.rule, dimension=dimension.slug)
