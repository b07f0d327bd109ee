from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.core.models import BaseModel
from crm.core.money import money_field

from .choices import Arm, ExperimentStatus, ModelUse, TierRuleAction, TrainAlgorithm, TrainStatus


class Item(BaseModel):
    """A catalog item, known by the storefront's id.

    Items first seen in an event are created inactive (`active=False`, no title) so that no
    event is lost; a later catalog upsert fills them in and activates them.
    """

    external_id = models.CharField(_("external id"), max_length=128)  # unique: see Meta.constraints
    title = models.CharField(_("title"), max_length=300, blank=True, default="")
    category = models.CharField(_("category"), max_length=100, blank=True, default="", db_index=True)
    brand = models.CharField(_("brand"), max_length=100, blank=True, default="")
    price = money_field(verbose_name=_("price"), null=True, blank=True)
    tags = models.JSONField(_("tags"), default=list, blank=True)
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    url = models.URLField(_("URL"), max_length=500, blank=True, default="")
    active = models.BooleanField(_("active"), default=True)
    in_stock = models.BooleanField(_("in stock"), default=True)

    class Meta:
        verbose_name = _("item")
        verbose_name_plural = _("items")
        constraints = [
            models.UniqueConstraint(fields=["external_id"], name="item_external_id_uniq"),
            models.CheckConstraint(condition=~Q(external_id=""), name="item_external_id_not_empty"),
            models.CheckConstraint(condition=Q(price__isnull=True) | Q(price__gte=0), name="item_price_gte_0"),
        ]

    def __str__(self) -> str:
        return self.title or self.external_id


class TrainedModel(BaseModel):
    """One training of a recommender, its offline metrics and its serving artefact.

    The artefact (numpy arrays, `np.savez_compressed`) lives in the row itself rather than
    under var/models/: every web process on every host reads it from the one database it
    already talks to, it is backed up and deleted with its row, and there is no file to
    ship or to go missing. `artefact_sha256` lets a process check what it loaded. Serving
    never retrains: it loads the arrays once per process (recommendations/model_store.py).

    One active model per use (a conditional unique constraint): "customer" answers
    /customers/{id}/recommendations/, "similar" answers /items/{id}/similar/ (the active
    customer model's item neighbours serve when no "similar" model is active).
    """

    use = models.CharField(_("use"), max_length=16, choices=ModelUse.choices, default=ModelUse.CUSTOMER)
    algorithm = models.CharField(_("algorithm"), max_length=32, choices=TrainAlgorithm.choices)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    serving_config = models.JSONField(_("serving configuration"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=TrainStatus.choices, default=TrainStatus.QUEUED)
    stage = models.CharField(_("stage"), max_length=40, blank=True, default="")
    progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    error = models.TextField(_("error"), blank=True, default="")
    celery_task_id = models.CharField(max_length=64, blank=True, default="")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")
    as_of = models.DateTimeField(_("as of"))
    window_days = models.PositiveIntegerField(_("training window (days)"), default=365)
    holdout_days = models.PositiveIntegerField(_("holdout (days)"), default=14)
    window_start = models.DateTimeField(_("window start"), null=True, blank=True)
    window_end = models.DateTimeField(_("window end"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    trained_at = models.DateTimeField(_("trained at"), null=True, blank=True)
    n_users = models.PositiveIntegerField(_("customers"), default=0)
    n_items = models.PositiveIntegerField(_("items"), default=0)
    n_interactions = models.PositiveBigIntegerField(_("interactions"), default=0)
    metrics = models.JSONField(_("metrics"), default=dict, blank=True)
    training_seconds = models.FloatField(_("training time (s)"), default=0)
    artefact = models.BinaryField(_("artefact"), null=True, blank=True, editable=False)
    artefact_sha256 = models.CharField(_("artefact SHA-256"), max_length=64, blank=True, default="")
    artefact_bytes = models.PositiveBigIntegerField(_("artefact size (bytes)"), default=0)
    active = models.BooleanField(_("active"), default=False)
    activated_at = models.DateTimeField(_("activated at"), null=True, blank=True)

    class Meta:
        verbose_name = _("trained model")
        verbose_name_plural = _("trained models")
        ordering = ["-created_at", "-id"]
        constraints = [
            # At most one model answers each use; activation swaps it in one transaction.
            models.UniqueConstraint(fields=["use"], condition=Q(active=True), name="recs_one_active_model_per_use"),
            # Only a finished training can serve.
            models.CheckConstraint(condition=Q(active=False) | Q(status="succeeded"), name="recs_active_model_succeeded"),
            models.CheckConstraint(condition=Q(progress__lte=100), name="recs_model_progress_lte_100"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.algorithm} ({self.get_use_display()})"

    @property
    def finished(self) -> bool:
        return self.status in (TrainStatus.SUCCEEDED, TrainStatus.FAILED, TrainStatus.SKIPPED)


class TierRule(BaseModel):
    """What staff want a tier to see: boost (or bury, with a negative weight) or pin an item
    or a whole category for the customers in `tier`."""

    tier = models.ForeignKey("segmentation.Tier", on_delete=models.CASCADE, related_name="recommendation_rules",
                             verbose_name=_("tier"))
    action = models.CharField(_("action"), max_length=8, choices=TierRuleAction.choices, default=TierRuleAction.BOOST)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, null=True, blank=True, related_name="tier_rules",
                             verbose_name=_("item"))
    category = models.CharField(_("category"), max_length=100, blank=True, default="")
    weight = models.FloatField(_("weight"), default=0.5,
                               help_text=_("Boost: added to the item's normalised score (1 = the whole range; "
                                           "negative buries). Pin: ignored."))
    active = models.BooleanField(_("active"), default=True)
    note = models.CharField(_("note"), max_length=200, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")

    class Meta:
        verbose_name = _("tier rule")
        verbose_name_plural = _("tier rules")
        ordering = ["tier__dimension__order", "tier__order", "id"]
        constraints = [
            # A rule targets exactly one thing: an item or a category.
            models.CheckConstraint(condition=(Q(item__isnull=False) & Q(category="")) | (Q(item__isnull=True) & ~Q(category="")),
                                   name="recs_tier_rule_item_xor_category"),
            models.CheckConstraint(condition=Q(weight__gte=-10) & Q(weight__lte=10), name="recs_tier_rule_weight_range"),
        ]

    def __str__(self) -> str:
        return f"{self.tier}: {self.get_action_display()} {self.item or self.category}"

    @property
    def target(self) -> str:
        return str(self.item) if self.item_id else self.category


class Experiment(BaseModel):
    """An A/B test of two models or two serving configurations.

    A customer's arm is a hash of the experiment and the customer's external id (stable, no
    row per customer); `traffic_b` is the share sent to arm B. Results are computed from the
    rec_impression / rec_click / purchase events whose rec_id names the experiment and arm
    (recommendations/selectors.py). One experiment runs at a time.
    """

    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True, default="")
    model_a = models.ForeignKey(TrainedModel, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                                verbose_name=_("model of arm A"), help_text=_("Empty: the active model."))
    config_a = models.JSONField(_("configuration of arm A"), default=dict, blank=True)
    model_b = models.ForeignKey(TrainedModel, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                                verbose_name=_("model of arm B"), help_text=_("Empty: the active model."))
    config_b = models.JSONField(_("configuration of arm B"), default=dict, blank=True)
    traffic_b = models.FloatField(_("share of traffic to B"), default=0.5)
    status = models.CharField(_("status"), max_length=10, choices=ExperimentStatus.choices, default=ExperimentStatus.RUNNING)
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    stopped_at = models.DateTimeField(_("stopped at"), null=True, blank=True)
    winner = models.CharField(_("winner"), max_length=1, choices=Arm.choices, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")

    class Meta:
        verbose_name = _("experiment")
        verbose_name_plural = _("experiments")
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["status"], condition=Q(status="running"), name="recs_one_running_experiment"),
            models.CheckConstraint(condition=Q(traffic_b__gt=0) & Q(traffic_b__lt=1), name="recs_experiment_traffic_b_0_1"),
        ]

    def __str__(self) -> str:
        return self.name
