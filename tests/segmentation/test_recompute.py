"""Recompute runs: incremental against full, single-flight, the tiers_changed signal, the task,
the schedule and the management command."""
from __future__ import annotations

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_celery_beat.models import PeriodicTask

from crm.core.locks import single_flight
from segmentation import engine, services, tasks
from segmentation.choices import RunMode, RunStatus
from segmentation.models import Membership, RecomputeRun, TierChange
from segmentation.signals import tiers_changed

from .test_engine import AS_OF, DAY, all_tiers, builtin_dimensions, customer, event, purchase, recompute, tier  # noqa: F401

pytestmark = pytest.mark.django_db

RULE_DIMENSIONS = ("behaviour", "value", "lifecycle")


def _shop() -> None:
    """Twelve customers spread over recency, frequency and spend."""
    for i in range(12):
        c = customer(f"c{i}", signup=AS_OF - (15 + 37 * i) * DAY)
        for k in range(i % 5):
            purchase(c, AS_OF - (2 + 19 * i + 23 * k) * DAY, f"{20 + 35 * i}.00")
        event(c, AS_OF - (1 + 9 * i) * DAY)


@pytest.mark.parametrize("small_subset", [engine.SMALL_SUBSET, 0], ids=["per-customer", "whole-table"])
@pytest.mark.parametrize("margin", [0, engine.HIGH_WATER_MARGIN])
def test_incremental_after_new_events_and_time_passing_equals_a_full_run(monkeypatch, margin, small_subset):
    """Customers with new events and those whose day counts cross a rule's threshold are redone.

    With no look-back margin on event ids, only those customers are; the default margin
    (for ids committed out of order) takes in every customer of this small shop.
    """
    monkeypatch.setattr(engine.incremental, "HIGH_WATER_MARGIN", margin)
    monkeypatch.setattr(engine, "SMALL_SUBSET", small_subset)  # both plans of an incremental run
    _shop()
    recompute(AS_OF)
    later = AS_OF + 20 * DAY
    # New activity (views; one purchase by the top buyer, who stays top) and a new customer.
    for ext in ("c3", "c8", "c11"):
        event(customer_by(ext), later - 2 * DAY)
    purchase(customer_by("c9"), later - 1 * DAY, "900.00")
    customer("newcomer", signup=later - 3 * DAY)

    inc = recompute(later, RunMode.INCREMENTAL)
    assert inc.mode == RunMode.INCREMENTAL
    if margin == 0:
        assert 5 <= inc.customers < 13  # not everybody
    after_incremental = all_tiers(RULE_DIMENSIONS)
    # Time passing alone moved someone (behaviour: active -> silent) who had no new events.
    moved = set(TierChange.objects.filter(run=inc).values_list("customer__external_id", flat=True))
    assert moved - {"c3", "c8", "c9", "c11", "newcomer"}

    full = recompute(later, RunMode.FULL)

    assert all_tiers(RULE_DIMENSIONS) == after_incremental
    assert all(full.timings["changes_by_dimension"][d] == 0 for d in RULE_DIMENSIONS)
    assert len(after_incremental) == 13 * 3


@pytest.mark.parametrize("small_subset", [engine.SMALL_SUBSET, 0], ids=["per-customer", "whole-table"])
def test_incremental_finds_last_and_first_purchases_crossing_a_rules_day_count(monkeypatch, small_subset):
    """Rules on days since the last and the first purchase, at day counts no feature window has
    (45, 50): an incremental run 10 days later, with no new events, redoes exactly the buyers
    whose purchase crossed them (found among the events at those times) and no one else."""
    from segmentation.choices import DimensionKind
    from segmentation.models import Dimension, Tier

    monkeypatch.setattr(engine.incremental, "HIGH_WATER_MARGIN", 0)
    monkeypatch.setattr(engine, "SMALL_SUBSET", small_subset)
    for slug, field, days in (("buying", "recency_days", 45), ("tenure", "tenure_days", 50)):
        dim = Dimension.objects.create(slug=slug, name=slug.title(), kind=DimensionKind.RULES, order=9)
        Tier.objects.create(dimension=dim, slug=f"{slug}-in", name="In", order=1,
                            rule={"all": [{"field": field, "op": "<=" if slug == "buying" else ">=", "value": days}]})
        dim.fallback_tier = Tier.objects.create(dimension=dim, slug=f"{slug}-out", name="Out", order=2, rule={})
        dim.save()
    signup = AS_OF - 400 * DAY
    lapsing = customer("lapsing", signup=signup)  # last purchase 40 days ago: recent now, not in 10 days
    purchase(lapsing, AS_OF - 120 * DAY)
    purchase(lapsing, AS_OF - 40 * DAY)
    maturing = customer("maturing", signup=signup)  # first purchase 44 days ago: a veteran in 10 days
    purchase(maturing, AS_OF - 44 * DAY)
    purchase(maturing, AS_OF - 20 * DAY)
    steady = customer("steady", signup=signup)  # nothing crosses for them
    purchase(steady, AS_OF - 300 * DAY)
    purchase(steady, AS_OF - 2 * DAY)
    for c in (lapsing, maturing, steady):
        event(c, AS_OF - 250 * DAY)
    recompute(AS_OF)
    assert (tier(lapsing, "buying"), tier(maturing, "tenure")) == ("buying-in", "tenure-out")

    later = AS_OF + 10 * DAY
    inc = recompute(later, RunMode.INCREMENTAL)

    assert inc.customers == 2  # lapsing and maturing; steady's timestamps crossed no rule
    assert (tier(lapsing, "buying"), tier(maturing, "tenure")) == ("buying-out", "tenure-in")
    assert (tier(steady, "buying"), tier(steady, "tenure")) == ("buying-in", "tenure-in")
    full = recompute(later, RunMode.FULL)
    assert full.timings["changes_by_dimension"]["buying"] == full.timings["changes_by_dimension"]["tenure"] == 0


def test_the_look_back_rereads_events_committed_late_not_those_stored_long_ago():
    """An event id below the last run's high-water mark that became visible after the run (its
    transaction committed late) is taken in; the look-back skips events received well before
    the run started, so a quiet shop's incremental run stays small."""
    from django.utils import timezone

    from accounts.models import Event
    from segmentation.models import CustomerFeatures

    _shop()
    Event.objects.update(received_at=timezone.now() - 3 * timedelta(hours=1))  # stored long ago
    recompute(AS_OF)
    late = Event.objects.filter(customer__external_id="c4").order_by("id").first()
    Event.objects.filter(pk=late.pk).update(type="purchase", amount="5000.00", occurred_at=AS_OF - DAY,
                                            received_at=timezone.now())
    inc = recompute(AS_OF + timedelta(hours=1), RunMode.INCREMENTAL)
    assert inc.mode == RunMode.INCREMENTAL
    assert inc.customers < 12  # not the whole shop: the look-back took only the late event
    assert CustomerFeatures.objects.get(customer__external_id="c4").revenue_total >= 5000


def customer_by(ext: str):
    from accounts.models import Customer

    return Customer.objects.get(external_id=ext)


def test_incremental_without_an_earlier_run_is_a_full_run():
    _shop()
    run = recompute(AS_OF, RunMode.INCREMENTAL)
    assert run.mode == RunMode.FULL
    assert run.customers == 12


def test_a_recompute_while_another_holds_the_lock_is_skipped():
    _shop()
    with single_flight(services.RECOMPUTE_LOCK) as got:
        assert got
        if connection.vendor == "postgresql":
            pytest.skip("advisory locks are re-entrant within one session; see the two-worker test")
        run = services.recompute_tiers(run=services.recompute_run_create(as_of=AS_OF))
    assert run.status == RunStatus.SKIPPED
    assert "Another recompute" in run.error
    assert Membership.objects.count() == 0
    # The lock is free again afterwards.
    assert recompute(AS_OF).status == RunStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_workers_exactly_one_runs():
    """Two workers start a recompute at once: one runs, the other ends SKIPPED without waiting."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises the whole database)")
    _shop()
    first_inside, second_done = threading.Event(), threading.Event()
    results: dict[str, RecomputeRun] = {}
    errors: list[BaseException] = []

    def worker(name: str, hold: bool) -> None:
        from django.db import connections

        try:
            def progress(stage, percent):
                if hold and not first_inside.is_set():
                    first_inside.set()
                    assert second_done.wait(30), "the second worker never finished"

            run = services.recompute_run_create(as_of=AS_OF)
            results[name] = services.recompute_tiers(run=run, progress=progress)
        except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
            errors.append(exc)
        finally:
            if not hold:
                second_done.set()
            connections.close_all()

    one = threading.Thread(target=worker, args=("one", True))
    one.start()
    assert first_inside.wait(30)
    two = threading.Thread(target=worker, args=("two", False))
    two.start()
    two.join(60)
    one.join(60)

    assert not errors, errors
    assert results["two"].status == RunStatus.SKIPPED
    assert results["one"].status == RunStatus.SUCCEEDED
    assert TierChange.objects.filter(run=results["two"]).count() == 0
    assert Membership.objects.count() == 12 * 4


@pytest.mark.django_db(transaction=True)
def test_tiers_changed_fires_after_commit_with_the_runs_changes():
    _shop()
    received = []

    def receiver(sender, run_id, changes, **kw):
        # Sent once the writes are committed: no transaction is open, and the changes are there.
        received.append((run_id, connection.in_atomic_block, sorted(changes.values_list("pk", flat=True))))

    tiers_changed.connect(receiver)
    try:
        run = recompute(AS_OF)
        again = recompute(AS_OF)  # nothing changes: no signal
    finally:
        tiers_changed.disconnect(receiver)

    assert again.changes == 0
    assert received == [(run.pk, False, sorted(TierChange.objects.filter(run=run).values_list("pk", flat=True)))]
    assert len(received[0][2]) == run.changes == 12 * 4


def test_a_failed_run_is_recorded_and_raises(monkeypatch):
    _shop()

    def boom(**kw):
        raise RuntimeError("disk full")

    monkeypatch.setattr(engine, "write_snapshot", boom)
    run = services.recompute_run_create(as_of=AS_OF)
    with pytest.raises(RuntimeError):
        services.recompute_tiers(run=run)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error == "RuntimeError: disk full"


def test_a_run_left_running_by_a_dead_worker_is_closed_as_interrupted_by_the_next():
    """A worker killed mid-run leaves its row RUNNING (the lock dies with its connection). The
    next run to take the lock marks it failed with the reason, so the runs page does not show
    a run in progress forever; the new run itself completes."""
    _shop()
    dead = services.recompute_run_create(as_of=AS_OF)
    RecomputeRun.objects.filter(pk=dead.pk).update(status=RunStatus.RUNNING, stage="tiers", progress=60)
    run = recompute(AS_OF)
    dead.refresh_from_db()
    assert dead.status == RunStatus.FAILED and dead.finished_at == run.started_at
    assert dead.error.startswith("Interrupted") and f"#{run.pk}" in dead.error
    assert run.status == RunStatus.SUCCEEDED
    assert RecomputeRun.objects.filter(status=RunStatus.RUNNING).count() == 0


# --- the task, the schedule, the command ------------------------------------------------------
def test_the_task_creates_a_run_and_records_it():
    _shop()
    run_id = tasks.recompute_tiers.delay(as_of=AS_OF.isoformat(), mode="full").get()
    run = RecomputeRun.objects.get(pk=run_id)
    assert (run.status, run.as_of, run.customers) == (RunStatus.SUCCEEDED, AS_OF, 12)
    assert run.celery_task_id


def test_the_task_does_not_redo_a_run_that_has_ended():
    _shop()
    run = recompute(AS_OF)
    finished = run.finished_at
    assert tasks.recompute_tiers(run_id=run.pk) == run.pk
    run.refresh_from_db()
    assert run.finished_at == finished


def test_the_task_is_routed_to_the_recompute_queue_and_limited_in_time():
    from crm.celery import app

    route = app.amqp.router.route({}, "segmentation.tasks.recompute_tiers")
    assert route["queue"].name == "recompute"
    assert tasks.recompute_tiers.acks_late is True
    assert tasks.recompute_tiers.soft_time_limit and tasks.recompute_tiers.time_limit > tasks.recompute_tiers.soft_time_limit


def test_the_schedule_is_installed_in_django_celery_beat():
    incremental = PeriodicTask.objects.get(name="Recompute tiers (incremental)")
    assert incremental.task == "segmentation.tasks.recompute_tiers"
    assert (incremental.interval.every, incremental.interval.period) == (15, "minutes")
    assert '"incremental"' in incremental.kwargs
    full = PeriodicTask.objects.get(name="Recompute tiers (full)")
    assert (full.crontab.minute, full.crontab.hour, str(full.crontab.timezone)) == ("30", "2", "UTC")
    assert '"full"' in full.kwargs


def test_the_command_prints_a_summary():
    _shop()
    out, err = StringIO(), StringIO()
    call_command("recompute_tiers", "--as-of", AS_OF.isoformat(), "--full", stdout=out, stderr=err)
    text = out.getvalue()
    assert "12 customers" in text and "48 tier changes" in text
    assert "behaviour" in text and "aggregate" in text
    assert "100%" in err.getvalue()  # the progress bar
    assert RecomputeRun.objects.get().status == RunStatus.SUCCEEDED


def test_the_command_says_when_it_was_skipped():
    with single_flight(services.RECOMPUTE_LOCK):
        if connection.vendor == "postgresql":
            pytest.skip("advisory locks are re-entrant within one session")
        out = StringIO()
        call_command("recompute_tiers", "--full", "--no-progress", stdout=out)
    assert "Skipped: another recompute is running" in out.getvalue()


def test_the_command_fails_with_the_error(monkeypatch):
    def boom(**kw):
        raise RuntimeError("disk full")

    monkeypatch.setattr(engine, "write_snapshot", boom)
    with pytest.raises(CommandError, match="disk full"):
        call_command("recompute_tiers", "--as-of", "2025-06-30", "--no-progress", stdout=StringIO())
    with pytest.raises(CommandError, match="not an ISO 8601"):
        call_command("recompute_tiers", "--as-of", "soon", stdout=StringIO())


def test_a_time_limit_does_not_leave_the_lock_taken(monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    _shop()

    def slow(**kw):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(engine, "write_snapshot", slow)
    with pytest.raises(SoftTimeLimitExceeded):
        services.recompute_tiers(run=services.recompute_run_create(as_of=AS_OF))
    monkeypatch.undo()
    assert recompute(AS_OF + timedelta(days=1)).status == RunStatus.SUCCEEDED


def test_the_snapshot_follows_an_incremental_run_on_the_same_day():
    """An incremental run moves the day's tier sizes by its own changes; they match a recount."""
    from django.db.models import Count

    from segmentation.models import TierSnapshot

    _shop()
    recompute(AS_OF)
    event(customer_by("c11"), AS_OF + timedelta(hours=1))  # churned -> active
    customer("late-signup", signup=AS_OF)
    run = recompute(AS_OF + timedelta(hours=2), RunMode.INCREMENTAL)
    assert run.mode == RunMode.INCREMENTAL and run.changes >= 5

    counted = dict(Membership.objects.values("tier_id").annotate(n=Count("id")).values_list("tier_id", "n"))
    snapshot = dict(TierSnapshot.objects.filter(date=AS_OF.date()).values_list("tier_id", "customers"))
    assert snapshot == {tier_id: counted.get(tier_id, 0) for tier_id in snapshot}
    assert sum(snapshot.values()) == 13 * 4


def test_incremental_starts_from_the_last_run_and_going_back_in_time_is_a_full_run():
    """The tables hold the last run's tiers: an incremental run starts from it (its high-water
    mark), not from an older run of the same as_of; asked for an earlier as_of, it runs full."""
    _shop()
    recompute(AS_OF)
    recompute(AS_OF + DAY, RunMode.INCREMENTAL)
    recompute(AS_OF)  # back to AS_OF (a back-dated import's run)
    later = recompute(AS_OF + DAY, RunMode.INCREMENTAL)
    assert later.mode == RunMode.INCREMENTAL
    back = recompute(AS_OF + DAY - timedelta(hours=1), RunMode.INCREMENTAL)
    assert back.mode == RunMode.FULL
