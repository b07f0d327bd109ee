"""Celery tasks of segmentation (routed to the `recompute` queue by crm/celery.py). Thin: call a service.

The schedule (incremental every 15 minutes, full nightly) lives in django-celery-beat's
tables, installed by migration 0003 and editable in the admin.
"""
from __future__ import annotations

from datetime import UTC, datetime

from celery import shared_task
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from crm.core.errors import InvalidInput

from .choices import RunMode, RunStatus
from .models import RecomputeRun
from .services import recompute_run_create
from .services import recompute_tiers as recompute_tiers_service


def _parse_as_of(as_of: str | datetime | None) -> datetime | None:
    if as_of is None or isinstance(as_of, datetime):
        value = as_of
    else:
        value = parse_datetime(as_of)
        if value is None:
            raise InvalidInput(f"as_of '{as_of}' is not an ISO 8601 date-time.")
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


# --- Recompute ----------------------------------------------------------------------------
# acks_late is safe here: a recompute is idempotent (the same as_of records nothing new) and
# single-flight (a database lock), so a message redelivered after a worker died re-runs the
# same RecomputeRun and completes it; one redelivered while the first is still running finds
# the lock taken and leaves that run alone. Not retried: a failure is recorded on the run
# (status FAILED, error) for the staff pages, and the next scheduled run starts afresh.
# The hard limit stays below Redis' default visibility timeout (1 h), so a long run is not
# redelivered while it still runs.
@shared_task(bind=True, acks_late=True, soft_time_limit=30 * 60, time_limit=35 * 60)
def recompute_tiers(self, run_id: int | None = None, as_of: str | None = None, mode: str = RunMode.FULL) -> int:
    """Recompute features and tiers (full or incremental); returns the RecomputeRun id.

    Without run_id a run is created (as_of: ISO 8601, default: services.default_as_of()).
    """
    if run_id is None:
        run = recompute_run_create(as_of=_parse_as_of(as_of), mode=mode)
    else:
        run = RecomputeRun.objects.get(pk=run_id)
        if run.status in (RunStatus.SUCCEEDED, RunStatus.SKIPPED, RunStatus.FAILED):
            return run.pk  # a redelivered message for a run that has ended: nothing to do
    task_id = getattr(self.request, "id", None) or ""
    if task_id:
        RecomputeRun.objects.filter(pk=run.pk).update(celery_task_id=task_id)
    return recompute_tiers_service(run=run).pk


# --- Predictive models (segmentation/tasks_ml.py, queue "train") --------------------------------
# Imported here so that workers register them through autodiscovery of tasks.py.
from .tasks_ml import train_models  # noqa: E402,F401
