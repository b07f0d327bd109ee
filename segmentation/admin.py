"""Django admin for segmentation. Computed data (features, memberships, history, snapshots,
runs, clusters) is read-only here: the engine writes it. Rules are validated with compile_rule
and errors are shown on the rule field; pins, segments and recomputes go through the services.
"""
from __future__ import annotations

import logging

from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from crm.core.errors import ApplicationError
from crm.core.pagination import EstimatedCountPaginator
from crm.core.translations import (TranslationsFormMixin, add_translation_fields, dropped_translations_message,
                                   translation_field_name, translation_languages)

from .choices import RunMode, RunStatus
from .forms import RuleField, rule_errors_text
from .models import (Cluster, CustomerFeatures, Dimension, Membership, PredictiveModel, RecomputeRun, Segment, Tier,
                     TierChange, TierOverride, TierSnapshot)
from .rules import RuleError, compile_rule

logger = logging.getLogger(__name__)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the engine: staff read them, nobody edits them here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.display(description=_("customer"), ordering="customer__external_id")
def customer_ref(obj) -> str:
    """The customer by external id (no personal data in lists)."""
    return format_html('<a href="{}">{}</a>', reverse("accounts:customer-detail", args=[obj.customer_id]),
                       obj.customer.external_id)


@admin.display(description=_("colour"))
def colour_swatch(obj: Tier) -> str:
    return format_html('<span style="display:inline-block;width:1em;height:1em;border-radius:50%;background:{};'
                       'vertical-align:middle;border:1px solid #0003"></span> {}', obj.colour, obj.colour)


@admin.display(description=_("name"), ordering="name")
def display_name(obj: Dimension | Tier) -> str:
    """The name in the UI language (the stored one when it has no translation)."""
    return obj.display_name


def with_translations(field: str) -> tuple[str, ...]:
    """`field` and its translation fields, for one row of an admin form."""
    return (field, *(translation_field_name(field, language) for language in translation_languages()))


def translation_search_fields(field: str) -> tuple[str, ...]:
    return tuple(f"translations__{language}__{field}" for language in translation_languages())


def warn_dropped_translations(request, form) -> None:
    """Tell the user which translations a changed text dropped (crm/core/translations.py)."""
    if warning := dropped_translations_message(form):
        messages.warning(request, f"{form.instance}: {warning}")


# --- Rules --------------------------------------------------------------------------------------
@add_translation_fields("name", "service_level", "description")
class TierAdminForm(TranslationsFormMixin, forms.ModelForm):
    rule = RuleField(label=_("rule"))

    class Meta:
        model = Tier
        exclude = ("translations",)

    def clean_rule(self):
        rule = self.cleaned_data.get("rule") or {}
        dimension = None
        if self.instance.dimension_id:
            dimension = Dimension.objects.filter(pk=self.instance.dimension_id).values_list("slug", flat=True).first()
        elif self.cleaned_data.get("dimension"):
            dimension = self.cleaned_data["dimension"].slug
        try:
            compile_rule(rule, dimension=dimension)
        except RuleError as exc:
            raise forms.ValidationError(rule_errors_text(exc)) from None
        return rule


TIER_FIELDS = (with_translations("name"), ("slug", "order"), ("colour", "is_vip"), with_translations("service_level"),
               with_translations("description"), "rule")


class TierInline(admin.StackedInline):
    model = Tier
    form = TierAdminForm
    extra = 0
    fields = TIER_FIELDS
    show_change_link = True


@add_translation_fields("name", "description")
class DimensionAdminForm(TranslationsFormMixin, forms.ModelForm):
    class Meta:
        model = Dimension
        exclude = ("translations",)


@admin.register(Dimension)
class DimensionAdmin(admin.ModelAdmin):
    form = DimensionAdminForm
    fields = (with_translations("name"), "slug", "kind", "order", "active", "fallback_tier", with_translations("description"))
    list_display = (display_name, "slug", "kind", "order", "active", "fallback_tier", "tier_count")
    list_filter = ("kind", "active")
    search_fields = ("name", "slug", *translation_search_fields("name"))
    ordering = ("order", "slug")
    inlines = [TierInline]
    prepopulated_fields = {"slug": ("name",)}

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        warn_dropped_translations(request, form)

    def save_formset(self, request, form, formset, change) -> None:
        super().save_formset(request, form, formset, change)
        for inline_form in formset.forms:
            warn_dropped_translations(request, inline_form)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("fallback_tier").annotate(_tiers=Count("tiers"))

    @admin.display(description=_("tiers"), ordering="_tiers")
    def tier_count(self, obj: Dimension) -> int:
        return obj._tiers

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "fallback_tier":
            object_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
            kwargs["queryset"] = Tier.objects.filter(dimension_id=object_id) if object_id else Tier.objects.none()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    form = TierAdminForm
    fields = ("dimension", *TIER_FIELDS)
    list_display = (display_name, "dimension", "slug", "order", colour_swatch, "is_vip", "members")
    list_filter = ("dimension", "is_vip")
    search_fields = ("name", "slug", "dimension__name", *translation_search_fields("name"))
    list_select_related = ("dimension",)
    ordering = ("dimension__order", "order")

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        warn_dropped_translations(request, form)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_members=Count("memberships"))

    @admin.display(description=_("customers"), ordering="_members")
    def members(self, obj: Tier) -> str:
        url = reverse("accounts:customer-list") + f"?tier={obj.dimension.slug}:{obj.slug}"
        return format_html('<a href="{}">{}</a>', url, obj._members)


class SegmentAdminForm(forms.ModelForm):
    rule = RuleField(label=_("rule"))

    class Meta:
        model = Segment
        fields = ("name", "slug", "description", "rule")


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentAdminForm
    list_display = ("name", "slug", "created_by", "created_at", "updated_at")
    search_fields = ("name", "slug", "description")
    list_select_related = ("created_by",)
    prepopulated_fields = {"slug": ("name",)}

    def save_model(self, request, obj: Segment, form, change) -> None:
        from .services import segment_create, segment_update

        data = {k: form.cleaned_data[k] for k in ("name", "slug", "description", "rule")}
        if change:
            segment_update(segment=Segment.objects.get(pk=obj.pk), **data)
            obj.refresh_from_db()
        else:
            created = segment_create(by=request.user, **data)
            obj.pk, obj.created_at, obj.updated_at, obj.created_by = created.pk, created.created_at, created.updated_at, request.user


# --- Computed rows (read-only) -------------------------------------------------------------------
@admin.register(CustomerFeatures)
class CustomerFeaturesAdmin(ReadOnlyAdmin):
    list_display = (customer_ref, "recency_days", "activity_recency_days", "orders_total", "revenue_total",
                    "r_score", "f_score", "m_score", "churn_probability", "predicted_value_365d", "cluster", "as_of")
    list_filter = ("r_score", "f_score", "m_score", "cluster")
    search_fields = ("customer__external_id",)
    list_select_related = ("customer",)
    show_full_result_count = False
    ordering = ("-customer_id",)


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = (customer_ref, "dimension", "tier", "since", "overridden")
    list_filter = ("dimension", "overridden", "tier__is_vip")
    search_fields = ("=customer__external_id",)
    search_help_text = _("Exact customer external id.")
    list_select_related = ("customer", "dimension", "tier")
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    ordering = ("-id",)
    sortable_by = ()


@admin.register(TierChange)
class TierChangeAdmin(ReadOnlyAdmin):
    """Four changes per customer on a first run: millions of rows. Newest first by id (changes are
    appended run after run), the unfiltered count estimated, no date drill-down (it lists the
    distinct years and months of every row) and no sorting by unindexed columns."""

    list_display = (customer_ref, "dimension", "from_tier", "to_tier", "at", "cause", "run")
    list_filter = ("dimension", "cause")
    search_fields = ("=customer__external_id",)
    search_help_text = _("Exact customer external id.")
    list_select_related = ("customer", "dimension", "from_tier", "to_tier", "run")
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    ordering = ("-id",)
    sortable_by = ()


@admin.register(TierSnapshot)
class TierSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("date", "dimension", "tier", "customers")
    list_filter = ("dimension",)
    list_select_related = ("dimension", "tier")
    date_hierarchy = "date"
    ordering = ("-date", "dimension__order", "tier__order")


# --- Overrides ----------------------------------------------------------------------------------
class TierOverrideAdminForm(forms.ModelForm):
    class Meta:
        model = TierOverride
        fields = ("customer", "tier", "reason", "expires_at")

    def clean_expires_at(self):
        value = self.cleaned_data["expires_at"]
        if value <= timezone.now():
            raise forms.ValidationError(_("The pin must expire in the future."))
        return value


class OverrideActiveFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", _("Active")), ("expired", _("Expired")), ("revoked", _("Revoked"))]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True, expires_at__gt=now)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(TierOverride)
class TierOverrideAdmin(admin.ModelAdmin):
    """Pins are created and revoked through the services (audited); never edited or deleted."""

    form = TierOverrideAdminForm
    list_display = (customer_ref, "dimension", "tier", "expires_at", "state", "created_by", "created_at", "revoked_at")
    list_filter = (OverrideActiveFilter, "dimension")
    search_fields = ("customer__external_id", "reason")
    list_select_related = ("customer", "dimension", "tier", "created_by")
    raw_id_fields = ("customer",)
    actions = ["revoke"]
    ordering = ("-created_at",)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("customer", "dimension", "tier", "reason", "expires_at", "created_by", "created_at", "revoked_at", "revoked_by")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("customer", "tier", "reason", "expires_at")
        return self.get_readonly_fields(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("state"))
    def state(self, obj: TierOverride) -> str:
        if obj.revoked_at:
            return str(_("Revoked"))
        return str(_("Active")) if obj.expires_at > timezone.now() else str(_("Expired"))

    def save_model(self, request, obj: TierOverride, form, change) -> None:
        if change:
            return  # read-only once created
        from .services import tier_override_create

        created = tier_override_create(customer=form.cleaned_data["customer"], tier=form.cleaned_data["tier"],
                                       reason=form.cleaned_data["reason"], expires_at=form.cleaned_data["expires_at"],
                                       by=request.user)
        obj.pk, obj.dimension, obj.created_at = created.pk, created.dimension, created.created_at

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    @admin.action(description=_("Revoke the selected pins"), permissions=["change"])
    def revoke(self, request, queryset):
        from .services import tier_override_revoke

        n = 0
        for override in queryset.filter(revoked_at__isnull=True):
            tier_override_revoke(override=override, by=request.user)
            n += 1
        self.message_user(request, _("%(n)d pin(s) revoked.") % {"n": n}, messages.SUCCESS)


# --- Runs ----------------------------------------------------------------------------------------
@admin.register(RecomputeRun)
class RecomputeRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "mode", "status", "stage", "progress", "as_of", "customers", "changes", "started_at",
                    "duration", "requested_by", "short_error")
    list_filter = ("status", "mode")
    list_select_related = ("requested_by",)
    date_hierarchy = "created_at"
    actions = ["recompute_full", "recompute_incremental"]
    ordering = ("-created_at",)

    @admin.display(description=_("duration (s)"))
    def duration(self, obj: RecomputeRun):
        if obj.started_at and obj.finished_at:
            return round((obj.finished_at - obj.started_at).total_seconds(), 2)
        return None

    @admin.display(description=_("error"))
    def short_error(self, obj: RecomputeRun) -> str:
        return obj.error[:120]

    def has_recompute_permission(self, request) -> bool:
        return request.user.has_perm("segmentation.add_recomputerun")

    def _start(self, request, mode: str):
        from .tasks import recompute_tiers as recompute_tiers_task

        from .services import recompute_run_create

        run = recompute_run_create(mode=mode, requested_by=request.user)
        try:
            recompute_tiers_task.delay(run_id=run.pk)
        except Exception as exc:  # noqa: BLE001 - recorded on the run (see views._start_recompute)
            logger.exception("recompute_start_failed run=%s", run.pk)
            RecomputeRun.objects.filter(pk=run.pk).exclude(status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED]).update(
                status=RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000])
            self.message_user(request, _("Recompute #%(id)s failed: %(error)s") % {"id": run.pk, "error": exc}, messages.ERROR)
            return run
        self.message_user(request, _("Recompute #%(id)s started.") % {"id": run.pk}, messages.SUCCESS)
        return run

    @admin.action(description=_("Recompute now (full; the selection is ignored)"), permissions=["recompute"])
    def recompute_full(self, request, queryset):
        self._start(request, RunMode.FULL)

    @admin.action(description=_("Recompute now (incremental; the selection is ignored)"), permissions=["recompute"])
    def recompute_incremental(self, request, queryset):
        self._start(request, RunMode.INCREMENTAL)

    def get_urls(self):
        return [path("recompute/", self.admin_site.admin_view(self.recompute_view), name="segmentation_recomputerun_recompute"),
                *super().get_urls()]

    def recompute_view(self, request):
        """POST from the changelist's "Recompute now" button."""
        if request.method != "POST" or not self.has_recompute_permission(request):
            return redirect("admin:segmentation_recomputerun_changelist")
        mode = request.POST.get("mode", RunMode.FULL)
        self._start(request, mode if mode in RunMode.values else RunMode.FULL)
        return redirect("admin:segmentation_recomputerun_changelist")

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_recompute": self.has_recompute_permission(request)}
        return super().changelist_view(request, extra_context)


# --- Models ----------------------------------------------------------------------------------------
class ClusterInline(ReadOnlyInline):
    model = Cluster
    fields = ("index", "name", "size", "centroid")
    readonly_fields = fields


@admin.register(PredictiveModel)
class PredictiveModelAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "algorithm", "status", "active", "cutoff", "horizon_days", "training_rows",
                    "training_seconds", "created_at")
    list_filter = ("kind", "status", "active")
    search_fields = ("algorithm",)
    readonly_fields = ("kind", "algorithm", "params", "metrics", "cutoff", "horizon_days", "training_rows",
                       "training_seconds", "active", "status", "error", "created_at")
    exclude = ("artefact",)
    inlines = [ClusterInline]
    actions = ["activate", "deactivate"]
    ordering = ("-created_at",)

    def has_add_permission(self, request) -> bool:
        return False  # models are trained: python manage.py train_models

    @admin.action(description=_("Activate (the next full recompute writes its scores)"), permissions=["change"])
    def activate(self, request, queryset):
        from .ml.services import predictive_model_activate

        for model in queryset.order_by("pk"):
            try:
                predictive_model_activate(model=model)
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(request, _("Model #%(id)s activated.") % {"id": model.pk}, messages.SUCCESS)

    @admin.action(description=_("Deactivate"), permissions=["change"])
    def deactivate(self, request, queryset):
        from .ml.services import predictive_model_deactivate

        for model in queryset:
            predictive_model_deactivate(model=model)
        self.message_user(request, _("Deactivated."), messages.SUCCESS)


@admin.register(Cluster)
class ClusterAdmin(ReadOnlyAdmin):
    list_display = ("name", "model", "index", "size")
    list_filter = ("model__active",)
    search_fields = ("name",)
    list_select_related = ("model",)
