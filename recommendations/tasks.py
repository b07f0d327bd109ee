"""Celery tasks of recommendations (queue "train", ready lists on "default"; routes in
crm/celery.py): thin, ids in, one service call. Training is single-flight and a finished row is never retrained,
so a task delivered twice does nothing new."""
from __future__ import annotations

from celery import shared_task

from .choices import TrainAlgorithm


@shared_task(soft_time_limit=3 * 3600, time_limit=3 * 3600 + 120, ignore_result=True)
def recommender_train(model_id: int) -> None:
    from .models import TrainedModel
    from .services import recommender_train as train

    model = TrainedModel.objects.filter(pk=model_id).first()
    if model is not None:
        train(model=model)


@shared_task(soft_time_limit=3 * 3600, time_limit=3 * 3600 + 120, ignore_result=True)
def recommender_train_nightly(algorithm: str = TrainAlgorithm.EASE, window_days: int = 365, holdout_days: int = 14,
                              activate: bool = True) -> None:
    from .services import recommender_train_nightly as nightly

    nightly(algorithm=algorithm, window_days=window_days, holdout_days=holdout_days, activate=activate)


# Ready lists (ready.py) run on the default queue: behind a three-hour training they would be
# stale before they were made.
@shared_task(soft_time_limit=2 * 3600, time_limit=2 * 3600 + 120, ignore_result=True)
def recs_refresh_ready() -> None:
    from .ready import refresh_all

    refresh_all()


@shared_task(soft_time_limit=15 * 60, time_limit=16 * 60, ignore_result=True)
def recs_refresh_customers(external_ids: list[str] | None = None) -> None:
    """These customers' lists; without ids, every customer pending in Redis (ready.py)."""
    from .ready import drain_pending, refresh_customers

    if external_ids is None:
        drain_pending()
    else:
        refresh_customers(external_ids)
