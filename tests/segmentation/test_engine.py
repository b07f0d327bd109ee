"""Tier assignment by the set-based engine, on small hand-built histories.

These tests run on SQLite and on PostgreSQL (DATABASE_URL); the expected tiers are the
same on both.
"""
from __future__ import annotations

import importlib
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.utils import timezone

from accounts.models import Customer, DataImport, Event
from segmentation import services
from segmentation.choices import ChangeCause, RunMode, RunStatus
from segmentation.models import CustomerFeatures, Membership, Tier, TierChange, TierOverride, TierSnapshot

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
# A fixed instant for tests that do not involve overrides (whose created_at is the real now).
AS_OF = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
_seq = itertools.count(1)


# --- helpers shared by the segmentation tests --------------------------------------------------
@pytest.fixture(autouse=True)
def builtin_dimensions(db):
    """The built-in dimensions of migration 0002 with the translations of 0005 (a transactional test
    before may have flushed them)."""
    importlib.import_module("segmentation.migrations.0002_builtin_dimensions").install(django_apps, None)
    importlib.import_module("segmentation.migrations.0005_builtin_translations").install(django_apps, None)


def customer(ext: str, *, signup: datetime | None = None, first_seen: datetime | None = None,
             last_seen: datetime | None = None, **attrs) -> Customer:
    return Customer.objects.create(external_id=ext, signup_at=signup, first_seen_at=first_seen or signup,
                                   last_seen_at=last_seen or first_seen or signup, attributes=attrs)


def event(c: Customer, at: datetime, type: str = "view", amount: str | None = None) -> Event:
    return Event.objects.create(event_id=f"ev-{next(_seq)}", customer=c, type=type, occurred_at=at,
                                amount=Decimal(amount) if amount is not None else None)


def purchase(c: Customer, at: datetime, amount: str = "50.00") -> Event:
    return event(c, at, "purchase", amount)


def recompute(as_of: datetime | None = None, mode: str = RunMode.FULL):
    run = services.recompute_tiers(run=services.recompute_run_create(as_of=as_of, mode=mode))
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def tiers_of(c: Customer) -> dict[str, str]:
    return dict(Membership.objects.filter(customer=c).values_list("dimension__slug", "tier__slug"))


def tier(c: Customer, dimension: str) -> str:
    return tiers_of(c)[dimension]


def all_tiers(dimensions=("behaviour", "value", "lifecycle", "rfm")) -> dict[tuple[str, str], str]:
    return {(ext, dim): slug for ext, dim, slug in Membership.objects.filter(dimension__slug__in=dimensions)
            .values_list("customer__external_id", "dimension__slug", "tier__slug")}


# --- boundaries --------------------------------------------------------------------------------
def test_activity_30_days_ago_is_active_and_31_days_ago_is_silent():
    """Day counts are whole days: activity exactly 30 days before as_of is within 30 days."""
    old = AS_OF - 400 * DAY
    at_30 = customer("at-30", signup=old)
    event(at_30, AS_OF - 30 * DAY)
    at_31 = customer("at-31", signup=old)
    event(at_31, AS_OF - 31 * DAY)
    almost_31 = customer("almost-31", signup=old)  # 30 days and 23:59:59 ago: still 30 whole days
    event(almost_31, AS_OF - 31 * DAY + timedelta(seconds=1))
    at_90, at_91 = customer("at-90", signup=old), customer("at-91", signup=old)
    event(at_90, AS_OF - 90 * DAY)
    event(at_91, AS_OF - 91 * DAY)

    recompute(AS_OF)

    assert tier(at_30, "behaviour") == "active"
    assert tier(almost_31, "behaviour") == "active"
    assert tier(at_31, "behaviour") == "silent"
    assert tier(at_90, "behaviour") == "silent"
    assert tier(at_91, "behaviour") == "churned"
    f = CustomerFeatures.objects.get(customer=at_31)
    assert (f.activity_recency_days, f.days_since_signup) == (31, 400)


@pytest.mark.parametrize("mode", ["full", "incremental"])
def test_sessions_count_calendar_days_with_activity_in_the_last_30_days(mode):
    """sessions_30d counts distinct days with events after as_of - 30 days (strictly) up to as_of;
    events_30d counts the events. The same in a full run and for an incremental run's subset."""
    c = customer("regular", signup=AS_OF - 400 * DAY)
    t30 = AS_OF - 30 * DAY  # 2025-05-31 12:00
    for at in (AS_OF - 60 * DAY, t30,  # before the window; exactly 30 days: not within it
               t30 + timedelta(minutes=1),  # t30's own calendar day
               datetime(2025, 6, 10, 8, tzinfo=UTC), datetime(2025, 6, 10, 20, tzinfo=UTC),  # one day
               AS_OF - timedelta(hours=1),  # as_of's day
               AS_OF + timedelta(hours=1)):  # after as_of: ignored
        event(c, at)
    if mode == "incremental":
        recompute(AS_OF - DAY)
        event(c, AS_OF - timedelta(hours=2))  # as_of's day again; makes the customer affected
    recompute(AS_OF, mode)

    f = CustomerFeatures.objects.get(customer=c)
    assert (f.sessions_30d, f.events_30d) == (3, 4 + (mode == "incremental"))


def test_revenue_sums_are_exact_to_the_cent_with_refunds_and_large_amounts():
    """Amounts with no exact binary form add up to the cent (PostgreSQL sums whole cents), in
    every window, refunds taken off, and a large order keeps every digit."""
    c = customer("exact", signup=AS_OF - 400 * DAY)
    for days, amount in ((1, "0.10"), (2, "0.20"), (3, "19.99"), (40, "19.99"), (100, "19.99"), (200, "0.07")):
        purchase(c, AS_OF - days * DAY, amount)
    event(c, AS_OF - 4 * DAY, "refund", "-5.05")
    big = customer("big", signup=AS_OF - 400 * DAY)
    purchase(big, AS_OF - DAY, "99999999.99")
    purchase(big, AS_OF - 2 * DAY, "0.01")

    recompute(AS_OF)

    f = CustomerFeatures.objects.get(customer=c)
    assert (f.revenue_30d, f.revenue_90d, f.revenue_365d, f.revenue_total) == (
        Decimal("15.24"), Decimal("35.23"), Decimal("55.29"), Decimal("55.29"))
    assert f.avg_order_value == Decimal("9.22")  # 55.29 / 6 orders
    assert CustomerFeatures.objects.get(customer=big).revenue_total == Decimal("100000000.00")


def test_signup_30_days_ago_is_new_and_31_days_ago_is_not():
    new = customer("signup-30", signup=AS_OF - 30 * DAY)
    event(new, AS_OF - 30 * DAY)
    not_new = customer("signup-31", signup=AS_OF - 31 * DAY)
    event(not_new, AS_OF - 31 * DAY)
    # Without a sign-up date, "joined" is when the customer was first seen.
    first_seen = customer("first-seen-10", first_seen=AS_OF - 10 * DAY)

    recompute(AS_OF)

    assert tier(new, "behaviour") == "new"
    assert tier(not_new, "behaviour") == "silent"
    assert tier(first_seen, "behaviour") == "new"


def test_events_after_as_of_are_ignored_and_as_of_changes_the_tier():
    """The same history tiers differently at two as_of values."""
    c = customer("c", signup=AS_OF - 200 * DAY)
    event(c, AS_OF - 5 * DAY)
    purchase(c, AS_OF - 5 * DAY, "80.00")
    event(c, AS_OF + 10 * DAY)  # in the future of AS_OF

    recompute(AS_OF)
    assert tier(c, "behaviour") == "active"
    f = CustomerFeatures.objects.get(customer=c)
    assert f.last_activity_at == AS_OF - 5 * DAY
    assert (f.orders_total, f.revenue_total, f.recency_days) == (1, Decimal("80.00"), 5)

    recompute(AS_OF + 60 * DAY)  # last activity 50 days before: silent
    assert tier(c, "behaviour") == "silent"
    recompute(AS_OF + 120 * DAY)  # 110 days: churned
    assert tier(c, "behaviour") == "churned"
    assert list(TierChange.objects.filter(customer=c, dimension__slug="behaviour").order_by("at")
                .values_list("from_tier__slug", "to_tier__slug", "at")) == [
        (None, "active", AS_OF), ("active", "silent", AS_OF + 60 * DAY), ("silent", "churned", AS_OF + 120 * DAY)]


def test_imported_history_is_tiered_as_of_its_own_last_day():
    """default_as_of: data that ends in the past is tiered as of the end of its last day."""
    end = datetime(1998, 6, 30, 15, 0, tzinfo=UTC)
    buyer = customer("cdnow-1", first_seen=end - 500 * DAY, last_seen=end)
    purchase(buyer, end - 500 * DAY)
    purchase(buyer, end)
    lapsed = customer("cdnow-2", first_seen=end - 500 * DAY, last_seen=end - 45 * DAY)
    purchase(lapsed, end - 45 * DAY)
    DataImport.objects.create(format="cdnow", source="CDNOW_master.txt", status="succeeded",
                              data_start=end - 500 * DAY, data_end=end)

    run = recompute(None)

    assert run.as_of == datetime(1998, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)
    assert tier(buyer, "behaviour") == "active"
    assert tier(lapsed, "behaviour") == "silent"
    assert CustomerFeatures.objects.get(customer=lapsed).recency_days == 45


# --- change history ----------------------------------------------------------------------------
def test_first_assignment_is_recorded_from_none_and_later_changes_from_the_old_tier():
    c = customer("c", signup=AS_OF - 100 * DAY)
    event(c, AS_OF - 10 * DAY)

    first = recompute(AS_OF)
    initial = TierChange.objects.get(customer=c, dimension__slug="behaviour")
    assert (initial.from_tier, initial.to_tier.slug, initial.at, initial.cause, initial.run_id) == (
        None, "active", AS_OF, ChangeCause.RULE, first.pk)
    # One initial change per dimension for the one customer.
    assert first.changes == 4
    assert TierChange.objects.filter(customer=c, from_tier__isnull=True).count() == 4
    membership = Membership.objects.get(customer=c, dimension__slug="behaviour")
    assert membership.since == AS_OF

    second = recompute(AS_OF + 30 * DAY)  # 40 days since activity
    change = TierChange.objects.get(customer=c, dimension__slug="behaviour", run=second)
    assert (change.from_tier.slug, change.to_tier.slug, change.at, change.cause) == (
        "active", "silent", AS_OF + 30 * DAY, ChangeCause.RULE)
    membership.refresh_from_db()
    assert (membership.tier.slug, membership.since) == ("silent", AS_OF + 30 * DAY)


def test_recompute_is_idempotent():
    """Two runs with the same as_of: the second records no change and moves nobody."""
    for i in range(6):
        c = customer(f"c{i}", signup=AS_OF - (20 + 40 * i) * DAY)
        for k in range(i):
            purchase(c, AS_OF - (3 + 25 * k) * DAY, f"{10 * (i + 1)}.00")
    first = recompute(AS_OF)
    before = all_tiers()
    since_before = set(Membership.objects.values_list("customer_id", "dimension_id", "since"))
    changes_before = TierChange.objects.count()

    second = recompute(AS_OF)

    assert first.changes > 0
    assert second.changes == 0
    assert second.timings["changes_by_dimension"] == {"behaviour": 0, "value": 0, "lifecycle": 0, "rfm": 0}
    assert TierChange.objects.count() == changes_before
    assert all_tiers() == before
    assert set(Membership.objects.values_list("customer_id", "dimension_id", "since")) == since_before


def test_every_customer_has_exactly_one_tier_per_dimension_and_the_snapshot_counts_them():
    for i in range(5):
        c = customer(f"c{i}", signup=AS_OF - (10 + 50 * i) * DAY)
        if i % 2:
            purchase(c, AS_OF - (5 * i) * DAY)
    customer("no-events")  # no dates at all

    recompute(AS_OF)

    assert Membership.objects.count() == 6 * 4
    for dim in ("behaviour", "value", "lifecycle", "rfm"):
        assert Membership.objects.filter(dimension__slug=dim).values("customer").distinct().count() == 6
        sizes = dict(TierSnapshot.objects.filter(date=AS_OF.date(), dimension__slug=dim).values_list("tier__slug", "customers"))
        assert sum(sizes.values()) == 6
        assert set(sizes) == set(Tier.objects.filter(dimension__slug=dim).values_list("slug", flat=True))
    assert tier(Customer.objects.get(external_id="no-events"), "behaviour") == "churned"
    assert tier(Customer.objects.get(external_id="no-events"), "rfm") == "no-purchase"


# --- overrides -------------------------------------------------------------------------------
def test_a_pinned_tier_is_kept_until_it_expires_then_rules_decide():
    now = timezone.now().replace(microsecond=0)
    c = customer("pinned", signup=now - 300 * DAY)
    event(c, now - 2 * DAY)
    recompute(now)
    assert tier(c, "behaviour") == "active"
    churned = Tier.objects.get(dimension__slug="behaviour", slug="churned")

    override = services.tier_override_create(customer=c, tier=churned, reason="Asked to be left alone",
                                             expires_at=now + 10 * DAY, now=now)

    m = Membership.objects.get(customer=c, dimension__slug="behaviour")
    assert (m.tier.slug, m.overridden) == ("churned", True)
    pinned_change = TierChange.objects.get(customer=c, to_tier=churned)
    assert (pinned_change.from_tier.slug, pinned_change.cause) == ("active", ChangeCause.OVERRIDE)

    # A recompute while the pin holds keeps it and records nothing.
    run = recompute(now + 1 * DAY)
    assert tier(c, "behaviour") == "churned"
    assert run.timings["changes_by_dimension"]["behaviour"] == 0

    # After expiry, the rules decide again (last activity 13 days before: active).
    event(c, now + 3 * DAY)
    run = recompute(now + 11 * DAY)
    m.refresh_from_db()
    assert (m.tier.slug, m.overridden, m.since) == ("active", False, now + 11 * DAY)
    back = TierChange.objects.get(customer=c, run=run, dimension__slug="behaviour")
    assert (back.from_tier.slug, back.to_tier.slug, back.cause) == ("churned", "active", ChangeCause.RULE)
    assert override.expires_at == now + 10 * DAY


def test_recompute_applies_an_override_with_cause_override_and_a_revoked_one_no_longer():
    now = timezone.now().replace(microsecond=0)
    c = customer("vip-by-hand", signup=now - 300 * DAY)
    event(c, now - 2 * DAY)
    recompute(now)
    high = Tier.objects.get(dimension__slug="value", slug="high")
    assert tier(c, "value") == "low"
    # Written directly (no membership change): the engine applies it at the next run.
    override = TierOverride.objects.create(customer=c, dimension=high.dimension, tier=high, reason="Key account",
                                           expires_at=now + 30 * DAY)

    run = recompute(now + DAY)

    assert tier(c, "value") == "high"
    change = TierChange.objects.get(run=run, customer=c)
    assert (change.from_tier.slug, change.to_tier.slug, change.cause) == ("low", "high", ChangeCause.OVERRIDE)
    assert Membership.objects.get(customer=c, dimension=high.dimension).overridden is True

    services.tier_override_revoke(override=override)
    run = recompute(now + 2 * DAY)
    assert tier(c, "value") == "low"
    assert TierChange.objects.get(run=run, customer=c).cause == ChangeCause.RULE


# --- the same table on every database -------------------------------------------------------
def _reference_histories() -> None:
    """Ten customers with histories that spread over every dimension's tiers."""
    a = AS_OF
    spec = {
        # ext: (signup days ago, [(days ago, type, amount)])
        "newbie": (10, [(10, "view", None)]),
        "new-buyer": (20, [(20, "view", None), (2, "purchase", "30.00")]),
        "regular": (700, [(d, "purchase", "60.00") for d in (600, 400, 300, 200, 150, 100, 80, 60, 40, 20, 5)]),
        "whale": (900, [(d, "purchase", "900.00") for d in (800, 500, 350, 120, 95)] + [(35, "view", None)]),
        "grower": (400, [(380, "purchase", "20.00"), (50, "purchase", "25.00"), (10, "purchase", "25.00")]),
        "lapsed": (500, [(450, "purchase", "40.00"), (150, "purchase", "45.00"), (100, "view", None)]),
        "one-timer": (800, [(700, "purchase", "15.00")]),
        "browser": (300, [(60, "view", None), (45, "click", None)]),
        "silent-buyer": (365, [(300, "purchase", "70.00"), (200, "purchase", "70.00"), (75, "purchase", "70.00")]),
        "ghost": (None, []),
    }
    for ext, (signup, history) in spec.items():
        c = customer(ext, signup=a - signup * DAY if signup is not None else None)
        for days, type_, amount in history:
            event(c, a - days * DAY + timedelta(hours=1), type_, amount)


EXPECTED = {
    # ext:           behaviour   value   lifecycle     rfm
    "newbie":       ("new",     "low",  "onboarding", "no-purchase"),
    "new-buyer":    ("new",     "low",  "onboarding", "new-customers"),
    "regular":      ("active",  "high", "maturity",   "champions"),
    "whale":        ("silent",  "high", "decline",    "cannot-lose-them"),
    "grower":       ("active",  "low",  "growth",     "potential-loyalist"),
    "lapsed":       ("churned", "mid",  "decline",    "hibernating"),
    "one-timer":    ("churned", "low",  "decline",    "lost"),
    "browser":      ("silent",  "low",  "maturity",   "no-purchase"),
    "silent-buyer": ("silent",  "mid",  "maturity",   "need-attention"),
    "ghost":        ("churned", "low",  "maturity",   "no-purchase"),
}


def test_the_reference_histories_get_the_same_tiers_on_every_database():
    _reference_histories()

    recompute(AS_OF)

    got = {ext: tuple(all_tiers().get((ext, dim)) for dim in ("behaviour", "value", "lifecycle", "rfm"))
           for ext in EXPECTED}
    assert got == EXPECTED
    scores = dict((ext, (r, f, m)) for ext, r, f, m in CustomerFeatures.objects.values_list(
        "customer__external_id", "r_score", "f_score", "m_score"))
    # Seven buyers; score = 1 + floor(5 * PERCENT_RANK), capped at 5.
    assert scores["regular"] == (5, 5, 5)
    assert scores["whale"] == (2, 5, 5)
    assert scores["grower"] == (4, 3, 2)
    assert scores["one-timer"] == (1, 1, 1)
    assert scores["ghost"] == (None, None, None)


def test_deleting_a_customer_deletes_their_tiers_and_history():
    """Memberships and tier changes keep no database foreign key to the customer (recompute
    writes them from a join with customers); Django's on_delete still removes them."""
    from segmentation.models import CustomerFeatures, Membership, TierChange

    c = customer("leaving", signup=AS_OF - 10 * DAY)
    event(c, AS_OF - DAY)
    recompute(AS_OF)
    assert Membership.objects.filter(customer=c).exists() and TierChange.objects.filter(customer=c).exists()
    c.delete()
    assert not Membership.objects.filter(customer_id=c.pk).exists()
    assert not TierChange.objects.filter(customer_id=c.pk).exists()
    assert not CustomerFeatures.objects.filter(customer_id=c.pk).exists()


def test_deleting_a_tier_deletes_its_memberships():
    """Memberships keep no database foreign key to their tier (or dimension) either; deleting a
    tier (staff, in the admin) still removes its memberships and leaves the others alone, and a
    recompute afterwards puts its customers in a tier again."""
    from segmentation.models import Dimension, Membership

    for i in range(3):
        c = customer(f"d{i}", signup=AS_OF - (5 + 50 * i) * DAY)
        event(c, AS_OF - (1 + 40 * i) * DAY)
    recompute(AS_OF)
    assert Membership.objects.count() == 3 * Dimension.objects.filter(active=True).count()
    tier = Membership.objects.filter(dimension__slug="behaviour").select_related("tier").first().tier
    members = Membership.objects.filter(tier=tier).count()
    before = Membership.objects.count()
    tier.delete()
    assert not Membership.objects.filter(tier_id=tier.pk).exists()
    assert Membership.objects.count() == before - members
    assert Membership.objects.filter(dimension__slug="value").count() == 3
    recompute(AS_OF + DAY)
    assert Membership.objects.filter(dimension__slug="behaviour").count() == 3


@pytest.mark.parametrize("buyers", [1, 2, 5, 6, 7, 11, 64, 250])
def test_rfm_scores_from_bounds_equal_percent_rank_in_fifths(buyers):
    """Scores are found from a few order statistics (engine.build_scores_full) and then by
    comparison (engine.scores_sql); they must be exactly 1 + floor(5 * PERCENT_RANK) over the
    buyers, capped at 5, ties sharing the lower score, as the database's own window function
    computes it, for any number of buyers and heavy ties (values from a small set); and the
    bounds as a run records them (R as ages) must score the same customers the same way."""
    import random

    from django.db import connection, transaction

    from segmentation import engine
    from segmentation.engine import sql as engine_sql

    rng = random.Random(buyers)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [(i, start + timedelta(days=rng.choice([0, 3, 3, 10, 40, 41, 90])), rng.choice([1, 1, 1, 2, 2, 3, 8]),
             Decimal(rng.choice(["10.00", "10.00", "25.50", "99.99", "250.00", "1000.01"])))
            for i in range(1, buyers + 1)]
    rows.append((buyers + 1, None, 0, Decimal("0")))  # no purchase: no scores
    with transaction.atomic():
        engine_sql._drop_temp("seg_base")
        engine_sql._exec("CREATE TEMP TABLE seg_base (customer_id bigint, last_purchase_at timestamp with time zone, "
                     "orders_total integer, revenue_total numeric(12, 2))")
        with connection.cursor() as cur:
            cur.executemany("INSERT INTO seg_base VALUES (%s, %s, %s, %s)",
                            [(i, engine_sql._ts(t) if t else None, f, m) for i, t, f, m in rows])
        bounds = engine.build_scores_full(as_of=AS_OF)
        scored, params = engine.scored_base_sql(bounds)  # this run's bounds
        again, again_params = engine.scored_base_sql(bounds.stored)  # as recorded, for incremental runs
        params, again_params = {"as_of": engine_sql._ts(AS_OF), **params}, {"as_of": engine_sql._ts(AS_OF), **again_params}
        rank = {col: f"MIN(5, 1 + CAST(FLOOR(5 * PERCENT_RANK() OVER (ORDER BY {col})) AS INTEGER))"
                for col in ("last_purchase_at", "orders_total", "revenue_total")}
        if connection.vendor == "postgresql":
            rank = {col: expr.replace("MIN(", "LEAST(") for col, expr in rank.items()}
        with connection.cursor() as cur:
            cur.execute(f"SELECT b.customer_id, b.r_score, b.f_score, b.m_score FROM {scored} b "
                        "ORDER BY b.customer_id", params)
            got = cur.fetchall()
            cur.execute(f"SELECT b.customer_id, b.r_score, b.f_score, b.m_score FROM {again} b "
                        "ORDER BY b.customer_id", again_params)
            got_again = cur.fetchall()
            cur.execute(f"""SELECT customer_id, {rank['last_purchase_at']}, {rank['orders_total']}, {rank['revenue_total']}
                              FROM seg_base WHERE orders_total > 0 ORDER BY customer_id""")
            expected = cur.fetchall() + [(buyers + 1, None, None, None)]
        engine_sql._drop_temp("seg_base")
    assert got == expected
    assert got_again == expected
    assert {s for _, *scores in got[:-1] for s in scores} <= {1, 2, 3, 4, 5}


def test_plan_settings_apply_inside_and_are_restored_after_and_an_error_inside_propagates():
    """The full run's planner settings (engine.plan_settings) hold for the statements inside,
    are back to what they were afterwards, and an error inside reaches the caller as itself."""
    from django.db import DatabaseError, connection, transaction

    from segmentation import engine
    from segmentation.engine import sql as engine_sql

    if connection.vendor != "postgresql":
        pytest.skip("planner settings exist on PostgreSQL only")

    def setting() -> str:
        with connection.cursor() as cur:
            cur.execute("SELECT current_setting('enable_hashagg')")
            return cur.fetchone()[0]

    with transaction.atomic():
        before = setting()
        with engine.plan_settings(enable_hashagg="off"):
            assert setting() == "off"
        assert setting() == before
        with pytest.raises(DatabaseError, match="no_such_table"):
            with transaction.atomic(), engine.plan_settings(enable_hashagg="off"):
                engine_sql._exec("SELECT * FROM no_such_table")
        assert setting() == before


def test_a_full_run_on_postgresql_swaps_in_a_features_table_identical_in_structure():
    """A full run writes the features into a fresh table and swaps it in (engine.
    _replace_features_table): its columns (order, types, NOT NULL), constraints and indexes must
    be exactly those the migrations created, run after run, and the check constraint must still
    refuse a bad row."""
    from django.db import IntegrityError, connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("the table swap is PostgreSQL's full-run path")

    def structure():
        with connection.cursor() as cur:
            cur.execute("""SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute
                            WHERE attrelid = 'segmentation_customerfeatures'::regclass AND attnum > 0
                              AND NOT attisdropped ORDER BY attnum""")
            columns = cur.fetchall()
            cur.execute("""SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint
                            WHERE conrelid = 'segmentation_customerfeatures'::regclass ORDER BY conname""")
            constraints = cur.fetchall()
            cur.execute("""SELECT indexname, indexdef FROM pg_indexes
                            WHERE tablename = 'segmentation_customerfeatures' ORDER BY indexname""")
            return columns, constraints, cur.fetchall()

    before = structure()
    for i in range(3):
        c = customer(f"s{i}", signup=AS_OF - (5 + 50 * i) * DAY)
        purchase(c, AS_OF - (1 + 20 * i) * DAY, f"{10 + i}.50")
    recompute(AS_OF)
    recompute(AS_OF + DAY)
    assert structure() == before
    assert CustomerFeatures.objects.count() == 3
    with pytest.raises(IntegrityError), transaction.atomic():
        CustomerFeatures.objects.filter(customer__external_id="s0").update(churn_probability=2)


def test_a_first_run_loads_memberships_and_history_in_bulk_and_rebuilds_their_indexes(monkeypatch):
    """With more tier changes than the tables hold (a first run), the memberships and the tier
    history are written with their secondary indexes dropped and built again after
    (engine.sql._bulk_load): the indexes and the unique constraint are the migrations' again, one
    membership per (customer, dimension) is still enforced, and the tiers are those of the
    row-by-row path."""
    from django.db import IntegrityError, connection, transaction

    from segmentation.engine import sql as engine_sql
    from segmentation.engine import tiers as engine_tiers

    if connection.vendor != "postgresql":
        pytest.skip("the bulk load is PostgreSQL's path for many changes")

    def indexes():
        with connection.cursor() as cur:
            cur.execute("""SELECT tablename, indexname, indexdef FROM pg_indexes
                            WHERE tablename IN ('segmentation_membership', 'segmentation_tierchange')
                            ORDER BY 1, 2""")
            rows = cur.fetchall()
            cur.execute("""SELECT conname, contype FROM pg_constraint
                            WHERE conrelid = 'segmentation_membership'::regclass ORDER BY 1""")
            return rows, cur.fetchall()

    _reference_histories()
    before = indexes()
    dropped = []
    real_exec = engine_sql._exec
    monkeypatch.setattr(engine_sql, "_exec", lambda sql, params=None: (
        dropped.append(sql) if sql.startswith(("DROP INDEX", "ALTER TABLE segmentation_membership DROP")) else None,
        real_exec(sql, params))[1])
    monkeypatch.setattr(engine_tiers, "FEW_CHANGES", 0)  # every run counts as many changes
    recompute(AS_OF)
    assert len(dropped) == 3 + 3  # tier history: 3 secondary indexes; memberships: 2 and the unique key
    bulk = all_tiers()
    assert indexes() == before

    dropped.clear()
    recompute(AS_OF + 40 * DAY)  # fewer changes than rows held: row by row
    assert dropped == []
    monkeypatch.undo()
    Membership.objects.all().delete()
    TierChange.objects.all().delete()
    recompute(AS_OF)
    assert all_tiers() == bulk
    m = Membership.objects.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(customer_id=m.customer_id, dimension_id=m.dimension_id, tier_id=m.tier_id,
                                  since=AS_OF)
