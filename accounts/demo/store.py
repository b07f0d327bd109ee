"""Writing the demo store: catalog, customers, events and feedback, in bulk and idempotently.

Every row has a deterministic key (item and customer external ids, event ids
f"demo-{seed}-{customer}-{n}"), so a second run with the same seed and as_of stores nothing
new: items and customers are inserted with ignore_conflicts, events through
accounts.services.bulk.events_store (ON CONFLICT DO NOTHING), and a feedback row is
created only with the review event it belongs to.
"""
from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from recommendations.models import Item

from ..choices import ConsentSource, EventType, ImportFormat, JobStatus
from ..models import Customer, DataImport, Feedback
from ..sentiment import analyze
from ..services.bulk import EventRow, events_store
from .behaviour import ARCHETYPE_KEYS, CustomerData, customer_simulate
from .calendar import Calendar, calendar_build
from .catalog import CATEGORIES, Catalog, catalog_build

logger = logging.getLogger(__name__)

EVENT_CHUNK = 20_000
SOURCE_PREFIX = "demo store"


@dataclass(slots=True)
class DemoResult:
    seed: int
    customers: int
    as_of: datetime
    data_start: datetime
    import_id: int
    items_created: int
    customers_created: int
    events_generated: int
    events_created: int
    events_duplicate: int
    feedback_created: int
    seconds_generate: float
    seconds_store: float
    archetypes: dict[str, int] = field(default_factory=dict)
    event_types: dict[str, int] = field(default_factory=dict)
    spend_by_archetype: dict[str, Decimal] = field(default_factory=dict)


def demo_source(*, seed: int, customers: int, years: float) -> str:
    return f"{SOURCE_PREFIX} seed={seed} customers={customers} years={years:g}"


def demo_previous_as_of(*, seed: int, customers: int, years: float) -> datetime | None:
    """as_of of an earlier successful run with the same parameters, so that re-running without
    --as-of regenerates the same data (and so adds nothing) instead of a shifted copy."""
    previous = (DataImport.objects.filter(format=ImportFormat.DEMO, status=JobStatus.SUCCEEDED,
                                          source=demo_source(seed=seed, customers=customers, years=years))
                .order_by("-started_at").first())
    return previous.data_end if previous else None


def demo_store_build(*, seed: int, customers: int, as_of: datetime, years: float = 2.0,
                     progress: Callable[[int], None] | None = None) -> tuple[Calendar, Catalog, list[CustomerData]]:
    """Generate the store in memory (no database): calendar, catalog and customers."""
    cal = calendar_build(as_of=as_of, years=years)
    catalog = catalog_build(seed=seed)
    people = []
    for i in range(customers):
        people.append(customer_simulate(seed=seed, index=i, cal=cal, catalog=catalog))
        if progress and (i + 1) % 100 == 0:
            progress(100)
    if progress and customers % 100:
        progress(customers % 100)
    return cal, catalog, people


def _at(cal: Calendar, t: float) -> datetime:
    moment = cal.start + timedelta(seconds=round(t * 86400.0))
    return min(moment, cal.as_of)


def _items_insert(catalog: Catalog) -> int:
    existing = set(Item.objects.filter(external_id__in=catalog.external_ids).values_list("external_id", flat=True))
    rows = [
        Item(external_id=ext, title=catalog.titles[i], category=CATEGORIES[int(catalog.category[i])].name,
             brand=catalog.brands[i], price=catalog.prices[i], tags=list(catalog.tags[i]),
             attributes={"kind": catalog.kind_en[i], "kind_zh": catalog.kind_zh[i]},
             url=f"https://shop.example.com/p/{ext}", active=True, in_stock=catalog.in_stock[i])
        for i, ext in enumerate(catalog.external_ids) if ext not in existing
    ]
    Item.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    return len(rows)


def _customers_insert(cal: Calendar, people: list[CustomerData]) -> int:
    ids = [p.external_id for p in people]
    existing: set[str] = set()
    for start in range(0, len(ids), 900):
        existing.update(Customer.objects.filter(external_id__in=ids[start:start + 900]).values_list("external_id", flat=True))
    rows = []
    for p in people:
        if p.external_id in existing:
            continue
        signup_at = _at(cal, p.signup_t)
        consented = p.marketing_consent or p.unsubscribed
        rows.append(Customer(
            external_id=p.external_id, email=p.person.email, name=p.person.name, phone=p.person.phone,
            attributes=p.person.attributes, signup_at=signup_at, source_platform=p.platform,
            marketing_consent=p.marketing_consent,
            consent_at=(signup_at + timedelta(days=30) if p.unsubscribed else signup_at) if consented else None,
            consent_source=(ConsentSource.UNSUBSCRIBE if p.unsubscribed else ConsentSource.IMPORT) if consented else "",
            unsubscribed_at=min(signup_at + timedelta(days=30), cal.as_of) if p.unsubscribed else None,
        ))
    Customer.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    return len(rows)


def _event_id(seed: int, customer: int, position: int) -> str:
    return f"demo-{seed}-{customer}-{position}"


@transaction.atomic
def _store(*, seed: int, cal: Calendar, catalog: Catalog, people: list[CustomerData],
           progress: Callable[[int], None] | None) -> tuple[int, int, int, int, int]:
    items_created = _items_insert(catalog)
    customers_created = _customers_insert(cal, people)
    accepted: set[str] = set()
    duplicates = 0
    chunk: list[EventRow] = []

    def flush():
        nonlocal duplicates
        result = events_store(chunk)
        accepted.update(result.accepted)
        duplicates += result.duplicates
        if progress:
            progress(len(chunk))
        chunk.clear()

    for p in people:
        for n, (etype, t, item, amount, qty, platform, props) in enumerate(p.events):
            chunk.append(EventRow(event_id=_event_id(seed, p.index, n), customer=p.external_id, type=etype,
                                  occurred_at=_at(cal, t), item=catalog.external_ids[item] if item >= 0 else None,
                                  amount=amount, quantity=qty, platform=platform, properties=props))
        if len(chunk) >= EVENT_CHUNK:
            flush()
    if chunk:
        flush()

    feedback_rows = []
    customer_ids = dict(Customer.objects.filter(external_id__in=[p.external_id for p in people if p.feedback])
                        .values_list("external_id", "id")) if any(p.feedback for p in people) else {}
    item_ids = dict(Item.objects.filter(external_id__in=catalog.external_ids).values_list("external_id", "id"))
    for p in people:
        for f in p.feedback:
            if _event_id(seed, p.index, f.event_position) not in accepted:
                continue  # stored by an earlier run
            sentiment = _sentiment(f.text)
            feedback_rows.append(Feedback(
                customer_id=customer_ids[p.external_id],
                item_id=item_ids[catalog.external_ids[f.item]] if f.item >= 0 else None,
                text=f.text, rating=f.rating, language=sentiment.language if sentiment else f.language,
                sentiment_score=sentiment.score if sentiment else None,
                sentiment_label=sentiment.label if sentiment else "", occurred_at=_at(cal, f.t),
            ))
    Feedback.objects.bulk_create(feedback_rows, batch_size=500)
    return items_created, customers_created, len(accepted), duplicates, len(feedback_rows)


_SENTIMENT_CACHE: dict[str, object] = {}


def _sentiment(text: str):
    # Feedback comes from a few dozen templates: analyse each distinct text once.
    if text not in _SENTIMENT_CACHE:
        _SENTIMENT_CACHE[text] = analyze(text)
    return _SENTIMENT_CACHE[text]


def demo_store_generate(*, customers: int, seed: int, as_of: datetime | None = None, years: float = 2.0,
                        progress: Callable[[str, int, int], None] | None = None) -> DemoResult:
    """Generate the demo store and store it; records a DataImport (format=demo) with the data range.

    `progress(stage, advance, total)` is called as customers are simulated ("generate") and
    events are stored ("store"). Re-running with the same seed, size, years and as_of adds
    nothing; without as_of, the as_of of the previous identical run is reused.
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if not 1 <= years <= 5:
        raise ValueError("years must be between 1 and 5")
    as_of = as_of or demo_previous_as_of(seed=seed, customers=customers, years=years) or timezone.now()
    as_of = as_of.astimezone(UTC).replace(microsecond=0)
    if as_of > timezone.now() + timedelta(minutes=1):
        raise ValueError("as_of cannot be in the future")
    run = DataImport.objects.create(format=ImportFormat.DEMO,
                                    source=demo_source(seed=seed, customers=customers, years=years))
    try:
        t0 = time.perf_counter()
        cal, catalog, people = demo_store_build(
            seed=seed, customers=customers, as_of=as_of, years=years,
            progress=(lambda n: progress("generate", n, customers)) if progress else None)
        t1 = time.perf_counter()
        total_events = sum(len(p.events) for p in people)
        items_created, customers_created, created, duplicates, feedback_created = _store(
            seed=seed, cal=cal, catalog=catalog, people=people,
            progress=(lambda n: progress("store", n, total_events)) if progress else None)
        t2 = time.perf_counter()
    except Exception as exc:
        DataImport.objects.filter(pk=run.pk).update(status=JobStatus.FAILED, error=repr(exc)[:2000],
                                                    finished_at=timezone.now())
        raise
    DataImport.objects.filter(pk=run.pk).update(
        status=JobStatus.SUCCEEDED, rows_total=total_events, customers_created=customers_created,
        items_created=items_created, events_created=created, events_duplicate=duplicates,
        data_start=cal.start, data_end=as_of, finished_at=timezone.now(),
    )
    archetypes = Counter(p.archetype for p in people)
    spend: dict[str, Decimal] = defaultdict(Decimal)
    types: Counter = Counter()
    for p in people:
        for e in p.events:
            types[e[0]] += 1
            if e[0] == EventType.PURCHASE:
                spend[p.archetype] += e[3]
    logger.info("demo_store_generated seed=%s customers=%s events=%s created=%s seconds=%.1f",
                seed, customers, total_events, created, t2 - t0)
    return DemoResult(
        seed=seed, customers=customers, as_of=as_of, data_start=cal.start, import_id=run.pk,
        items_created=items_created, customers_created=customers_created, events_generated=total_events,
        events_created=created, events_duplicate=duplicates, feedback_created=feedback_created,
        seconds_generate=t1 - t0, seconds_store=t2 - t1,
        archetypes={k: archetypes.get(k, 0) for k in ARCHETYPE_KEYS}, event_types=dict(types.most_common()),
        spend_by_archetype={k: spend.get(k, Decimal(0)) for k in ARCHETYPE_KEYS},
    )
