"""Where serving finds its models, rules and catalog, cheaply.

- The serving state (active model per use, the running experiment, per-tier rules, serving
  configurations) is one small dict in the Django cache (Redis), rebuilt from the database
  when missing and dropped by every service that changes it. Each process keeps its copy for
  RECS_STATE_TTL seconds, so a request normally does no I/O at all to learn what to serve.
- Artefacts are loaded from the TrainedModel row once per process, keyed by model id and
  checksum, and kept (a few at a time, for experiments) as `ServingModel`s.
- The catalog (availability and category of every item) is refreshed per process every
  RECS_CATALOG_TTL seconds with one query; the per-model column arrays are derived from it.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from .artefacts import ServingModel, loads
from .choices import ExperimentStatus, ModelUse, TrainStatus
from .models import Experiment, Item, TierRule, TrainedModel

STATE_KEY = "recs:state:v1"
STATE_CACHE_SECONDS = 600
GENERATION_KEY = "recs:generation"  # part of every cached entry's signature
MAX_LOADED_MODELS = 4

DEFAULT_CONFIG = {
    "exclude_purchased": True,  # never recommend what the customer already bought
    "exclude_interacted": False,  # also hide items merely viewed / carted
    "category_cap": 3,  # at most this many items per category in one list (0: no cap)
    "tier_rules": True,  # apply staff's per-tier boosts and pins
    "history_events": 200,  # recent events read per request
    "half_life_days": 30.0,  # recency weighting of those events
}
CONFIG_TYPES = {"exclude_purchased": bool, "exclude_interacted": bool, "category_cap": int, "tier_rules": bool,
                "history_events": int, "half_life_days": float}


def conf(name: str, default):
    return getattr(settings, name, default)


def config_clean(raw: dict | None) -> dict:
    """Validate a serving configuration (an experiment arm's or a model's); returns it cleaned."""
    from crm.core.errors import InvalidInput

    raw = raw or {}
    if not isinstance(raw, dict):
        raise InvalidInput("A serving configuration must be a JSON object.")
    unknown = sorted(set(raw) - set(CONFIG_TYPES))
    if unknown:
        raise InvalidInput(f"Unknown configuration key(s): {', '.join(unknown)}. Known: {', '.join(CONFIG_TYPES)}.",
                           extra={"unknown": unknown})
    out = {}
    for key, value in raw.items():
        kind = CONFIG_TYPES[key]
        if kind is bool and not isinstance(value, bool):
            raise InvalidInput(f"'{key}' must be true or false.")
        if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise InvalidInput(f"'{key}' must be a non-negative number.")
        out[key] = kind(value)
    if out.get("history_events", 1) < 1 or out.get("history_events", 1) > 1000:
        raise InvalidInput("'history_events' must be from 1 to 1000.")
    if "half_life_days" in out and out["half_life_days"] <= 0:
        raise InvalidInput("'half_life_days' must be positive.")
    return out


# --- serving state ------------------------------------------------------------------------------

_local = threading.local()
_state_lock = threading.Lock()
_state_copy: dict = {"value": None, "at": 0.0}


def _state_from_db() -> dict:
    models = {}
    active = {}
    for pk, use, sha, config in TrainedModel.objects.filter(active=True).values_list("pk", "use", "artefact_sha256",
                                                                                      "serving_config"):
        active[use] = pk
        models[pk] = {"sha": sha, "config": config or {}}
    experiment = None
    exp = (Experiment.objects.filter(status=ExperimentStatus.RUNNING)
           .values("pk", "model_a_id", "model_b_id", "config_a", "config_b", "traffic_b").first())
    if exp:
        experiment = {"id": exp["pk"], "traffic_b": exp["traffic_b"],
                      "a": {"model": exp["model_a_id"], "config": exp["config_a"] or {}},
                      "b": {"model": exp["model_b_id"], "config": exp["config_b"] or {}}}
        extra = [m for m in (exp["model_a_id"], exp["model_b_id"]) if m and m not in models]
        for pk, sha, config in TrainedModel.objects.filter(pk__in=extra, status=TrainStatus.SUCCEEDED).values_list(
                "pk", "artefact_sha256", "serving_config"):
            models[pk] = {"sha": sha, "config": config or {}}
    rules: dict[int, list] = {}
    for tier_id, action, item_id, category, weight in TierRule.objects.filter(active=True).order_by("id").values_list(
            "tier_id", "action", "item_id", "category", "weight"):
        rules.setdefault(tier_id, []).append((action, item_id, category, weight))
    generation = cache.get(GENERATION_KEY)
    if generation is None:
        generation = int(time.time())  # a lost counter never comes back to an old value
        cache.add(GENERATION_KEY, generation, None)
    state = {"active": active, "models": models, "experiment": experiment, "rules": rules,
             "generation": generation}
    state["version"] = hashlib.sha1(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return state


def serving_state() -> dict:
    """The serving state: at most one cache read per RECS_STATE_TTL seconds per process."""
    ttl = conf("RECS_STATE_TTL", 5.0)
    now = time.monotonic()
    value = _state_copy["value"]
    if value is not None and now - _state_copy["at"] < ttl:
        return value
    value = cache.get(STATE_KEY)
    if value is None:
        value = _state_from_db()
        cache.set(STATE_KEY, value, STATE_CACHE_SECONDS)
    _state_copy.update(value=value, at=now)
    return value


def state_changed() -> None:
    """Call after changing what serves (activation, rules, experiments): the next request of
    every process (within RECS_STATE_TTL) rebuilds the state. Dropped now and again after
    commit, so that a state rebuilt by another process before the commit does not stay."""

    def drop():
        cache.delete(STATE_KEY)
        forget_serving_state()

    def drop_and_refresh():
        from .ready import enqueue_refresh_all

        drop()
        enqueue_refresh_all()  # every ready list's signature names the old state

    drop()
    transaction.on_commit(drop_and_refresh)


def forget_serving_state() -> None:
    """Drop this process's copy of the serving state (the next call reads the shared one)."""
    _state_copy.update(value=None, at=0.0)


def bump_cache_generation() -> None:
    """Retire every customer's cached recommendations at once (they age out of Redis)."""
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # missing: start from the clock, above any value used before
        cache.set(GENERATION_KEY, int(time.time()), None)
    state_changed()


def active_model_id(use: str = ModelUse.CUSTOMER) -> int | None:
    return serving_state()["active"].get(use)


# --- artefacts ----------------------------------------------------------------------------------

_models: "OrderedDict[tuple[int, str], ServingModel]" = OrderedDict()
_models_lock = threading.Lock()


def serving_model(model_id: int, sha: str = "") -> ServingModel:
    """The model's ServingModel, loaded from its row at most once per process (and checksum)."""
    key = (model_id, sha)
    with _models_lock:
        found = _models.get(key)
        if found is not None:
            _models.move_to_end(key)
            return found
    row = TrainedModel.objects.filter(pk=model_id).values_list("artefact", "artefact_sha256").first()
    if row is None or row[0] is None:
        raise LookupError(f"trained model {model_id} has no artefact")
    data, stored_sha = row
    data = bytes(data)
    if hashlib.sha256(data).hexdigest() != stored_sha:
        raise ValueError(f"trained model {model_id}: artefact checksum mismatch")
    model = ServingModel(loads(data), model_id=model_id)
    with _models_lock:
        _models[(model_id, stored_sha)] = model
        while len(_models) > MAX_LOADED_MODELS:
            _models.popitem(last=False)
    return model


def forget_loaded_models() -> None:
    """Drop every loaded artefact and the state copy of this process (tests, benchmarks)."""
    with _models_lock:
        _models.clear()
    with _catalog_lock:
        _catalog.update(value=None, at=0.0)
    _state_copy.update(value=None, at=0.0)


# --- catalog ------------------------------------------------------------------------------------

@dataclass
class Catalog:
    by_pk: dict[int, tuple[str, str, str, bool]]  # pk -> (external_id, title, category, available)
    pk_of: dict[str, int]
    categories: frozenset[str]
    stamp: float
    _columns: dict = field(default_factory=dict)

    def columns(self, model: ServingModel) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(available mask, category code, category names) per column of `model`."""
        key = (model.model_id, id(model))
        found = self._columns.get(key)
        if found is None:
            names = sorted(self.categories)
            code_of = {c: i for i, c in enumerate(names)}
            avail = np.zeros(model.n_items, dtype=bool)
            codes = np.full(model.n_items, -1, dtype=np.int32)
            for col, pk in enumerate(model.item_pks.tolist()):
                row = self.by_pk.get(pk)
                if row is not None:
                    avail[col] = row[3]
                    codes[col] = code_of.get(row[2], -1)
            found = (avail, codes, names)
            self._columns[key] = found
        return found


_catalog: dict = {"value": None, "at": 0.0}
_catalog_lock = threading.Lock()


def catalog(fresh: bool = False) -> Catalog:
    """Every item's availability and category, refreshed per process every RECS_CATALOG_TTL s
    (now, with `fresh`)."""
    ttl = 0.0 if fresh else conf("RECS_CATALOG_TTL", 30.0)
    now = time.monotonic()
    value = _catalog["value"]
    if value is not None and now - _catalog["at"] < ttl:
        return value
    with _catalog_lock:
        value = _catalog["value"]
        if value is not None and time.monotonic() - _catalog["at"] < ttl:
            return value
        by_pk, pk_of, categories = {}, {}, set()
        for pk, ext, title, category, active, in_stock in Item.objects.values_list(
                "pk", "external_id", "title", "category", "active", "in_stock").iterator(chunk_size=20_000):
            by_pk[pk] = (ext, title, category, bool(active and in_stock))
            pk_of[ext] = pk
            if category:
                categories.add(category)
        value = Catalog(by_pk, pk_of, frozenset(categories), now)
        _catalog.update(value=value, at=time.monotonic())
        return value
