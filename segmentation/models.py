"""Features, dimensions and tiers, memberships and their history, overrides, segments,
recompute runs and trained predictive models.

Every customer has exactly one tier per dimension: the first tier (by `order`) whose rule
matches, else the dimension's fallback tier. Tier assignment is set-based SQL in
segmentation/engine/; nothing here loops over customers.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from crm.core.models import BaseModel
from crm.core.money import money_field
from crm.core.translations import TranslatedText, Translatable

from .choices import ChangeCause, DimensionKind, ModelKind, RunMode, RunStatus


class CustomerFeatures(models.Model):
    """One row of computed features per customer, as of `as_of`. Written only by the engine."""

    # No database check on the customer key, as for memberships: a full run writes every row
    # from a join with customers into a fresh table (engine.features._replace_features_table), and
    # checking a million keys again cost most of a second. Deleting a customer still deletes
    # their features (Django's on_delete); one deleted during a full run's few seconds of
    # writing leaves a row no customer joins to, gone at the next full run.
    customer = models.OneToOneField("accounts.Customer", on_delete=models.CASCADE, primary_key=True,
                                    related_name="features", db_constraint=False)
    as_of = models.DateTimeField(_("as of"))
    computed_at = models.DateTimeField(_("computed at"))
    joined_at = models.DateTimeField(_("joined at (sign-up, else first seen)"), null=True)
    first_purchase_at = models.DateTimeField(_("first purchase at"), null=True)
    last_purchase_at = models.DateTimeField(_("last purchase at"), null=True)
    last_activity_at = models.DateTimeField(_("last activity at"), null=True)
    recency_days = models.IntegerField(_("days since last purchase"), null=True)
    activity_recency_days = models.IntegerField(_("days since last activity"), null=True)
    days_since_signup = models.IntegerField(_("days since sign-up"), null=True)
    tenure_days = models.IntegerField(_("days since first seen"), null=True)
    orders_30d = models.IntegerField(_("orders, 30 days"), default=0)
    orders_90d = models.IntegerField(_("orders, 90 days"), default=0)
    orders_prev_90d = models.IntegerField(_("orders, 90 days before the last 90"), default=0)
    orders_365d = models.IntegerField(_("orders, 365 days"), default=0)
    orders_total = models.IntegerField(_("orders, all time"), default=0)
    revenue_30d = money_field(verbose_name=_("revenue, 30 days"), default=0)
    revenue_90d = money_field(verbose_name=_("revenue, 90 days"), default=0)
    revenue_365d = money_field(verbose_name=_("revenue, 365 days"), default=0)
    revenue_total = money_field(verbose_name=_("revenue, all time"), default=0)
    avg_order_value = money_field(verbose_name=_("average order value"), null=True)
    sessions_30d = models.IntegerField(_("sessions, 30 days"), default=0)
    events_30d = models.IntegerField(_("events, 30 days"), default=0)
    r_score = models.PositiveSmallIntegerField(_("R score"), null=True)
    f_score = models.PositiveSmallIntegerField(_("F score"), null=True)
    m_score = models.PositiveSmallIntegerField(_("M score"), null=True)
    rfm_score = models.PositiveSmallIntegerField(_("RFM score (R+F+M)"), null=True)
    churn_probability = models.FloatField(_("churn probability"), null=True)
    predicted_orders_90d = models.FloatField(_("predicted orders, 90 days"), null=True)
    predicted_value_365d = money_field(verbose_name=_("predicted value, 365 days"), null=True)
    cluster = models.IntegerField(_("cluster"), null=True)
    avg_sentiment = models.FloatField(_("average feedback sentiment"), null=True)

    class Meta:
        verbose_name = _("customer features")
        verbose_name_plural = _("customer features")
        indexes = [
            # Incremental recompute finds customers whose sign-up date crosses a rule's threshold.
            # The other timestamps are found from the events at those times (the events' BRIN
            # index on occurred_at), so a full run builds one index fewer per timestamp.
            models.Index(fields=["joined_at"], name="features_joined_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(churn_probability__isnull=True) | Q(churn_probability__gte=0, churn_probability__lte=1),
                name="features_churn_probability_range",
            ),
        ]

    def __str__(self) -> str:
        return f"features of {self.customer_id} as of {self.as_of:%Y-%m-%d}"


class Dimension(BaseModel, Translatable):
    """A way of tiering customers (behaviour, value, lifecycle, RFM, clusters...).

    Staff pages show `display_name` (the name in the UI language, see crm/core/translations.py);
    the API returns `name`.
    """

    display_name = TranslatedText("name")
    display_description = TranslatedText("description")

    slug = models.SlugField(_("slug"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True, default="")
    kind = models.CharField(_("kind"), max_length=16, choices=DimensionKind.choices, default=DimensionKind.RULES)
    order = models.PositiveSmallIntegerField(_("order"), default=0)
    active = models.BooleanField(_("active"), default=True)
    fallback_tier = models.ForeignKey("Tier", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                                      verbose_name=_("fallback tier"))

    class Meta:
        verbose_name = _("dimension")
        verbose_name_plural = _("dimensions")
        ordering = ["order", "slug"]

    def __str__(self) -> str:
        return self.display_name


class Tier(BaseModel, Translatable):
    """One tier of a dimension. `rule` is a JSON condition tree (segmentation/rules.py).

    Staff pages show `display_name` and `display_service_level` (UI language); the API returns
    `name` and `service_level`.
    """

    display_name = TranslatedText("name")
    display_service_level = TranslatedText("service_level")
    display_description = TranslatedText("description")

    dimension = models.ForeignKey(Dimension, on_delete=models.CASCADE, related_name="tiers")
    slug = models.SlugField(_("slug"), max_length=40)
    name = models.CharField(_("name"), max_length=100)
    order = models.PositiveSmallIntegerField(_("order"), default=0)
    rule = models.JSONField(_("rule"), default=dict, blank=True)
    colour = models.CharField(_("colour"), max_length=7, default="#6c757d")
    is_vip = models.BooleanField(_("VIP"), default=False)
    service_level = models.TextField(_("service level"), blank=True, default="")
    description = models.TextField(_("description"), blank=True, default="")

    class Meta:
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        ordering = ["dimension__order", "order"]
        constraints = [
            models.UniqueConstraint(fields=["dimension", "slug"], name="tier_unique_slug"),
            models.CheckConstraint(condition=Q(colour__regex=r"^#[0-9a-fA-F]{6}$"), name="tier_colour_hex"),
        ]

    def __str__(self) -> str:
        return self.display_name


class Membership(models.Model):
    """The customer's current tier on a dimension, and since when."""

    id = models.BigAutoField(primary_key=True)
    # No index of their own: the unique (customer, dimension) and (dimension, tier) indexes lead
    # with these columns. Every index here is written on each tier change.
    # The customer key is not checked by the database: recompute writes memberships from a join
    # with the customers table, and checking each row again at commit locked every customer row
    # (4M checks, most of a first run's five minutes at 1M customers). Deleting a customer
    # still deletes their memberships (Django's on_delete); Stratum itself never deletes one.
    # Nor are the dimension and tier keys, for the same reason: recompute writes them from the
    # tiers' own ids, and a first run at 1M customers spent 26 s of 80 in checking 8M of them at
    # commit. Overrides write one membership of a tier they have just read. Deleting a tier or a
    # dimension still deletes its memberships (Django's on_delete).
    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="memberships",
                                 db_index=False, db_constraint=False)
    dimension = models.ForeignKey(Dimension, on_delete=models.CASCADE, related_name="memberships", db_index=False,
                                  db_constraint=False)
    tier = models.ForeignKey(Tier, on_delete=models.CASCADE, related_name="memberships", db_constraint=False)
    since = models.DateTimeField(_("since"))
    # Rows are written only when the tier changes (a full recompute touches few rows), so
    # there is no per-run timestamp here: the latest RecomputeRun says when tiers were checked.
    overridden = models.BooleanField(_("pinned by an override"), default=False)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [models.UniqueConstraint(fields=["customer", "dimension"], name="membership_one_per_dimension")]
        indexes = [models.Index(fields=["dimension", "tier"], name="membership_tier_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.tier_id}"


class TierChange(models.Model):
    """History: a customer moved from one tier to another on a dimension (append-only)."""

    id = models.BigAutoField(primary_key=True)
    # Append-only and large (a row per change), written thousands at a time by recompute:
    # - only the indexes that reads use. customer, to_tier and run lead the indexes in Meta;
    #   dimension and from_tier are read through those, and deleting a tier or a dimension
    #   (rare, staff) scans instead;
    # - the database checks none of its keys. Customer, dimension, tiers and run come from the
    #   rows recompute reads in the same transaction; checking them again cost one trigger query
    #   per key per row at commit (a quarter of an incremental run, most of a first run). Deleting
    #   a customer, dimension, tier or run still cascades or clears through Django's on_delete.
    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="tier_changes",
                                 db_index=False, db_constraint=False)
    dimension = models.ForeignKey(Dimension, on_delete=models.CASCADE, related_name="changes", db_index=False,
                                  db_constraint=False)
    from_tier = models.ForeignKey(Tier, on_delete=models.CASCADE, null=True, blank=True, related_name="+",
                                  db_index=False, db_constraint=False)
    to_tier = models.ForeignKey(Tier, on_delete=models.CASCADE, related_name="entries", db_index=False,
                                db_constraint=False)
    at = models.DateTimeField(_("at"))
    cause = models.CharField(_("cause"), max_length=10, choices=ChangeCause.choices, default=ChangeCause.RULE)
    run = models.ForeignKey("RecomputeRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="tier_changes",
                            db_index=False, db_constraint=False)

    class Meta:
        verbose_name = _("tier change")
        verbose_name_plural = _("tier changes")
        indexes = [
            models.Index(fields=["customer", "at"], name="tierchange_customer_idx"),
            models.Index(fields=["to_tier", "at"], name="tierchange_entered_idx"),
            models.Index(fields=["run"], name="tierchange_run_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.from_tier_id} -> {self.to_tier_id}"


class TierOverride(BaseModel):
    """A person pins a customer to a tier, with a reason and an expiry (audited)."""

    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="tier_overrides")
    dimension = models.ForeignKey(Dimension, on_delete=models.CASCADE, related_name="overrides")
    tier = models.ForeignKey(Tier, on_delete=models.CASCADE, related_name="overrides")
    reason = models.TextField(_("reason"))
    expires_at = models.DateTimeField(_("expires at"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("tier override")
        verbose_name_plural = _("tier overrides")
        indexes = [models.Index(fields=["dimension", "expires_at"], name="override_active_idx", condition=Q(revoked_at__isnull=True))]
        constraints = [models.CheckConstraint(condition=~Q(reason=""), name="override_reason_required")]

    def __str__(self) -> str:
        return f"{self.customer_id} pinned to {self.tier_id} until {self.expires_at:%Y-%m-%d}"


class TierSnapshot(models.Model):
    """Daily size of each tier, for trend charts."""

    id = models.BigAutoField(primary_key=True)
    date = models.DateField(_("date"))
    dimension = models.ForeignKey(Dimension, on_delete=models.CASCADE, related_name="snapshots")
    tier = models.ForeignKey(Tier, on_delete=models.CASCADE, related_name="snapshots")
    customers = models.PositiveIntegerField(_("customers"))

    class Meta:
        verbose_name = _("tier snapshot")
        verbose_name_plural = _("tier snapshots")
        constraints = [models.UniqueConstraint(fields=["date", "tier"], name="snapshot_one_per_day")]
        ordering = ["date"]


class Segment(BaseModel):
    """A named rule for ad-hoc audiences."""

    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True, default="")
    rule = models.JSONField(_("rule"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RecomputeRun(BaseModel):
    """One recompute of features and tiers: mode, as_of, progress, timings, counts, outcome."""

    mode = models.CharField(_("mode"), max_length=12, choices=RunMode.choices, default=RunMode.FULL)
    as_of = models.DateTimeField(_("as of"))
    status = models.CharField(_("status"), max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    stage = models.CharField(_("stage"), max_length=40, blank=True, default="")
    progress = models.PositiveSmallIntegerField(_("progress %"), default=0)
    customers = models.PositiveIntegerField(_("customers"), default=0)
    changes = models.PositiveIntegerField(_("tier changes"), default=0)
    timings = models.JSONField(_("timings (s)"), default=dict, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True, default="")
    celery_task_id = models.CharField(max_length=64, blank=True, default="")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # Incremental runs pick up events stored after the previous run's high-water mark.
    event_high_water = models.BigIntegerField(_("last event id seen"), default=0)
    # R/F/M score boundaries of the last full run, so incremental runs score the same way.
    score_bounds = models.JSONField(_("R/F/M score bounds"), default=dict, blank=True)

    class Meta:
        verbose_name = _("recompute run")
        verbose_name_plural = _("recompute runs")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.mode} recompute as of {self.as_of:%Y-%m-%d %H:%M} ({self.status})"


class PredictiveModel(BaseModel):
    """A trained clustering, churn or value model, with its metrics and training window."""

    kind = models.CharField(_("kind"), max_length=10, choices=ModelKind.choices)
    algorithm = models.CharField(_("algorithm"), max_length=60)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    metrics = models.JSONField(_("metrics"), default=dict, blank=True)
    artefact = models.JSONField(_("artefact"), default=dict, blank=True)
    cutoff = models.DateTimeField(_("training cut-off"), null=True, blank=True)
    horizon_days = models.PositiveIntegerField(_("horizon (days)"), null=True, blank=True)
    training_rows = models.PositiveIntegerField(_("training rows"), default=0)
    training_seconds = models.FloatField(_("training time (s)"), default=0)
    active = models.BooleanField(_("active"), default=False)
    status = models.CharField(_("status"), max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING)
    error = models.TextField(_("error"), blank=True, default="")

    class Meta:
        verbose_name = _("predictive model")
        verbose_name_plural = _("predictive models")
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["kind"], condition=Q(active=True), name="one_active_model_per_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.algorithm} ({self.created_at:%Y-%m-%d})"


class Cluster(models.Model):
    """One cluster of a clustering model: its name (from its centroid profile), size and centroid."""

    model = models.ForeignKey(PredictiveModel, on_delete=models.CASCADE, related_name="clusters")
    index = models.PositiveSmallIntegerField(_("index"))
    name = models.CharField(_("name"), max_length=100)
    size = models.PositiveIntegerField(_("size"))
    centroid = models.JSONField(_("centroid (original units)"))

    class Meta:
        verbose_name = _("cluster")
        verbose_name_plural = _("clusters")
        constraints = [models.UniqueConstraint(fields=["model", "index"], name="cluster_unique_index")]
        ordering = ["model", "index"]

    def __str__(self) -> str:
        return self.name
