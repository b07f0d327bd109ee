"""Training, evaluation and activation of the predictive models (clusters, churn, value).

Every model is trained on features as of a past cutoff with outcomes observed after it, is
recorded as a PredictiveModel (metrics, parameters, cutoff, horizon, rows, seconds) and, once
activated, is compiled to SQL by the engine: the next recompute writes its scores for every
customer set-based. Evaluation is out of time where the data allow it: train on features as of
`as_of - 2 * horizon` labelled by the following `horizon` days, test on features as of
`as_of - horizon` labelled by the days up to `as_of`. With too little history for that (a
365-day horizon on 18 months of data), the test is a held-out share of customers at
`as_of - horizon`, and the metrics say so. The production model is then refitted on the latest
labelled cutoff (`as_of - horizon`) with every customer.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from django.db import transaction
from django.utils import timezone

from crm.core.errors import ApplicationError, InvalidInput

from ..choices import DimensionKind, ModelKind, RunStatus
from ..models import Cluster, Dimension, Membership, PredictiveModel, Tier, TierChange
from . import algorithms as alg
from .algorithms import InputSpec
from .data import FeatureFrame, event_span, feature_frame, repeat_summary, window_outcomes

logger = logging.getLogger(__name__)

DAY = timedelta(days=1)
CHURN_HORIZON_DAYS = 90
ORDERS_HORIZON_DAYS = 90    # predicted_orders_90d
VALUE_HORIZON_DAYS = 365    # predicted_value_365d
MIN_HISTORY_DAYS = 30       # an out-of-time training cutoff needs this much history before it
HOLDOUT_SHARE = 0.3
VALUE_CLIP = (0.0, 1e7)
CLUSTER_K_RANGE = (3, 8)
CLUSTER_SAMPLE = 5000

# Day counts are NULL when the thing never happened: "longer ago than anyone", a constant so
# that every cutoff and model fills them the same way.
NEVER_DAYS = 3650

# Predictors of churn and value: recency, frequency, monetary value, tenure, engagement.
PREDICTORS = [
    InputSpec("recency_days", log1p=True, fill=NEVER_DAYS),
    InputSpec("activity_recency_days", log1p=True, fill=NEVER_DAYS),
    InputSpec("tenure_days", log1p=True, fill=0),
    InputSpec("days_since_signup", log1p=True, fill=0),
    InputSpec("orders_30d", log1p=True),
    InputSpec("orders_90d", log1p=True),
    InputSpec("orders_prev_90d", log1p=True),
    InputSpec("orders_365d", log1p=True),
    InputSpec("orders_total", log1p=True),
    InputSpec("revenue_90d", log1p=True),
    InputSpec("revenue_365d", log1p=True),
    InputSpec("revenue_total", log1p=True),
    InputSpec("avg_order_value", log1p=True, fill=0),
    InputSpec("sessions_30d", log1p=True),
    InputSpec("events_30d", log1p=True),
]
# Clustering: log-scaled RFM, tenure and engagement.
CLUSTER_FEATURES = [
    InputSpec("recency_days", log1p=True, fill=NEVER_DAYS),
    InputSpec("orders_total", log1p=True),
    InputSpec("revenue_total", log1p=True),
    InputSpec("avg_order_value", log1p=True, fill=0),
    InputSpec("tenure_days", log1p=True, fill=0),
    InputSpec("activity_recency_days", log1p=True, fill=NEVER_DAYS),
    InputSpec("sessions_30d", log1p=True),
    InputSpec("events_30d", log1p=True),
]
CLUSTER_DIMENSION = "clusters"
CLUSTER_FALLBACK = "unclustered"
PALETTE = ["#6f42c1", "#198754", "#0d6efd", "#20c997", "#fd7e14", "#dc3545", "#0dcaf0", "#d63384", "#ffc107", "#6c757d"]


class ModelNotReady(ApplicationError):
    code, http_status = "model_not_ready", 409


class NotEnoughData(ApplicationError):
    code, http_status = "not_enough_data", 422


# ---------------------------------------------------------------------------------------
# Shared plumbing
# ---------------------------------------------------------------------------------------
@dataclass
class Frames:
    """Feature frames by cutoff, so that training several models reuses one aggregation."""

    cache: dict = field(default_factory=dict)

    def get(self, as_of: datetime, specs: list[InputSpec]) -> FeatureFrame:
        fields = [s.field for s in specs]
        key = (as_of, tuple(fields))
        if key not in self.cache:
            self.cache[key] = feature_frame(as_of=as_of, fields=fields)
        return self.cache[key]


def _default_as_of() -> datetime:
    from ..services import default_as_of

    return default_as_of()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _check_horizon(horizon_days: int) -> int:
    if not isinstance(horizon_days, int) or not 1 <= horizon_days <= 3650:
        raise InvalidInput(f"horizon_days must be a whole number of days between 1 and 3650, not {horizon_days!r}.")
    return horizon_days


@dataclass
class Plan:
    """Where to train and test: out of time if the history allows, else a customer holdout."""

    mode: str  # "out_of_time" | "customer_holdout"
    test_cutoff: datetime
    train_cutoff: datetime
    horizon: timedelta


def evaluation_plan(*, as_of: datetime, horizon_days: int, data_start: datetime | None) -> Plan:
    horizon = horizon_days * DAY
    test_cutoff = as_of - horizon
    train_cutoff = as_of - 2 * horizon
    if data_start is not None and test_cutoff <= data_start:
        raise NotEnoughData(f"The data start on {data_start:%Y-%m-%d}; a {horizon_days}-day horizon as of "
                            f"{as_of:%Y-%m-%d} needs history before {test_cutoff:%Y-%m-%d}.")
    if data_start is None or train_cutoff >= data_start + MIN_HISTORY_DAYS * DAY:
        return Plan("out_of_time", test_cutoff, train_cutoff, horizon)
    return Plan("customer_holdout", test_cutoff, test_cutoff, horizon)


def _holdout_mask(ids: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    """A stable pseudo-random share of customers (by id), the same for every model."""
    h = (ids.astype(np.uint64) * np.uint64(2654435761) + np.uint64(seed)) % np.uint64(10_000)
    return h < np.uint64(int(share * 10_000))


def _new_record(*, kind: str, algorithm: str, params: dict, cutoff: datetime, horizon_days: int | None) -> PredictiveModel:
    return PredictiveModel.objects.create(kind=kind, algorithm=algorithm, params=params, cutoff=cutoff,
                                          horizon_days=horizon_days, status=RunStatus.RUNNING)


def _finish(record: PredictiveModel, *, started: float, artefact: dict, metrics: dict, rows: int) -> PredictiveModel:
    record.artefact, record.metrics, record.training_rows = artefact, metrics, rows
    record.training_seconds = round(time.perf_counter() - started, 3)
    record.status = RunStatus.SUCCEEDED
    record.save(update_fields=["artefact", "metrics", "training_rows", "training_seconds", "status", "updated_at"])
    logger.info("predictive_model_trained id=%s kind=%s rows=%s seconds=%s", record.pk, record.kind, rows,
                record.training_seconds)
    return record


def _fail(record: PredictiveModel, exc: BaseException) -> None:
    PredictiveModel.objects.filter(pk=record.pk).update(status=RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000],
                                                        updated_at=timezone.now())
    logger.exception("predictive_model_failed id=%s kind=%s", record.pk, record.kind)


# ---------------------------------------------------------------------------------------
# Churn
# ---------------------------------------------------------------------------------------
def churn_evaluate(*, as_of: datetime, horizon_days: int = CHURN_HORIZON_DAYS, c: float = 1.0,
                   frames: Frames | None = None) -> tuple[dict, dict]:
    """Evaluate a churn classifier; returns (metrics, production artefact).

    Label: no purchase in the `horizon_days` after the cutoff. The threshold maximises F1 on the
    training period and is then applied unchanged to the test period.
    """
    frames = frames or Frames()
    plan = evaluation_plan(as_of=as_of, horizon_days=horizon_days, data_start=event_span()[0])
    test = frames.get(plan.test_cutoff, PREDICTORS)
    if len(test) == 0:
        raise NotEnoughData("No customers existed at the test cutoff.")
    test_orders, _ = window_outcomes(ids=test.ids, start=plan.test_cutoff, end=as_of)
    y_test = (test_orders == 0).astype(int)
    if plan.mode == "out_of_time":
        train = frames.get(plan.train_cutoff, PREDICTORS)
        train_orders, _ = window_outcomes(ids=train.ids, start=plan.train_cutoff, end=plan.train_cutoff + plan.horizon)
        raw_train, y_train, raw_test, y_eval = train.raw, (train_orders == 0).astype(int), test.raw, y_test
    else:
        hold = _holdout_mask(test.ids, HOLDOUT_SHARE)
        raw_train, y_train, raw_test, y_eval = test.raw[~hold], y_test[~hold], test.raw[hold], y_test[hold]
    inputs = alg.fit_inputs(raw_train, PREDICTORS)
    spec = alg.fit_logistic(alg.transform(raw_train, inputs), y_train, c=c)
    p_train = alg.linear_output(alg.transform(raw_train, inputs), spec)
    threshold = alg.best_f1_threshold(y_train, p_train)
    p_test = alg.linear_output(alg.transform(raw_test, inputs), spec)

    # Production: the latest labelled cutoff, every customer.
    prod_inputs = alg.fit_inputs(test.raw, PREDICTORS)
    prod_spec = alg.fit_logistic(alg.transform(test.raw, prod_inputs), y_test, c=c)
    p_prod = alg.linear_output(alg.transform(test.raw, prod_inputs), prod_spec)
    prod_threshold = alg.best_f1_threshold(y_test, p_prod)
    metrics = {
        "label": f"no purchase in the {horizon_days} days after the cutoff",
        "evaluation": plan.mode,
        "train_cutoff": _iso(plan.train_cutoff), "test_cutoff": _iso(plan.test_cutoff), "as_of": _iso(as_of),
        "train": alg.classification_metrics(y_train, p_train, threshold=threshold),
        "test": alg.classification_metrics(y_eval, p_test, threshold=threshold),
        "fit": {"cutoff": _iso(plan.test_cutoff), "rows": int(len(y_test)), "positive_rate": round(float(y_test.mean()), 4),
                "threshold": round(prod_threshold, 4),
                "coefficients": {i["field"]: round(cf, 4) for i, cf in zip(prod_inputs, prod_spec["coef"], strict=True)}},
    }
    artefact = {"inputs": prod_inputs, "outputs": {"churn_probability": prod_spec}, "threshold": prod_threshold}
    return metrics, artefact


def churn_train(*, as_of: datetime | None = None, horizon_days: int = CHURN_HORIZON_DAYS, c: float = 1.0,
                frames: Frames | None = None) -> PredictiveModel:
    """Train, evaluate and record a churn model (logistic regression); not activated."""
    as_of = as_of or _default_as_of()
    _check_horizon(horizon_days)
    record = _new_record(kind=ModelKind.CHURN, algorithm="logistic_regression",
                         params={"C": c, "as_of": _iso(as_of), "inputs": [s.field for s in PREDICTORS]},
                         cutoff=as_of - horizon_days * DAY, horizon_days=horizon_days)
    started = time.perf_counter()
    try:
        metrics, artefact = churn_evaluate(as_of=as_of, horizon_days=horizon_days, c=c, frames=frames)
    except Exception as exc:
        _fail(record, exc)
        raise
    return _finish(record, started=started, artefact=artefact, metrics=metrics, rows=metrics["fit"]["rows"])


# ---------------------------------------------------------------------------------------
# Customer value
# ---------------------------------------------------------------------------------------
def value_evaluate(*, as_of: datetime, horizon_days: int, frames: Frames | None = None, bgnbd: bool = False,
                   plan: Plan | None = None) -> tuple[dict, dict[str, dict], list[dict]]:
    """Expected orders and revenue over `horizon_days`: Poisson (log-link) regressions against the
    naive "next period equals the last period" baseline (and BG/NBD + Gamma-Gamma if asked).

    Returns (metrics, production output specs {"orders": spec, "revenue": spec}, production inputs).
    """
    frames = frames or Frames()
    plan = plan or evaluation_plan(as_of=as_of, horizon_days=horizon_days, data_start=event_span()[0])
    test_end = plan.test_cutoff + plan.horizon
    test = frames.get(plan.test_cutoff, PREDICTORS)
    if len(test) == 0:
        raise NotEnoughData("No customers existed at the test cutoff.")
    y_orders, y_revenue = window_outcomes(ids=test.ids, start=plan.test_cutoff, end=test_end)
    naive_orders, naive_revenue = window_outcomes(ids=test.ids, start=plan.test_cutoff - plan.horizon, end=plan.test_cutoff)
    if plan.mode == "out_of_time":
        train = frames.get(plan.train_cutoff, PREDICTORS)
        t_orders, t_revenue = window_outcomes(ids=train.ids, start=plan.train_cutoff, end=plan.train_cutoff + plan.horizon)
        raw_train, eval_rows = train.raw, np.ones(len(test), dtype=bool)
    else:
        eval_rows = _holdout_mask(test.ids, HOLDOUT_SHARE)
        raw_train, t_orders, t_revenue = test.raw[~eval_rows], y_orders[~eval_rows], y_revenue[~eval_rows]
    inputs = alg.fit_inputs(raw_train, PREDICTORS)
    z_train, z_test = alg.transform(raw_train, inputs), alg.transform(test.raw[eval_rows], inputs)
    orders_spec = alg.fit_poisson(z_train, t_orders)
    revenue_spec = alg.fit_poisson(z_train, t_revenue, clip=VALUE_CLIP)
    actual_o, actual_r = y_orders[eval_rows], np.maximum(y_revenue[eval_rows], 0)
    result = {
        "evaluation": plan.mode, "horizon_days": horizon_days,
        "train_cutoff": _iso(plan.train_cutoff), "test_cutoff": _iso(plan.test_cutoff), "test_end": _iso(test_end),
        "orders": {"model": alg.regression_metrics(actual_o, alg.linear_output(z_test, orders_spec)),
                   "naive": alg.regression_metrics(actual_o, naive_orders[eval_rows])},
        "revenue": {"model": alg.regression_metrics(actual_r, alg.linear_output(z_test, revenue_spec)),
                    "naive": alg.regression_metrics(actual_r, np.maximum(naive_revenue[eval_rows], 0))},
    }
    if bgnbd:
        result["bgnbd"] = _bgnbd_compare(test.ids[eval_rows], actual_o, actual_r, cutoff=plan.test_cutoff,
                                         horizon_days=horizon_days, into=result)
    # Production fit: the latest labelled cutoff, every customer.
    prod_inputs = alg.fit_inputs(test.raw, PREDICTORS)
    z_all = alg.transform(test.raw, prod_inputs)
    specs = {"orders": alg.fit_poisson(z_all, y_orders), "revenue": alg.fit_poisson(z_all, y_revenue, clip=VALUE_CLIP)}
    result["fit"] = {"cutoff": _iso(plan.test_cutoff), "rows": int(len(test))}
    return result, specs, prod_inputs


def _bgnbd_compare(ids: np.ndarray, actual_orders: np.ndarray, actual_revenue: np.ndarray, *, cutoff: datetime,
                   horizon_days: int, into: dict) -> dict:
    """Fit BG/NBD + Gamma-Gamma on the purchase history up to `cutoff`; score `ids`.

    Purchases are counted in purchase days (the model's transactions); customers without a
    purchase by the cutoff are predicted zero.
    """
    summ = repeat_summary(end=cutoff)
    bg = alg.fit_bgnbd(summ.x, summ.t_x, summ.T)
    gg = alg.fit_gamma_gamma(summ.x, summ.m)
    exp_orders = alg.bgnbd_expected(bg, float(horizon_days), summ.x, summ.t_x, summ.T)
    exp_value = alg.gamma_gamma_expected(gg, summ.x, summ.m)
    pos = np.searchsorted(summ.ids, ids)
    pos_ok = np.clip(pos, 0, max(len(summ.ids) - 1, 0))
    known = (summ.ids[pos_ok] == ids) if len(summ.ids) else np.zeros(len(ids), dtype=bool)
    pred_o = np.where(known, exp_orders[pos_ok], 0.0) if len(summ.ids) else np.zeros(len(ids))
    pred_r = np.where(known, exp_orders[pos_ok] * exp_value[pos_ok], 0.0) if len(summ.ids) else np.zeros(len(ids))
    into["orders"]["bgnbd"] = alg.regression_metrics(actual_orders, pred_o)
    into["revenue"]["bgnbd_gamma_gamma"] = alg.regression_metrics(actual_revenue, pred_r)
    return {"bgnbd": {k: round(v, 6) for k, v in bg.as_dict().items()},
            "gamma_gamma": {k: round(v, 6) for k, v in gg.as_dict().items()}, "customers": int(len(summ.ids))}


def value_train(*, as_of: datetime | None = None, frames: Frames | None = None, bgnbd: bool = False) -> PredictiveModel:
    """Train, evaluate and record the value model: Poisson regressions for the orders of the next
    90 days and the revenue of the next 365 days (each at its own cutoff); not activated."""
    as_of = as_of or _default_as_of()
    frames = frames or Frames()
    record = _new_record(kind=ModelKind.VALUE, algorithm="poisson_regression",
                         params={"as_of": _iso(as_of), "orders_horizon_days": ORDERS_HORIZON_DAYS,
                                 "value_horizon_days": VALUE_HORIZON_DAYS, "inputs": [s.field for s in PREDICTORS]},
                         cutoff=as_of - VALUE_HORIZON_DAYS * DAY, horizon_days=VALUE_HORIZON_DAYS)
    started = time.perf_counter()
    try:
        orders_metrics, orders_specs, orders_inputs = value_evaluate(as_of=as_of, horizon_days=ORDERS_HORIZON_DAYS,
                                                                     frames=frames, bgnbd=bgnbd)
        value_days = _fitting_horizon(as_of=as_of, wanted=VALUE_HORIZON_DAYS)
        value_metrics, value_specs, value_inputs = value_evaluate(as_of=as_of, horizon_days=value_days,
                                                                  frames=frames, bgnbd=bgnbd)
    except Exception as exc:
        _fail(record, exc)
        raise
    if value_days < VALUE_HORIZON_DAYS:
        # Less history than a 365-day window: the model of the longest window that fits, scaled
        # to 365 days (a rate times the time; exp link, so the factor goes into the intercept).
        spec = value_specs["revenue"]
        spec["intercept"] += math.log(VALUE_HORIZON_DAYS / value_days)
        value_metrics["scaled_to_days"] = VALUE_HORIZON_DAYS
    # The two outputs are fitted at different cutoffs; the artefact has one list of inputs, so the
    # orders model is re-expressed on the value model's standardisation (an exact linear change).
    orders_spec = _restandardise(orders_specs["orders"], orders_inputs, value_inputs)
    artefact = {"inputs": value_inputs,
                "outputs": {"predicted_orders_90d": orders_spec, "predicted_value_365d": value_specs["revenue"]}}
    metrics = {"orders_90d": orders_metrics, "value_365d": value_metrics}
    return _finish(record, started=started, artefact=artefact, metrics=metrics, rows=value_metrics["fit"]["rows"])


def _fitting_horizon(*, as_of: datetime, wanted: int) -> int:
    """`wanted` days, or the longest window that leaves MIN_HISTORY_DAYS of history before it."""
    start = event_span()[0]
    if start is None:
        return wanted
    room = (as_of - start).days - MIN_HISTORY_DAYS
    if room >= wanted:
        return wanted
    if room < MIN_HISTORY_DAYS:
        raise NotEnoughData(f"The data start on {start:%Y-%m-%d}: too little history as of {as_of:%Y-%m-%d} "
                            f"to learn customer value.")
    return room


def _restandardise(spec: dict, old: list[dict], new: list[dict]) -> dict:
    """The same linear predictor over inputs standardised with `new` instead of `old`.

    b.(x - m_old)/s_old = b.(s_new z_new + m_new - m_old)/s_old, so coef' = b s_new/s_old and the
    intercept absorbs b (m_new - m_old)/s_old. Exact because both use the same fills and log1p.
    """
    coef, intercept = [], spec["intercept"]
    for b, o, n in zip(spec["coef"], old, new, strict=True):
        if (o["field"], o["fill"], o["log1p"]) != (n["field"], n["fill"], n["log1p"]):
            raise ValueError(f"inputs differ in more than standardisation: {o} vs {n}")
        coef.append(b * n["scale"] / o["scale"])
        intercept += b * (n["mean"] - o["mean"]) / o["scale"]
    return {**spec, "intercept": intercept, "coef": coef}


# ---------------------------------------------------------------------------------------
# Clustering
# ---------------------------------------------------------------------------------------
def cluster_train(*, as_of: datetime | None = None, k_min: int = CLUSTER_K_RANGE[0], k_max: int = CLUSTER_K_RANGE[1],
                  sample: int = CLUSTER_SAMPLE, seed: int = 0, frames: Frames | None = None) -> PredictiveModel:
    """k-means on log-scaled, standardised RFM and engagement features, k by silhouette.

    Clusters are numbered by descending typical lifetime revenue and named from their
    centroids; stored as Cluster rows (name, size, centroid in original units: the standardised
    centroid transformed back) with each cluster's medians in the metrics. Not activated.
    """
    as_of = as_of or _default_as_of()
    frames = frames or Frames()
    record = _new_record(kind=ModelKind.CLUSTER, algorithm="kmeans",
                         params={"as_of": _iso(as_of), "k_range": [k_min, k_max], "silhouette_sample": sample, "seed": seed,
                                 "inputs": [s.field for s in CLUSTER_FEATURES]},
                         cutoff=as_of, horizon_days=None)
    started = time.perf_counter()
    try:
        frame = frames.get(as_of, CLUSTER_FEATURES)
        if len(frame) < 3:
            raise NotEnoughData("Clustering needs at least three customers.")
        inputs = alg.fit_inputs(frame.raw, CLUSTER_FEATURES)
        z = alg.transform(frame.raw, inputs)
        result = alg.kmeans_auto(z, k_min=k_min, k_max=k_max, sample=sample, seed=seed)
        revenue_col = [i["field"] for i in inputs].index("revenue_total")
        result = alg.order_clusters(result, by=result.centroids[:, revenue_col])
        names = alg.cluster_names(result.centroids, inputs)
        originals = alg.untransform(result.centroids, inputs)
        sizes = np.bincount(result.labels, minlength=result.k)
        fields = [i["field"] for i in inputs]
        population = {f: round(float(np.nanmedian(frame.raw[:, j])), 2) if np.isfinite(frame.raw[:, j]).any() else None
                      for j, f in enumerate(fields)}
        clusters = []
        for i in range(result.k):
            members = frame.raw[result.labels == i]
            clusters.append({"index": i, "name": names[i], "size": int(sizes[i]),
                             "centroid": {f: round(float(v), 2) for f, v in zip(fields, originals[i], strict=True)},
                             "median": {f: (round(float(np.nanmedian(members[:, j])), 2)
                                            if members.size and np.isfinite(members[:, j]).any() else None)
                                        for j, f in enumerate(fields)}})
        metrics = {"k": result.k, "silhouette": {str(k): round(v, 4) for k, v in result.silhouette.items()},
                   "inertia": round(result.inertia, 2), "population_median": population,
                   "clusters": [{"index": c["index"], "name": c["name"], "size": c["size"], "median": c["median"]}
                                for c in clusters]}
        artefact = {"inputs": inputs, "centroids": [[float(v) for v in c] for c in result.centroids]}
        with transaction.atomic():
            Cluster.objects.bulk_create([Cluster(model=record, index=c["index"], name=c["name"][:100], size=c["size"],
                                                 centroid=c["centroid"])
                                         for c in clusters])
            return _finish(record, started=started, artefact=artefact, metrics=metrics, rows=len(frame))
    except Exception as exc:
        _fail(record, exc)
        raise


# ---------------------------------------------------------------------------------------
# Activation
# ---------------------------------------------------------------------------------------
@transaction.atomic
def predictive_model_activate(*, model: PredictiveModel) -> PredictiveModel:
    """Make `model` the active one of its kind (the previous one is deactivated).

    The next full recompute writes its scores. Activating a clustering model creates or
    updates the "clusters" dimension: one tier per cluster (rule cluster = i), so cluster
    changes are recorded as tier changes with cause "model".
    """
    model = PredictiveModel.objects.select_for_update().get(pk=model.pk)
    if model.status != RunStatus.SUCCEEDED or not model.artefact.get("inputs"):
        raise ModelNotReady(f"Model {model.pk} did not finish training; it cannot be activated.",
                            extra={"model_id": model.pk, "status": model.status})
    # Lock the kind's active row first so two activations serialise on it.
    list(PredictiveModel.objects.select_for_update().filter(kind=model.kind, active=True).order_by("pk"))
    PredictiveModel.objects.filter(kind=model.kind, active=True).exclude(pk=model.pk).update(active=False)
    if not model.active:
        model.active = True
        model.save(update_fields=["active", "updated_at"])
    if model.kind == ModelKind.CLUSTER:
        cluster_dimension_sync(model=model)
    logger.info("predictive_model_activated id=%s kind=%s", model.pk, model.kind)
    return model


@transaction.atomic
def predictive_model_deactivate(*, model: PredictiveModel) -> PredictiveModel:
    """No active model of this kind any more: the next recompute writes NULL scores."""
    PredictiveModel.objects.filter(pk=model.pk).update(active=False)
    if model.kind == ModelKind.CLUSTER:
        Dimension.objects.filter(slug=CLUSTER_DIMENSION).update(active=False)
    model.refresh_from_db()
    return model


def cluster_dimension_sync(*, model: PredictiveModel) -> Dimension:
    """The "clusters" dimension mirrors the clustering model: tier cluster-i has rule cluster = i.

    Tiers are updated in place (history refers to them). Tiers of clusters the model no longer
    has are deleted when nobody was ever in them, else kept with an empty rule (matches nobody).
    """
    dim, _ = Dimension.objects.get_or_create(
        slug=CLUSTER_DIMENSION,
        defaults={"name": "Clusters", "kind": DimensionKind.CLUSTER, "order": 50,
                  "description": "Groups of similar customers found by k-means on RFM and engagement features."})
    if dim.kind != DimensionKind.CLUSTER or not dim.active:
        dim.kind, dim.active = DimensionKind.CLUSTER, True
        dim.save(update_fields=["kind", "active", "updated_at"])
    keep = set()
    medians = {c["index"]: c.get("median", {}) for c in model.metrics.get("clusters", [])}
    for c in model.clusters.order_by("index"):
        slug = f"cluster-{c.index}"
        keep.add(slug)
        profile = medians.get(c.index) or c.centroid
        desc = (f"Cluster {c.index} of model #{model.pk}: {c.size:,} customers; typical customer: "
                + ", ".join(f"{k} {v:g}" for k, v in profile.items() if v is not None))
        Tier.objects.update_or_create(dimension=dim, slug=slug, defaults={
            "name": c.name[:100], "order": c.index + 1, "rule": {"field": "cluster", "op": "=", "value": c.index},
            "colour": PALETTE[c.index % len(PALETTE)], "description": desc})
    fallback, _ = Tier.objects.update_or_create(dimension=dim, slug=CLUSTER_FALLBACK, defaults={
        "name": "Not clustered", "order": 99, "rule": {}, "colour": "#adb5bd",
        "description": "Customers the active model has not scored yet (the fallback)."})
    for tier in dim.tiers.exclude(slug__in=keep | {CLUSTER_FALLBACK}):
        used = Membership.objects.filter(tier=tier).exists() or TierChange.objects.filter(to_tier=tier).exists() \
            or TierChange.objects.filter(from_tier=tier).exists()
        if used:
            tier.rule = {}
            tier.description = f"Not in the active clustering model (#{model.pk})."
            tier.save(update_fields=["rule", "description", "updated_at"])
        else:
            tier.delete()
    if dim.fallback_tier_id != fallback.pk:
        dim.fallback_tier = fallback
        dim.save(update_fields=["fallback_tier", "updated_at"])
    return dim


# ---------------------------------------------------------------------------------------
# Everything
# ---------------------------------------------------------------------------------------
KINDS = (ModelKind.CLUSTER, ModelKind.CHURN, ModelKind.VALUE)


def models_train(*, kinds: Iterable[str] = KINDS, as_of: datetime | None = None, activate: bool = False,
                 churn_horizon_days: int = CHURN_HORIZON_DAYS, bgnbd: bool = False) -> list[PredictiveModel]:
    """Train the given kinds as of `as_of` (default: services.default_as_of()), sharing the
    feature aggregations, and optionally activate each (the next full recompute scores them)."""
    kinds = list(kinds)
    unknown = [k for k in kinds if k not in ModelKind.values]
    if unknown:
        raise InvalidInput(f"Unknown model kind {unknown[0]!r}; use one of {', '.join(ModelKind.values)}.")
    as_of = as_of or _default_as_of()
    frames = Frames()
    trained = []
    for kind in kinds:
        if kind == ModelKind.CHURN:
            trained.append(churn_train(as_of=as_of, horizon_days=churn_horizon_days, frames=frames))
        elif kind == ModelKind.VALUE:
            trained.append(value_train(as_of=as_of, frames=frames, bgnbd=bgnbd))
        else:
            trained.append(cluster_train(as_of=as_of, frames=frames))
    if activate:
        trained = [predictive_model_activate(model=m) for m in trained]
    return trained
