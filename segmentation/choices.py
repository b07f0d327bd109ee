from django.db import models
from django.utils.translation import gettext_lazy as _


class DimensionKind(models.TextChoices):
    RULES = "rules", _("Rules")
    CLUSTER = "cluster", _("Clusters (k-means)")


class ChangeCause(models.TextChoices):
    RULE = "rule", _("Rule")
    OVERRIDE = "override", _("Override")
    MODEL = "model", _("Model")


class RunMode(models.TextChoices):
    FULL = "full", _("Full")
    INCREMENTAL = "incremental", _("Incremental")


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped (another run was in progress)")


class ModelKind(models.TextChoices):
    CLUSTER = "cluster", _("Clustering")
    CHURN = "churn", _("Churn")
    VALUE = "value", _("Customer value")
