"""Run the campaigns sweep every minute with django-celery-beat (editable in the admin):
overdue scheduled starts, claims of dead workers, stalled sends."""
from django.db import migrations

NAME = "Campaigns sweep"


def install(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.get_or_create(name=NAME, defaults={
        "task": "campaigns.tasks.campaigns_sweep", "interval": every_minute, "expire_seconds": 60,
        "description": "Starts overdue scheduled campaigns, takes back claims of dead workers, resumes stalled sends."})


def uninstall(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(install, uninstall)]
