"""Train the customer recommender nightly at 03:30 UTC with django-celery-beat (editable in the
admin afterwards). The message expires after six hours, so a stuck queue never piles trainings up."""
import json

from django.db import migrations

TASK = "recommendations.tasks.recommender_train_nightly"
NAME = "Train recommendations (nightly)"


def install(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="3", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC")
    PeriodicTask.objects.get_or_create(name=NAME, defaults={
        "task": TASK, "crontab": nightly, "expire_seconds": 6 * 3600,
        "kwargs": json.dumps({"algorithm": "ease", "window_days": 365, "holdout_days": 14, "activate": True}),
        "description": "Trains the customer recommender on the last year of events, evaluates it on the last 14 days "
                       "and activates it unless its holdout nDCG@10 is below 90% of the active model's."})


def uninstall(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("recommendations", "0003_registry_rules_experiments"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(install, uninstall)]
