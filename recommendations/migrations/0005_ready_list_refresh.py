"""Refresh every customer's ready list (recommendations/ready.py) every six hours with
django-celery-beat, editable in the admin: lists follow availability changes and the decay of
old events between trainings. The message expires after an hour, so a stuck queue never piles
refreshes up."""
from django.db import migrations

TASK = "recommendations.tasks.recs_refresh_ready"
NAME = "Refresh ready recommendation lists"


def install(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=6, period="hours")
    PeriodicTask.objects.get_or_create(name=NAME, defaults={
        "task": TASK, "interval": every, "expire_seconds": 3600,
        "description": "Ranks the recommendations of every customer seen in the last RECS_READY_DAYS days and keeps "
                       "them in Redis, so that the storefront API answers them with one read. Also runs after every "
                       "change of what serves and, per customer, after their new events."})


def uninstall(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("recommendations", "0004_nightly_training")]
    operations = [migrations.RunPython(install, uninstall)]
