"""Schedule tier recomputes with django-celery-beat (editable in the admin afterwards).

Incremental every 15 minutes; full nightly at 02:30 UTC. Each message expires if no worker
took it before the next one is due, so a busy queue never piles up recomputes.
"""
import json

from django.db import migrations

TASK = "segmentation.tasks.recompute_tiers"
INCREMENTAL = "Recompute tiers (incremental)"
FULL = "Recompute tiers (full)"


def install(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")

    every_15, _ = IntervalSchedule.objects.get_or_create(every=15, period="minutes")
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="2", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC")
    PeriodicTask.objects.get_or_create(name=INCREMENTAL, defaults={
        "task": TASK, "interval": every_15, "kwargs": json.dumps({"mode": "incremental"}), "expire_seconds": 15 * 60,
        "description": "Features and tiers of customers with new events or time-driven transitions since the last run."})
    PeriodicTask.objects.get_or_create(name=FULL, defaults={
        "task": TASK, "crontab": nightly, "kwargs": json.dumps({"mode": "full"}), "expire_seconds": 6 * 3600,
        "description": "Features and tiers of every customer; new R/F/M score bounds for the incremental runs."})


def uninstall(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[INCREMENTAL, FULL]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("segmentation", "0002_builtin_dimensions"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(install, uninstall)]
