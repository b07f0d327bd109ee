"""Fixtures of the registry, serving and experiment tests: a small shop with a clear taste
structure (book readers buy books, runners buy sports gear), tiers and a trained model."""
from __future__ import annotations

import importlib
import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.utils import timezone

from accounts.models import Customer, Event
from recommendations.model_store import forget_loaded_models
from recommendations.models import Item

DAY = timedelta(days=1)
_seq = itertools.count(1)


@pytest.fixture(autouse=True)
def _fresh_serving(settings):
    """No in-process staleness in tests: state and catalog are re-read on every request."""
    settings.RECS_STATE_TTL = 0
    settings.RECS_CATALOG_TTL = 0
    forget_loaded_models()
    yield
    forget_loaded_models()


@pytest.fixture
def dimensions(db):
    importlib.import_module("segmentation.migrations.0002_builtin_dimensions").install(django_apps, None)


def item(ext: str, category: str, **extra) -> Item:
    return Item.objects.create(external_id=ext, title=extra.pop("title", ext.replace("-", " ").title()),
                               category=category, **extra)


def customer(ext: str) -> Customer:
    return Customer.objects.create(external_id=ext)


def event(c: Customer, it: Item | None, type: str = "view", at=None, amount: str | None = None, **properties) -> Event:
    return Event.objects.create(event_id=f"e{next(_seq)}", customer=c, item=it, type=type,
                                occurred_at=at or timezone.now() - DAY, amount=Decimal(amount) if amount else None,
                                properties=properties)


@pytest.fixture
def shop(db):
    """12 books, 12 sports items, 4 toys; 30 readers and 30 runners with consistent tastes."""
    now = timezone.now()
    books = [item(f"book-{i}", "Books") for i in range(12)]
    sports = [item(f"sport-{i}", "Sports") for i in range(12)]
    toys = [item(f"toy-{i}", "Toys") for i in range(4)]
    readers, runners = [], []
    for n in range(30):
        r = customer(f"reader-{n}")
        readers.append(r)
        for k in range(6):
            b = books[(n + k) % 12]
            event(r, b, "view", at=now - (40 - k) * DAY)
            event(r, b, "purchase", at=now - (39 - k) * DAY, amount="12.00")
        s = customer(f"runner-{n}")
        runners.append(s)
        for k in range(6):
            it = sports[(n + k) % 12]
            event(s, it, "view", at=now - (40 - k) * DAY)
            event(s, it, "purchase", at=now - (39 - k) * DAY, amount="30.00")
        if n % 5 == 0:  # some toys, so the category exists in the model
            event(r, toys[n % 4], "view", at=now - 20 * DAY)
    return {"books": books, "sports": sports, "toys": toys, "readers": readers, "runners": runners, "now": now}


@pytest.fixture
def trained(shop):
    """An EASE model trained on the shop (no holdout) and activated."""
    from recommendations.services import recommender_activate, recommender_train

    model = recommender_train(algorithm="ease", params={"l2": 10}, window_days=365, holdout_days=0)
    assert model.status == "succeeded", model.error
    return recommender_activate(model=model)
