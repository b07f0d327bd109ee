"""Writes of the recommendations app: train and register models, activate them, per-tier rules,
experiments, the demo model. Every change to what serves ends with `state_changed()`.
"""
from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.core.errors import ApplicationError, InvalidInput
from crm.core.locks import single_flight

from . import features
from .algorithms import ALS, BPR, EASE, ItemKNN, Popularity, RP3beta, best_hybrid, interaction_weights
from .artefacts import DEFAULT_NEIGHBOURS, TRENDING_HALF_LIFE_DAYS, build_artefact, dumps
from .choices import Arm, ExperimentStatus, ModelUse, TierRuleAction, TrainAlgorithm, TrainStatus
from .evaluation import catalog_coverage, mean_average_precision, ndcg_at_k, precision_at_k, recall_at_k
from .model_store import config_clean, state_changed
from .models import Experiment, Item, TierRule, TrainedModel

logger = logging.getLogger(__name__)

TRAIN_LOCK = "recommendations.train"
EVAL_K = 10
EVAL_MAX_USERS = 5000
#: Parameters every algorithm takes (not passed to the constructor).
COMMON_PARAMS = {"half_life_days", "neighbours"}
ALGORITHMS = {
    TrainAlgorithm.EASE: EASE,
    TrainAlgorithm.ALS: ALS,
    TrainAlgorithm.BPR: BPR,
    TrainAlgorithm.ITEM_KNN: ItemKNN,
    TrainAlgorithm.RP3BETA: RP3beta,
    TrainAlgorithm.POPULARITY: Popularity,
}


class TrainingError(ApplicationError):
    code, http_status = "training_failed", 400


class ModelNotReady(ApplicationError):
    code, http_status = "model_not_ready", 409


class ExperimentRunning(ApplicationError):
    code, http_status = "experiment_running", 409


# --- training ---------------------------------------------------------------------------------

def params_clean(algorithm: str, params: dict | None) -> dict:
    """Validate hyper-parameters against the algorithm's constructor; InvalidInput names the bad ones."""
    if algorithm not in TrainAlgorithm.values:
        raise InvalidInput(f"Unknown algorithm '{algorithm}'. Use one of: {', '.join(TrainAlgorithm.values)}.")
    params = dict(params or {})
    allowed = set(COMMON_PARAMS)
    if algorithm != TrainAlgorithm.HYBRID:
        allowed |= set(ALGORITHMS[algorithm].params)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InvalidInput(f"Unknown parameter(s) for {algorithm}: {', '.join(unknown)}. Known: {', '.join(sorted(allowed))}.",
                           extra={"unknown": unknown})
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if key != "implicit" or not isinstance(value, bool):
                raise InvalidInput(f"Parameter '{key}' must be a number.")
    if "neighbours" in params and not 1 <= params["neighbours"] <= 1000:
        raise InvalidInput("'neighbours' must be from 1 to 1000.")
    if "half_life_days" in params and params["half_life_days"] <= 0:
        raise InvalidInput("'half_life_days' must be positive.")
    return params


def make_recommender(algorithm: str, params: dict):
    own = {k: v for k, v in params.items() if k not in COMMON_PARAMS}
    threads = getattr(settings, "RECS_TRAIN_THREADS", 2)
    if algorithm == TrainAlgorithm.HYBRID:
        return best_hybrid(threads=threads)
    cls = ALGORITHMS[algorithm]
    if cls is ALS:
        own.setdefault("num_threads", threads)
    return cls(**own)


def _progress(model: TrainedModel, stage: str, progress: int, **fields) -> None:
    TrainedModel.objects.filter(pk=model.pk).update(stage=stage, progress=progress, updated_at=timezone.now(), **fields)
    model.stage, model.progress = stage, progress
    for k, v in fields.items():
        setattr(model, k, v)


def _tiers_of(users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tier pk per user row, -1 for none; sorted tier pks) on the RECS_TIER_DIMENSION dimension."""
    from segmentation.models import Membership

    dimension = getattr(settings, "RECS_TIER_DIMENSION", "value")
    rows = np.array(list(Membership.objects.filter(dimension__slug=dimension).values_list("customer_id", "tier_id")
                         .iterator(chunk_size=50_000)), dtype=np.int64).reshape(-1, 2)
    user_tier = np.full(len(users), -1, dtype=np.int64)
    if len(rows):
        pos, found = features.encode(users, rows[:, 0])
        user_tier[pos[found]] = rows[found, 1]
    return user_tier, np.unique(user_tier[user_tier >= 0])


def _evaluate(log: features.EventLog, train: np.ndarray, algorithm: str, params: dict, as_of: float) -> dict:
    """Offline metrics on a time-based holdout: fit on events before the cut, score the top 10
    against what each known customer did with known, not-yet-seen items after it."""
    tr = log.subset(train)
    te = log.subset(~train)
    users, items = np.unique(tr.customer), np.unique(tr.item)
    X = features.weighted_matrix(tr, users, items, half_life_days=params.get("half_life_days"), as_of=as_of)
    u, fu = features.encode(users, te.customer)
    i, fi = features.encode(items, te.item)
    keep = fu & fi
    pairs = np.unique(np.stack([u[keep], i[keep]], axis=1), axis=0) if keep.any() else np.empty((0, 2), dtype=np.int64)
    if len(pairs):
        seen = np.asarray(X[pairs[:, 0], pairs[:, 1]]).ravel() > 0
        pairs = pairs[~seen]
    truth: dict[int, list[int]] = {}
    for uu, ii in pairs.tolist():
        truth.setdefault(uu, []).append(ii)
    if not truth:
        return {"k": EVAL_K, "test_users": 0, "note": "no held-out interactions of known customers with known items"}
    test_users = np.array(sorted(truth), dtype=np.int64)
    if len(test_users) > EVAL_MAX_USERS:
        test_users = np.sort(np.random.default_rng(42).choice(test_users, EVAL_MAX_USERS, replace=False))
        truth = {uu: truth[uu] for uu in test_users.tolist()}
    out = {"k": EVAL_K, "test_users": int(len(test_users)), "train_interactions": int(X.nnz),
           "test_interactions": int(sum(len(v) for v in truth.values()))}
    for name, model in (("model", make_recommender(algorithm, params)), ("popularity", Popularity())):
        t0 = time.perf_counter()
        model.fit(X)
        idx, _ = model.recommend(test_users, k=EVAL_K)
        recs = {uu: [x for x in row if x >= 0] for uu, row in zip(test_users.tolist(), idx.tolist())}
        metrics = {"precision": precision_at_k(truth, recs, EVAL_K), "recall": recall_at_k(truth, recs, EVAL_K),
                   "ndcg": ndcg_at_k(truth, recs, EVAL_K), "map": mean_average_precision(truth, recs, EVAL_K),
                   "coverage": catalog_coverage(recs, range(X.shape[1])), "seconds": time.perf_counter() - t0}
        if name == "model":
            out.update(metrics)
        else:
            out["baseline_popularity"] = metrics
    return out


def recommender_train_request(*, algorithm: str = TrainAlgorithm.EASE, params: dict | None = None, use: str = ModelUse.CUSTOMER,
                              window_days: int = 365, holdout_days: int = 14, as_of: datetime | None = None,
                              requested_by=None) -> TrainedModel:
    """Record a training request (QUEUED) and enqueue it after commit (queue "train")."""
    from .tasks import recommender_train as recommender_train_task

    params = params_clean(algorithm, params)
    if use not in ModelUse.values:
        raise InvalidInput(f"Unknown use '{use}'. Use one of: {', '.join(ModelUse.values)}.")
    if not 1 <= window_days <= 3650 or not 0 <= holdout_days < window_days:
        raise InvalidInput("The window must be 1 to 3650 days and the holdout shorter than the window.")
    model = TrainedModel.objects.create(algorithm=algorithm, params=params, use=use, window_days=window_days,
                                        holdout_days=holdout_days, as_of=as_of or timezone.now(),
                                        requested_by=requested_by)

    def enqueue():
        result = recommender_train_task.delay(model.pk)
        TrainedModel.objects.filter(pk=model.pk, celery_task_id="").update(celery_task_id=result.id or "")

    transaction.on_commit(enqueue)
    return model


def recommender_train(*, algorithm: str = TrainAlgorithm.EASE, params: dict | None = None, use: str = ModelUse.CUSTOMER,
                      window_days: int = 365, holdout_days: int = 14, as_of: datetime | None = None,
                      model: TrainedModel | None = None, requested_by=None) -> TrainedModel:
    """Train from the events table and register the model (single-flight).

    Evaluates on a time-based holdout (the last `holdout_days` before `as_of`; fit on the rest
    of the window), then refits on the whole window [as_of - window_days, as_of) and stores
    the serving artefact in the row. Failures are recorded on the row (status FAILED, error),
    not raised. Pass `model` to run a QUEUED row (the Celery task does); a row that already
    finished is returned unchanged, so running the task twice does nothing new.
    """
    if model is None:
        params = params_clean(algorithm, params)
        model = TrainedModel.objects.create(algorithm=algorithm, params=params, use=use, window_days=window_days,
                                            holdout_days=holdout_days, as_of=as_of or timezone.now(),
                                            requested_by=requested_by)
    if model.status != TrainStatus.QUEUED:
        return model
    with single_flight(TRAIN_LOCK) as got:
        if not got:
            _progress(model, "", 100, status=TrainStatus.SKIPPED, error="Another training was in progress.")
            return model
        started = time.perf_counter()
        _progress(model, "loading events", 5, status=TrainStatus.RUNNING, started_at=timezone.now())
        try:
            _train(model, started)
        except Exception as exc:  # recorded on the row for staff to see; training is never retried blindly
            logger.exception("recommender_train_failed model_id=%s", model.pk)
            _progress(model, model.stage, model.progress, status=TrainStatus.FAILED,
                      error=f"{type(exc).__name__}: {exc}"[:2000], training_seconds=time.perf_counter() - started)
    model.refresh_from_db()
    return model


def _train(model: TrainedModel, started: float) -> None:
    as_of = model.as_of
    since = as_of - timedelta(days=model.window_days)
    params = model.params or {}
    log = features.event_log(since=since, until=as_of)
    if not len(log):
        raise TrainingError(f"No interactions between {since:%Y-%m-%d} and {as_of:%Y-%m-%d}: nothing to learn from.")
    as_of_ts = as_of.timestamp()
    metrics: dict = {}
    if model.holdout_days:
        cut = (as_of - timedelta(days=model.holdout_days)).timestamp()
        train = log.ts < cut
        if train.any() and (~train).any():
            _progress(model, "evaluating on the holdout", 15)
            metrics = _evaluate(log, train, model.algorithm, params, cut)
        else:
            metrics = {"k": EVAL_K, "test_users": 0, "note": "the holdout or the training part is empty"}
        metrics["holdout_days"] = model.holdout_days
    _progress(model, "fitting on the whole window", 55)
    users, items = np.unique(log.customer), np.unique(log.item)
    X = features.weighted_matrix(log, users, items, half_life_days=params.get("half_life_days"), as_of=as_of_ts)
    recommender = make_recommender(model.algorithm, params)
    t0 = time.perf_counter()
    recommender.fit(X)
    metrics["fit_seconds"] = time.perf_counter() - t0
    _progress(model, "building the serving artefact", 80)
    user_tier, tier_ids = _tiers_of(users)
    cols, _found = features.encode(items, log.item)
    trend_w = interaction_weights(log.type_names(), log.value, log.ts, event_weights=features.event_weights(),
                                  half_life_days=TRENDING_HALF_LIFE_DAYS, as_of=as_of_ts)
    state = build_artefact(model=recommender, X=X, item_pks=items, item_ts_weights=(cols, trend_w), user_tier=user_tier,
                           tier_ids=tier_ids, neighbours=int(params.get("neighbours", DEFAULT_NEIGHBOURS)))
    data, sha = dumps(state)
    model.artefact = data
    model.artefact_sha256 = sha
    model.artefact_bytes = len(data)
    model.window_start = datetime.fromtimestamp(float(log.ts.min()), tz=UTC) if len(log) else since
    model.window_end = datetime.fromtimestamp(float(log.ts.max()), tz=UTC) if len(log) else as_of
    model.n_users, model.n_items, model.n_interactions = X.shape[0], X.shape[1], int(X.nnz)
    model.metrics = metrics
    model.status = TrainStatus.SUCCEEDED
    model.stage, model.progress = "", 100
    model.trained_at = timezone.now()
    model.training_seconds = time.perf_counter() - started
    model.save(update_fields=["artefact", "artefact_sha256", "artefact_bytes", "window_start", "window_end", "n_users",
                              "n_items", "n_interactions", "metrics", "status", "stage", "progress", "trained_at",
                              "training_seconds", "updated_at"])
    logger.info("recommender_trained model_id=%s algorithm=%s users=%s items=%s seconds=%.1f", model.pk,
                model.algorithm, model.n_users, model.n_items, model.training_seconds)


@transaction.atomic
def recommender_activate(*, model: TrainedModel) -> TrainedModel:
    """Make `model` the one that serves its use; the previous one stops serving in the same transaction."""
    model = TrainedModel.objects.select_for_update().get(pk=model.pk)
    if model.status != TrainStatus.SUCCEEDED or not model.artefact_sha256:
        raise ModelNotReady(f"Model #{model.pk} has not finished training successfully; it cannot serve.",
                            extra={"model": model.pk, "status": model.status})
    if model.active:
        return model
    TrainedModel.objects.filter(use=model.use, active=True).update(active=False, updated_at=timezone.now())
    model.active = True
    model.activated_at = timezone.now()
    model.save(update_fields=["active", "activated_at", "updated_at"])
    state_changed()
    return model


def recommender_train_nightly(*, algorithm: str = TrainAlgorithm.EASE, window_days: int = 365, holdout_days: int = 14,
                              activate: bool = True, tolerance: float = 0.9) -> TrainedModel:
    """The scheduled training. Activates the new model unless its holdout nDCG falls below
    `tolerance` x the active model's (a bad night does not replace a good model)."""
    model = recommender_train(algorithm=algorithm, window_days=window_days, holdout_days=holdout_days)
    if activate and model.status == TrainStatus.SUCCEEDED:
        current = TrainedModel.objects.filter(use=model.use, active=True).first()
        old = (current.metrics or {}).get("ndcg") if current else None
        new = (model.metrics or {}).get("ndcg")
        if current is None or old is None or new is None or new >= tolerance * old:
            model = recommender_activate(model=model)
    return model


# --- per-tier rules ---------------------------------------------------------------------------

def _rule_clean(*, action: str, item: Item | None, category: str, weight: float) -> tuple[str, float]:
    if action not in TierRuleAction.values:
        raise InvalidInput(f"Unknown action '{action}'. Use one of: {', '.join(TierRuleAction.values)}.")
    category = (category or "").strip()
    if (item is None) == (category == ""):
        raise InvalidInput("A rule targets either an item or a category (exactly one of them).")
    if category and not Item.objects.filter(category=category).exists():
        raise InvalidInput(f"No item has the category '{category}'.", extra={"fields": {"category": ["Unknown category."]}})
    if not -10 <= weight <= 10:
        raise InvalidInput("The weight must be from -10 to 10.")
    return category, float(weight)


@transaction.atomic
def tier_rule_create(*, tier, action: str = TierRuleAction.BOOST, item: Item | None = None, category: str = "",
                     weight: float = 0.5, note: str = "", active: bool = True, created_by=None) -> TierRule:
    category, weight = _rule_clean(action=action, item=item, category=category, weight=weight)
    rule = TierRule.objects.create(tier=tier, action=action, item=item, category=category, weight=weight, note=note,
                                   active=active, created_by=created_by)
    state_changed()
    return rule


@transaction.atomic
def tier_rule_update(*, rule: TierRule, **fields) -> TierRule:
    for key in ("tier", "action", "item", "category", "weight", "note", "active"):
        if key in fields:
            setattr(rule, key, fields[key])
    rule.category, rule.weight = _rule_clean(action=rule.action, item=rule.item, category=rule.category, weight=rule.weight)
    rule.save()
    state_changed()
    return rule


@transaction.atomic
def tier_rule_delete(*, rule: TierRule) -> None:
    rule.delete()
    state_changed()


# --- experiments ------------------------------------------------------------------------------

def experiment_check(*, name: str, model_a: TrainedModel | None, model_b: TrainedModel | None,
                     config_a: dict | None, config_b: dict | None, traffic_b: float) -> tuple[dict, dict]:
    """What experiment_create checks before it writes (also the admin's form): the cleaned
    configurations, or an ApplicationError naming what is wrong."""
    if not name.strip():
        raise InvalidInput("An experiment needs a name.")
    if not 0 < traffic_b < 1:
        raise InvalidInput("The share of traffic to B must be between 0 and 1 (exclusive).")
    config_a, config_b = config_clean(config_a), config_clean(config_b)
    for model in (model_a, model_b):
        if model is not None and (model.status != TrainStatus.SUCCEEDED or model.use != ModelUse.CUSTOMER):
            raise ModelNotReady(f"Model #{model.pk} cannot serve customers (it is not a finished customer model).")
    if (model_a and model_a.pk) == (model_b and model_b.pk) and config_a == config_b:
        raise InvalidInput("The two arms are identical: give them different models or configurations.")
    if (model_a is None or model_b is None) and not TrainedModel.objects.filter(use=ModelUse.CUSTOMER, active=True).exists():
        raise ModelNotReady("An arm without a model uses the active model, and none is active.")
    if Experiment.objects.filter(status=ExperimentStatus.RUNNING).exists():
        raise ExperimentRunning("Another experiment is running: stop it first.")
    return config_a, config_b


def experiment_create(*, name: str, model_a: TrainedModel | None = None, model_b: TrainedModel | None = None,
                      config_a: dict | None = None, config_b: dict | None = None, traffic_b: float = 0.5,
                      description: str = "", created_by=None) -> Experiment:
    """Start an A/B test (one runs at a time). Empty model = the active customer model."""
    config_a, config_b = experiment_check(name=name, model_a=model_a, model_b=model_b, config_a=config_a,
                                          config_b=config_b, traffic_b=traffic_b)
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(name=name.strip(), description=description, model_a=model_a,
                                                   model_b=model_b, config_a=config_a, config_b=config_b,
                                                   traffic_b=traffic_b, created_by=created_by)
    except IntegrityError:
        raise ExperimentRunning("Another experiment is running: stop it first.") from None
    state_changed()
    return experiment


@transaction.atomic
def experiment_stop(*, experiment: Experiment, promote: str | None = None) -> Experiment:
    """Stop the experiment; with `promote` ("a" or "b"), that arm wins: its model is activated
    and its configuration becomes the model's serving configuration."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if promote not in (None, "", Arm.A, Arm.B):
        raise InvalidInput("Promote arm 'a' or 'b'.")
    if experiment.status == ExperimentStatus.RUNNING:
        experiment.status = ExperimentStatus.STOPPED
        experiment.stopped_at = timezone.now()
    if promote:
        experiment.winner = promote
        model = experiment.model_a if promote == Arm.A else experiment.model_b
        config = experiment.config_a if promote == Arm.A else experiment.config_b
        if model is None:
            model = TrainedModel.objects.filter(use=ModelUse.CUSTOMER, active=True).first()
        if model is not None:
            if config:
                model.serving_config = {**(model.serving_config or {}), **config}
                model.save(update_fields=["serving_config", "updated_at"])
            recommender_activate(model=model)
    experiment.save()
    state_changed()
    return experiment


# --- demo -------------------------------------------------------------------------------------

def recommendations_install_demo(*, algorithm: str = TrainAlgorithm.EASE) -> str:
    """Train a model on the demo events and activate it (idempotent: skipped when one serves)."""
    from accounts.models import Event

    if TrainedModel.objects.filter(use=ModelUse.CUSTOMER, active=True).exists():
        return "a recommendation model is already active"
    latest = Event.objects.filter(item__isnull=False).order_by("-occurred_at").values_list("occurred_at", flat=True).first()
    if latest is None:
        return "no events with items: nothing to train on"
    as_of = max(latest + timedelta(seconds=1), timezone.now()) if latest > timezone.now() - timedelta(days=30) else latest + timedelta(seconds=1)
    model = recommender_train(algorithm=algorithm, window_days=730, holdout_days=14, as_of=as_of)
    if model.status != TrainStatus.SUCCEEDED:
        return f"training failed: {model.error}"
    recommender_activate(model=model)
    m = model.metrics or {}
    return (f"{model.algorithm} #{model.pk} trained on {model.n_interactions} interactions of {model.n_users} customers "
            f"and {model.n_items} items in {model.training_seconds:.1f} s (holdout nDCG@10 {m.get('ndcg', 0):.3f}) "
            "and activated")
