from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import Experiment, Item, TierRule, TrainedModel


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("external_id", "title", "category", "brand", "price", "active", "in_stock", "updated_at")
    list_filter = ("active", "in_stock", "category")
    search_fields = ("=external_id", "title", "brand")
    search_help_text = _("Exact external id, or part of the title or brand.")
    readonly_fields = ("created_at", "updated_at")
    ordering = ("-id",)
    show_full_result_count = False
    list_per_page = 50
    actions = ("activate", "deactivate")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.action(description=_("Activate selected items"), permissions=["change"])
    def activate(self, request, queryset):
        updated = queryset.update(active=True, updated_at=timezone.now())
        self.message_user(request, ngettext("%(count)d item activated.", "%(count)d items activated.", updated) % {"count": updated})

    @admin.action(description=_("Deactivate selected items"), permissions=["change"])
    def deactivate(self, request, queryset):
        updated = queryset.update(active=False, updated_at=timezone.now())
        self.message_user(request, ngettext("%(count)d item deactivated.", "%(count)d items deactivated.", updated) % {"count": updated})


@admin.register(TrainedModel)
class TrainedModelAdmin(admin.ModelAdmin):
    list_display = ("id", "algorithm", "use", "status", "active", "trained_at", "n_users", "n_items", "n_interactions",
                    "ndcg", "training_seconds")
    list_filter = ("use", "status", "active", "algorithm")
    search_fields = ("=id", "algorithm")
    ordering = ("-id",)
    exclude = ("artefact",)
    readonly_fields = ("status", "stage", "progress", "error", "celery_task_id", "requested_by", "window_start", "window_end",
                       "started_at", "trained_at", "n_users", "n_items", "n_interactions", "metrics", "training_seconds",
                       "artefact_sha256", "artefact_bytes", "active", "activated_at", "created_at", "updated_at")
    actions = ("activate",)

    def get_queryset(self, request):
        return super().get_queryset(request).defer("artefact")

    @admin.display(description=_("nDCG@10"))
    def ndcg(self, obj):
        value = (obj.metrics or {}).get("ndcg")
        return f"{value:.4f}" if isinstance(value, (int, float)) else "—"

    @admin.action(description=_("Activate the selected model for its use"), permissions=["change"])
    def activate(self, request, queryset):
        from crm.core.errors import ApplicationError

        from .services import recommender_activate

        for model in queryset[:1]:
            try:
                recommender_activate(model=model)
            except ApplicationError as exc:
                self.message_user(request, exc.message, level="error")
            else:
                self.message_user(request, _("Model #%(id)s activated.") % {"id": model.pk})


@admin.register(TierRule)
class TierRuleAdmin(admin.ModelAdmin):
    list_display = ("tier", "action", "item", "category", "weight", "active", "note", "updated_at")
    list_filter = ("action", "active", "tier__dimension")
    search_fields = ("category", "note", "item__external_id")
    raw_id_fields = ("item",)
    readonly_fields = ("created_by", "created_at", "updated_at")

    def save_model(self, request, obj, form, change):
        from .model_store import state_changed

        super().save_model(request, obj, form, change)
        state_changed()

    def delete_model(self, request, obj):
        from .model_store import state_changed

        super().delete_model(request, obj)
        state_changed()


class ExperimentAdminForm(forms.ModelForm):
    """A new experiment passes the checks of the staff page (one running at a time, arms that
    differ, finished customer models): errors on the form, not a database error."""

    class Meta:
        model = Experiment
        fields = "__all__"

    def clean(self):
        data = super().clean()
        if self.instance._state.adding and not self.errors:
            from crm.core.errors import ApplicationError

            from .services import experiment_check

            try:
                experiment_check(name=data.get("name") or "", model_a=data.get("model_a"), model_b=data.get("model_b"),
                                 config_a=data.get("config_a"), config_b=data.get("config_b"),
                                 traffic_b=data.get("traffic_b") or 0)
            except ApplicationError as exc:
                raise ValidationError(str(exc)) from None
        return data


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    form = ExperimentAdminForm
    list_display = ("name", "status", "model_a", "model_b", "traffic_b", "started_at", "stopped_at", "winner")
    list_filter = ("status",)
    search_fields = ("name",)
    readonly_fields = ("status", "started_at", "stopped_at", "winner", "created_by", "created_at", "updated_at")

    def save_model(self, request, obj, form, change):
        from .model_store import state_changed

        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        state_changed()
