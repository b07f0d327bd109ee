"""The Celery application.

JSON only (no pickle), one queue per kind of work so that each can get its own workers
(``celery -A crm worker -Q ingest``), time limits on every task, and schedules stored in
the database by django-celery-beat so that operations staff edit them in the admin.
"""
import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.base")

app = Celery("stratum")
app.config_from_object("django.conf:settings", namespace="CELERY")

QUEUES = ("default", "ingest", "recompute", "train", "send")

app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    event_serializer="json",
    task_queues=[Queue(name) for name in QUEUES],
    task_default_queue="default",
    # Route by module: each app's tasks module declares which kind of work it is.
    task_routes={
        "accounts.tasks.*": {"queue": "ingest"},
        "segmentation.tasks.*": {"queue": "recompute"},
        "segmentation.tasks_ml.*": {"queue": "train"},  # model training (segmentation/tasks_ml.py)
        "recommendations.tasks.recs_refresh_*": {"queue": "default"},  # ready lists (listed before the rest)
        "recommendations.tasks.*": {"queue": "train"},
        "campaigns.tasks.send_*": {"queue": "send"},
        "crm.core.tasks.*": {"queue": "default"},
    },
    task_soft_time_limit=15 * 60,
    task_time_limit=16 * 60,
    task_acks_late=False,
    worker_prefetch_multiplier=1,
    worker_send_task_events=False,
    broker_connection_retry_on_startup=True,
    beat_scheduler="django_celery_beat.schedulers:DatabaseScheduler",
    result_expires=24 * 3600,
    timezone="UTC",
    enable_utc=True,
)
app.autodiscover_tasks()
