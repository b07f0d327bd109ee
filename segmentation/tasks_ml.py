"""Celery tasks of the predictive models (clusters, churn, value). Thin: call a service.

They run on the `train` queue (crm/celery.py routes segmentation.tasks_ml.*; the route for
segmentation.tasks.* does not match them). segmentation/tasks.py imports this module so that
workers register the tasks through autodiscovery.
"""
from __future__ import annotations

from celery import shared_task
from django.db import transaction

from crm.core.errors import InvalidInput

from .choices import ModelKind, RunMode
from .ml.services import CHURN_HORIZON_DAYS, KINDS, models_train


def _kinds(kind: str) -> list[str]:
    if kind == "all":
        return list(KINDS)
    if kind not in ModelKind.values:
        raise InvalidInput(f"Unknown model kind '{kind}'; use all or one of {', '.join(ModelKind.values)}.")
    return [kind]


# Not acks_late: training is not idempotent (each run records a new PredictiveModel), and a
# lost run is simply trained again by the next schedule. Not retried: a failure is recorded on
# the PredictiveModel row (status failed, error).
@shared_task(soft_time_limit=60 * 60, time_limit=65 * 60)
def train_models(kind: str = "all", as_of: str | None = None, activate: bool = False, recompute: bool = False,
                 churn_horizon_days: int = CHURN_HORIZON_DAYS) -> list[int]:
    """Train models of `kind` (cluster, churn, value or all) as of `as_of` (ISO 8601; default:
    the data's as_of); returns their ids. With `activate` they become the active models, and with
    `recompute` a full recompute is enqueued after commit so that their scores are written."""
    from .tasks import _parse_as_of, recompute_tiers

    parsed = _parse_as_of(as_of)
    models = models_train(kinds=_kinds(kind), as_of=parsed, activate=activate, churn_horizon_days=churn_horizon_days)
    if activate and recompute:
        transaction.on_commit(lambda: recompute_tiers.delay(as_of=as_of, mode=RunMode.FULL))
    return [m.pk for m in models]
