"""The demo store: reproducible, idempotent, and each archetype behaves like its description."""
from __future__ import annotations

import io
import statistics
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Count, Max, Sum
from django.test import override_settings
from django.utils import timezone

from accounts.choices import ApiScope, EventType, ImportFormat, JobStatus
from accounts.demo import ARCHETYPE_KEYS, archetype_of, customer_external_id, demo_store_build, demo_store_generate
from accounts.models import ApiKey, Customer, DataImport, Event, Feedback
from accounts.roles import ANALYST, CUSTOMER_SERVICE, OPERATIONS
from accounts.services.api_keys import api_key_verify
from recommendations.models import Item

SEED, SIZE = 7, 60
# A fixed "today" for the whole module, in the past so that it is a valid as_of.
AS_OF = (timezone.now() - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def _signature(seed: int) -> tuple:
    _, _, people = demo_store_build(seed=seed, customers=SIZE, as_of=AS_OF)
    counts: dict[str, int] = defaultdict(int)
    spend = Decimal(0)
    for p in people:
        for etype, _t, _item, amount, *_ in p.events:
            counts[etype] += 1
            spend += amount if etype == EventType.PURCHASE else 0
    return dict(counts), spend, [(p.external_id, p.person.email, p.events) for p in people]


def test_same_seed_builds_the_same_store_and_another_seed_a_different_one():
    """Reproducible: no global random state; the seed alone decides the data."""
    first, again, other = _signature(SEED), _signature(SEED), _signature(SEED + 1)
    assert first == again
    assert first[0] != other[0] and first[1] != other[1]


def test_a_customer_does_not_depend_on_the_store_size():
    """Customer i is the same person with the same history in a small and a larger store."""
    _, _, small = demo_store_build(seed=SEED, customers=10, as_of=AS_OF)
    _, _, large = demo_store_build(seed=SEED, customers=30, as_of=AS_OF)
    assert [(p.person, p.events) for p in small] == [(p.person, p.events) for p in large[:10]]


def test_every_archetype_is_present_in_a_small_store_in_about_its_share():
    keys = [archetype_of(seed=SEED, index=i).key for i in range(SIZE)]
    assert set(keys) == set(ARCHETYPE_KEYS)
    assert 2 <= keys.count("vip") <= 4  # 5 % of 60


@pytest.mark.django_db
def test_a_second_run_with_the_same_seed_adds_nothing():
    first = demo_store_generate(customers=SIZE, seed=SEED, as_of=AS_OF)
    counts = (Customer.objects.count(), Item.objects.count(), Event.objects.count(), Feedback.objects.count())
    assert first.customers_created == SIZE and first.events_created == first.events_generated > SIZE * 30
    assert first.feedback_created == Feedback.objects.count() > 0

    again = demo_store_generate(customers=SIZE, seed=SEED)  # no as_of: the first run's is reused

    assert again.as_of == AS_OF
    assert (again.customers_created, again.items_created, again.events_created, again.feedback_created) == (0, 0, 0, 0)
    assert again.events_duplicate == first.events_generated
    assert (Customer.objects.count(), Item.objects.count(), Event.objects.count(), Feedback.objects.count()) == counts
    run = DataImport.objects.get(pk=first.import_id)
    assert (run.format, run.status, run.data_end) == (ImportFormat.DEMO, JobStatus.SUCCEEDED, AS_OF)
    assert run.data_start == AS_OF - timedelta(days=730)
    assert Event.objects.aggregate(last=Max("occurred_at"))["last"] <= AS_OF
    assert not Event.objects.filter(occurred_at__lt=run.data_start).exists()


@pytest.mark.django_db
def test_each_archetype_shows_its_signature():
    size = 120
    demo_store_generate(customers=size, seed=SEED, as_of=AS_OF)
    kind = {customer_external_id(SEED, i): archetype_of(seed=SEED, index=i).key for i in range(size)}
    customers = {c.external_id: c for c in Customer.objects.all()}
    last_event = dict(Event.objects.values_list("customer__external_id").annotate(m=Max("occurred_at")))
    purchases = Event.objects.filter(type=EventType.PURCHASE)
    last_purchase = dict(purchases.values_list("customer__external_id").annotate(m=Max("occurred_at")))
    spend = dict(purchases.values_list("customer__external_id").annotate(s=Sum("amount")))
    orders: dict[str, set] = defaultdict(set)
    for ext, props in purchases.values_list("customer__external_id", "properties"):
        orders[ext].add(props["order"])
    by_kind: dict[str, list[str]] = defaultdict(list)
    for ext, key in kind.items():
        by_kind[key].append(ext)
    days_ago = lambda moment: (AS_OF - moment).total_seconds() / 86400  # noqa: E731

    # New sign-ups joined in the last 30 days; everyone else earlier.
    assert all(days_ago(customers[c].signup_at) <= 30 for c in by_kind["new"])
    assert all(days_ago(customers[c].signup_at) > 30 for k, cs in by_kind.items() if k != "new" for c in cs)
    # Lost customers: nothing at all in the last 90 days.
    assert all(days_ago(last_event[c]) > 90 for c in by_kind["lost"])
    # Drifting away: the last purchase 31..90 days ago.
    assert all(31 <= days_ago(last_purchase[c]) <= 90 for c in by_kind["drifting"])
    # VIPs and regulars bought recently; one-time buyers bought exactly once.
    assert all(days_ago(last_purchase[c]) <= 13 for c in by_kind["vip"])
    assert all(days_ago(last_purchase[c]) <= 46 for c in by_kind["regular"])
    assert all(len(orders[c]) == 1 for c in by_kind["one_time"])
    # VIPs spend the most (median), one-time buyers and new sign-ups the least.
    median = {k: statistics.median(spend.get(c, Decimal(0)) for c in cs) for k, cs in by_kind.items()}
    assert max(median, key=median.get) == "vip"
    assert median["vip"] > 3 * median["regular"]
    # Bargain hunters buy on discount and cheaper than the rest.
    lines = defaultdict(lambda: [0, 0, Decimal(0)])
    for ext, amount, qty, props in purchases.values_list("customer__external_id", "amount", "quantity", "properties"):
        row = lines[kind[ext]]
        row[0] += 1
        row[1] += "discount" in props
        row[2] += amount / qty
    discounted = {k: v[1] / v[0] for k, v in lines.items()}
    avg_line = {k: v[2] / v[0] for k, v in lines.items()}
    assert discounted["bargain"] > 0.6 and discounted["bargain"] > 2 * discounted["regular"]
    assert avg_line["bargain"] < avg_line["regular"] < avg_line["vip"]


@pytest.mark.django_db
def test_the_funnel_narrows_and_refunds_are_negative():
    demo_store_generate(customers=SIZE, seed=SEED, as_of=AS_OF)
    n = dict(Event.objects.values_list("type").annotate(n=Count("id")))
    assert n["view"] > n["click"] > n["purchase"] and n["add_to_cart"] >= n["purchase"]
    assert n["login"] > n["signup"] == SIZE
    assert not Event.objects.filter(type=EventType.REFUND, amount__gte=0).exists()
    assert not Event.objects.filter(type=EventType.PURCHASE, amount__lte=0).exists()
    assert Event.objects.filter(event_id__startswith=f"demo-{SEED}-").count() == sum(n.values())


@pytest.mark.django_db
def test_feedback_comes_in_english_and_chinese_with_sentiment():
    demo_store_generate(customers=SIZE, seed=SEED, as_of=AS_OF)
    languages = set(Feedback.objects.values_list("language", flat=True))
    assert {"en", "zh"} <= languages
    assert not Feedback.objects.filter(sentiment_score__isnull=True).exists()
    labels = set(Feedback.objects.values_list("sentiment_label", flat=True))
    assert {"positive", "negative"} <= labels
    # Each feedback row has its review event.
    assert Feedback.objects.count() == Event.objects.filter(type=EventType.REVIEW).count()


@pytest.mark.django_db
@override_settings(DEMO_MODE=False)
def test_demo_setup_refuses_outside_demo_mode():
    with pytest.raises(CommandError, match="STRATUM_DEMO=1"):
        call_command("demo_setup", "--customers", "5", stdout=io.StringIO())
    assert not get_user_model().objects.exists() and not Customer.objects.exists()


@pytest.mark.django_db
@override_settings(DEMO_MODE=True)
def test_demo_setup_creates_the_store_the_role_users_and_a_fresh_key():
    out = io.StringIO()
    call_command("demo_setup", "--customers", "12", "--seed", "3", stdout=out, verbosity=0)
    User = get_user_model()
    for username, group in (("ops", OPERATIONS), ("support", CUSTOMER_SERVICE), ("analyst", ANALYST)):
        user = User.objects.get(username=username)
        assert user.is_staff and not user.is_superuser and user.check_password("demo")
        assert list(user.groups.values_list("name", flat=True)) == [group]
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("demo")
    assert Customer.objects.count() == 12
    text = out.getvalue()
    assert "http://127.0.0.1:8000/" in text and "curl" in text
    key = api_key_verify(text.strip().splitlines()[-1])
    assert key is not None and set(key.scopes) == set(ApiScope.values)

    out2 = io.StringIO()
    call_command("demo_setup", "--customers", "12", "--seed", "3", stdout=out2, verbosity=0)  # again

    assert Customer.objects.count() == 12  # not generated twice
    assert api_key_verify(text.strip().splitlines()[-1]) is None  # the previous demo key is revoked
    assert api_key_verify(out2.getvalue().strip().splitlines()[-1]) is not None
    assert ApiKey.objects.filter(name="demo storefront", revoked_at__isnull=True).count() == 1
    assert User.objects.filter(username__in=["ops", "support", "analyst", "admin"]).count() == 4
