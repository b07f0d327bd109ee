"""Staff pages of recommendations: trained models with offline metrics and a chart, training
with progress, activation, per-tier rules, experiments with results, stop and promote.

Operations may change everything; Analysts read; Customer service sees the customer page's
section only (recommendations/customer_page.py). Views translate input and output; writes
are in services.py, reads in selectors.py, and domain errors become messages.
"""
from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from crm.core.errors import ApplicationError
from crm.core.views import StaffPermissionRequiredMixin, sorted_page

from . import selectors, services
from .choices import ModelUse
from .forms import ExperimentForm, TierRuleForm, TrainForm
from .models import Experiment, TierRule, TrainedModel
from .ready import enqueue_refresh_all, ready_status

VIEW_MODELS = "recommendations.view_trainedmodel"


MODELS_PER_PAGE = 25
EXPERIMENTS_PER_PAGE = 25
MODEL_SORTS = {"trained": ("created_at", "id"), "-trained": ("-created_at", "-id"),
               "algorithm": ("algorithm", "-created_at"), "-algorithm": ("-algorithm", "-created_at"),
               "status": ("status", "-created_at"), "-status": ("-status", "-created_at")}
EXPERIMENT_SORTS = {"name": ("name", "id"), "-name": ("-name", "-id"), "status": ("status", "-started_at"),
                    "-status": ("-status", "-started_at"), "started": ("started_at", "id"),
                    "-started": ("-started_at", "-id")}


class MethodPermissionMixin(StaffPermissionRequiredMixin):
    """`permission_required` to read (GET); plus `post_permission_required` to write (POST)."""

    post_permission_required: tuple[str, ...] = ()

    def get_permission_required(self):
        perms = tuple(super().get_permission_required())
        if self.request.method == "POST":
            perms += tuple(self.post_permission_required)
        return perms


def _perms(user) -> dict:
    return {
        "can_train": user.has_perm("recommendations.add_trainedmodel"),
        "can_activate": user.has_perm("recommendations.change_trainedmodel"),
        "can_view_rules": user.has_perm("recommendations.view_tierrule"),
        "can_change_rules": user.has_perm("recommendations.add_tierrule"),
        "can_view_experiments": user.has_perm("recommendations.view_experiment"),
        "can_add_experiment": user.has_perm("recommendations.add_experiment"),
        "can_stop_experiment": user.has_perm("recommendations.change_experiment"),
    }


class PageMixin:
    section = ""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(_perms(self.request.user), section=self.section)
        return context


class ModelListView(PageMixin, MethodPermissionMixin, TemplateView):
    template_name = "recommendations/overview.html"
    permission_required = (VIEW_MODELS,)
    section = "models"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        page, sort = sorted_page(self.request, selectors.trained_models(), MODEL_SORTS, "-trained", MODELS_PER_PAGE)
        models = list(page.object_list)
        since = timezone.now() - timedelta(days=30)
        shown = [m.pk for m in models if m.status == "succeeded"][:10]
        attribution = selectors.model_attribution(model_ids=shown, since=since)
        for m in models:
            m.attribution = attribution.get(m.pk)
        active = {m.use: m for m in TrainedModel.objects.defer("artefact").filter(active=True)}
        context.update(models=models, page_obj=page, sort=sort, chart=selectors.metrics_chart(models),
                       train_form=kwargs.get("train_form") or TrainForm(), active=active, ready=ready_status())
        return context


class ReadyRefreshView(MethodPermissionMixin, View):
    """Queue a refresh of every customer's ready list (recommendations/ready.py)."""

    permission_required = (VIEW_MODELS, "recommendations.change_trainedmodel")

    def post(self, request):
        enqueue_refresh_all()
        messages.success(request, _("A refresh of the ready lists is queued; this page shows it when it is done."))
        return redirect("recommendations:overview")


class ModelTrainView(MethodPermissionMixin, View):
    permission_required = (VIEW_MODELS, "recommendations.add_trainedmodel")

    def post(self, request):
        form = TrainForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("The training was not started: %(errors)s") % {
                "errors": "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())})
            return redirect("recommendations:overview")
        try:
            model = services.recommender_train_request(
                algorithm=form.cleaned_data["algorithm"], params=form.cleaned_data["params"], use=form.cleaned_data["use"],
                window_days=form.cleaned_data["window_days"], holdout_days=form.cleaned_data["holdout_days"],
                requested_by=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect("recommendations:overview")
        messages.success(request, _("Training #%(id)s queued.") % {"id": model.pk})
        return redirect("recommendations:model-detail", pk=model.pk)


class ModelDetailView(PageMixin, MethodPermissionMixin, TemplateView):
    template_name = "recommendations/model_detail.html"
    permission_required = (VIEW_MODELS,)
    section = "models"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        model = get_object_or_404(TrainedModel.objects.defer("artefact"), pk=kwargs["pk"])
        metrics = model.metrics or {}
        baseline = metrics.get("baseline_popularity") or {}

        def fmt(v):
            return f"{v:.4f}" if isinstance(v, float) else v

        rows = [(k, fmt(v), fmt(baseline.get(k))) for k, v in metrics.items() if not isinstance(v, dict)]
        context.update(model=model, metric_rows=rows,
                       attribution=selectors.attribution(model_id=model.pk, since=timezone.now() - timedelta(days=30))
                       if model.status == "succeeded" else None)
        return context


class ModelStatusView(MethodPermissionMixin, View):
    """The progress of a training as JSON (polled by static/js/recs-train-progress.js)."""

    permission_required = (VIEW_MODELS,)

    def get(self, request, pk: int):
        row = (TrainedModel.objects.filter(pk=pk)
               .values("status", "stage", "progress", "error", "training_seconds", "metrics", "n_users", "n_items",
                       "n_interactions").first())
        if row is None:
            return JsonResponse({"error": "not found"}, status=404)
        status = TrainedModel(status=row["status"])
        return JsonResponse({**row, "status_label": str(status.get_status_display()),
                             "finished": status.finished, "metrics": row["metrics"] or {}})


class ModelActivateView(MethodPermissionMixin, View):
    permission_required = (VIEW_MODELS, "recommendations.change_trainedmodel")

    def post(self, request, pk: int):
        model = get_object_or_404(TrainedModel.objects.defer("artefact"), pk=pk)
        try:
            services.recommender_activate(model=model)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Model #%(id)s now serves: %(use)s.") % {"id": model.pk, "use": model.get_use_display()})
        return redirect(request.POST.get("next") or "recommendations:overview")


class TierRuleListView(PageMixin, MethodPermissionMixin, TemplateView):
    template_name = "recommendations/rules.html"
    permission_required = ("recommendations.view_tierrule",)
    post_permission_required = ("recommendations.add_tierrule",)
    section = "rules"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        rules = TierRule.objects.select_related("tier", "tier__dimension", "item", "created_by")
        context.update(rules=rules, form=kwargs.get("form") or TierRuleForm())
        return context

    def post(self, request):
        form = TierRuleForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.tier_rule_create(tier=data["tier"], action=data["action"], item=data["item_obj"],
                                          category=data["category"] or "", weight=data["weight"], note=data["note"],
                                          created_by=request.user)
            except ApplicationError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, _("Rule saved."))
                return redirect("recommendations:rules")
        return self.render_to_response(self.get_context_data(form=form), status=400)


class TierRuleChangeView(MethodPermissionMixin, View):
    """POST action=toggle (change permission) or action=delete (delete permission)."""

    permission_required = ("recommendations.view_tierrule", "recommendations.change_tierrule")

    def post(self, request, pk: int):
        rule = get_object_or_404(TierRule, pk=pk)
        if request.POST.get("action") == "delete":
            if not request.user.has_perm("recommendations.delete_tierrule"):
                messages.error(request, _("You may not delete rules."))
            else:
                services.tier_rule_delete(rule=rule)
                messages.success(request, _("Rule deleted."))
        else:
            try:
                services.tier_rule_update(rule=rule, active=not rule.active)
            except ApplicationError as exc:
                messages.error(request, exc.message)
        return redirect("recommendations:rules")


class ExperimentListView(PageMixin, MethodPermissionMixin, TemplateView):
    template_name = "recommendations/experiments.html"
    permission_required = ("recommendations.view_experiment",)
    post_permission_required = ("recommendations.add_experiment",)
    section = "experiments"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        page, sort = sorted_page(self.request, selectors.experiments_list(), EXPERIMENT_SORTS, "-started",
                                 EXPERIMENTS_PER_PAGE)
        context.update(experiments=page.object_list, page_obj=page, sort=sort, form=kwargs.get("form") or ExperimentForm(),
                       has_active=TrainedModel.objects.filter(use=ModelUse.CUSTOMER, active=True).exists())
        return context

    def post(self, request):
        form = ExperimentForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                experiment = services.experiment_create(
                    name=data["name"], description=data["description"], model_a=data["model_a"], model_b=data["model_b"],
                    config_a=data["config_a"], config_b=data["config_b"], traffic_b=data["traffic_b"],
                    created_by=request.user)
            except ApplicationError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, _("Experiment started."))
                return redirect("recommendations:experiment-detail", pk=experiment.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class ExperimentDetailView(PageMixin, MethodPermissionMixin, TemplateView):
    template_name = "recommendations/experiment_detail.html"
    permission_required = ("recommendations.view_experiment",)
    section = "experiments"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        experiment = get_object_or_404(selectors.experiments_list(), pk=kwargs["pk"])
        results = selectors.experiment_results(experiment=experiment)
        context.update(experiment=experiment, results=results, arms=[results["arms"]["a"], results["arms"]["b"]])
        return context


class ExperimentStopView(MethodPermissionMixin, View):
    permission_required = ("recommendations.view_experiment", "recommendations.change_experiment")

    def post(self, request, pk: int):
        experiment = get_object_or_404(Experiment, pk=pk)
        promote = request.POST.get("promote") or None
        if promote and not request.user.has_perm("recommendations.change_trainedmodel"):
            messages.error(request, _("You may not activate models."))
            return redirect("recommendations:experiment-detail", pk=pk)
        try:
            services.experiment_stop(experiment=experiment, promote=promote)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Experiment stopped; arm %(arm)s promoted.") % {"arm": promote.upper()}
                             if promote else _("Experiment stopped."))
        return redirect("recommendations:experiment-detail", pk=pk)
