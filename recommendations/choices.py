from django.db import models
from django.utils.translation import gettext_lazy as _


class ModelUse(models.TextChoices):
    CUSTOMER = "customer", _("Recommendations for a customer")
    SIMILAR = "similar", _("Similar items")


class TrainStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped (another training was in progress)")


class TrainAlgorithm(models.TextChoices):
    EASE = "ease", "EASE"
    HYBRID = "hybrid", _("Hybrid (EASE + ALS)")
    ALS = "als", "ALS"
    BPR = "bpr", "BPR"
    ITEM_KNN = "item_knn", _("Item kNN")
    RP3BETA = "rp3beta", "RP3beta"
    POPULARITY = "popularity", _("Popularity")


class TierRuleAction(models.TextChoices):
    BOOST = "boost", _("Boost")
    PIN = "pin", _("Pin to the top")


class ExperimentStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    STOPPED = "stopped", _("Stopped")


class Arm(models.TextChoices):
    A = "a", _("Arm A")
    B = "b", _("Arm B")
