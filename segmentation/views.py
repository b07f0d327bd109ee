"""Staff pages of segmentation: dimensions and tiers with sizes and trends, the rule builder with a
live preview, segments, recompute with progress, model metrics, and tier pins from the customer
page. Views translate input and output; reads are in views_support.py and selectors.py, writes
in services.py. Domain errors become messages, never stack traces.
"""
from __future__ import annotations

import json
import logging

from django.contrib import messages
from django.db.models import ProtectedError
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from accounts.models import Customer
from accounts.selectors import customer_contact
from crm.core.errors import ApplicationError
from crm.core.translations import dropped_translations_message
from crm.core.views import StaffPermissionRequiredMixin, sorted_page

from . import selectors
from . import views_support as support
from .choices import RunStatus
from .forms import RecomputeForm, SegmentForm, TierForm, TierOverrideForm, apply_application_error
from .models import RecomputeRun, Segment, Tier, TierOverride
from .rules import RuleError
from .selectors import latest_as_of, latest_run
from .services import (
    recompute_run_create,
    segment_create,
    segment_update,
    tier_override_create,
    tier_override_revoke,
    tier_settings_update,
)

logger = logging.getLogger(__name__)

PII_PERMISSION = "accounts.view_customer_pii"
SEGMENTS_PER_PAGE = 25
RUNS_PER_PAGE = 25
PREVIEW_SAMPLE = 10
SEGMENT_SORTS = {"name": ("name", "id"), "-name": ("-name", "-id"), "created": ("created_at", "id"),
                 "-created": ("-created_at", "-id")}
RUN_SORTS = {"created": ("created_at", "id"), "-created": ("-created_at", "-id"), "status": ("status", "-created_at"),
             "-status": ("-status", "-created_at")}


class MethodPermissionMixin(StaffPermissionRequiredMixin):
    """`permission_required` to read (GET); `post_permission_required` to write (POST)."""

    post_permission_required: tuple[str, ...] = ()

    def get_permission_required(self):
        perms = tuple(super().get_permission_required())
        if self.request.method == "POST":
            perms += tuple(self.post_permission_required)
        return perms


def _perms(user) -> dict[str, bool]:
    return {
        "can_change_tier": user.has_perm("segmentation.change_tier"),
        "can_add_segment": user.has_perm("segmentation.add_segment"),
        "can_change_segment": user.has_perm("segmentation.change_segment"),
        "can_delete_segment": user.has_perm("segmentation.delete_segment"),
        "can_recompute": user.has_perm("segmentation.add_recomputerun"),
        "can_view_runs": user.has_perm("segmentation.view_recomputerun"),
        "can_view_models": user.has_perm("segmentation.view_predictivemodel"),
        "can_view_segments": user.has_perm("segmentation.view_segment"),
        "can_view_customers": user.has_perm("accounts.view_customer"),
    }


class SegmentationPageMixin:
    section = ""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(_perms(self.request.user), section=self.section, recompute_form=RecomputeForm())
        return context


def _start_recompute(request, *, mode: str) -> RecomputeRun | None:
    """Create a run and queue the Celery task; in the embedded default it runs in process."""
    from .tasks import recompute_tiers as recompute_tiers_task

    try:
        run = recompute_run_create(mode=mode, requested_by=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return None
    try:
        recompute_tiers_task.delay(run_id=run.pk)
    except Exception as exc:  # noqa: BLE001
        # The broker refused the task, or (tasks run in process) the recompute itself failed.
        # Either way the failure goes on the run, where the runs list shows it, not into a 500.
        logger.exception("recompute_start_failed run=%s", run.pk)
        RecomputeRun.objects.filter(pk=run.pk).exclude(status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED]).update(
            status=RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000])
        messages.error(request, _("The recompute failed: %(error)s") % {"error": exc})
    return run


# --- Dimensions and tiers ---------------------------------------------------------------------
class DimensionListView(SegmentationPageMixin, StaffPermissionRequiredMixin, TemplateView):
    permission_required = "segmentation.view_dimension"
    template_name = "segmentation/overview.html"
    section = "dimensions"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(dimensions=support.dimensions_overview(), trends=support.tier_trends(), last_run=latest_run(),
                       as_of=latest_as_of())
        return context


class TierDetailView(SegmentationPageMixin, MethodPermissionMixin, TemplateView):
    """A tier: its settings and the rule builder. Everyone who may view tiers reads it; saving
    needs segmentation.change_tier."""

    permission_required = "segmentation.view_tier"
    post_permission_required = ("segmentation.change_tier",)
    template_name = "segmentation/tier_detail.html"
    section = "dimensions"

    def dispatch(self, request, *args, **kwargs):
        self.tier = get_object_or_404(Tier.objects.select_related("dimension"), pk=kwargs["pk"])
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        form = form or TierForm(instance=self.tier)
        if not self.request.user.has_perm("segmentation.change_tier"):
            for field in form.fields.values():
                field.disabled = True
        siblings = list(self.tier.dimension.tiers.order_by("order", "id"))
        context.update(tier=self.tier, dimension=self.tier.dimension, form=form, siblings=siblings,
                       is_fallback=self.tier.dimension.fallback_tier_id == self.tier.pk,
                       customers=self.tier.memberships.count(), rule_html=support.rule_html(self.tier.rule),
                       builder=support.builder_config(exclude_dimension=self.tier.dimension.slug),
                       preview_url=reverse("segmentation:preview"), preview_tier=self.tier.pk,
                       readonly=not self.request.user.has_perm("segmentation.change_tier"))
        return context

    def post(self, request, *args, **kwargs):
        form = TierForm(request.POST, instance=Tier.objects.get(pk=self.tier.pk))
        if not form.is_valid():
            messages.error(request, _("The tier was not saved: correct the errors below."))
            return self.render_to_response(self.get_context_data(form=form))
        data = dict(form.cleaned_data)
        rule = data.pop("rule")
        try:
            tier = tier_settings_update(tier=self.tier, rule=rule, **data)
        except ApplicationError as exc:
            apply_application_error(form, exc)
            messages.error(request, exc.message)
            return self.render_to_response(self.get_context_data(form=form))
        messages.success(request, _("Tier “%(name)s” saved. The change applies at the next recompute; "
                                    "recompute now to see it at once.") % {"name": tier.display_name})
        if warning := dropped_translations_message(form):
            messages.warning(request, warning)
        return redirect("segmentation:tier", pk=self.tier.pk)


class RulePreviewView(StaffPermissionRequiredMixin, View):
    """POST {"rule": {...}, "tier": id?} -> {"count", "sample", "as_of", "in_tier"?}; 400 with
    {"code", "message", "errors": [{"path", "message"}]} when the rule is invalid."""

    permission_required = ("segmentation.view_dimension", "accounts.view_customer")
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        try:
            payload = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            return JsonResponse({"code": "invalid", "message": _("The request body is not valid JSON."), "errors": []}, status=400)
        if not isinstance(payload, dict):
            return JsonResponse({"code": "invalid", "message": _("Send an object with a rule."), "errors": []}, status=400)
        tier = None
        if payload.get("tier"):
            tier = Tier.objects.select_related("dimension").filter(pk=payload["tier"]).first()
        try:
            result = support.rule_preview(rule=payload.get("rule", {}), tier=tier, sample=PREVIEW_SAMPLE)
        except RuleError as exc:
            return JsonResponse({"code": exc.code, "message": exc.message, "errors": exc.errors}, status=400)
        unmasked = request.user.has_perm(PII_PERMISSION)
        ids = [row["id"] for row in result["sample"]]
        customers = {c.pk: c for c in Customer.objects.filter(pk__in=ids).only("id", "external_id", "name", "email", "phone")}
        sample = []
        for row in result["sample"]:
            contact = customer_contact(customers[row["id"]], unmasked=unmasked)
            sample.append({"id": row["id"], "external_id": row["external_id"], "name": contact.display_name,
                           "url": reverse("accounts:customer-detail", args=[row["id"]])})
        body = {"count": result["count"], "sample": sample, "as_of": result["as_of"].isoformat()}
        if "in_tier" in result:
            body["in_tier"] = result["in_tier"]
        return JsonResponse(body)


# --- Segments ---------------------------------------------------------------------------------
class SegmentListView(SegmentationPageMixin, StaffPermissionRequiredMixin, TemplateView):
    permission_required = "segmentation.view_segment"
    template_name = "segmentation/segment_list.html"
    section = "segments"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        page, sort = sorted_page(self.request, Segment.objects.all(), SEGMENT_SORTS, "name", SEGMENTS_PER_PAGE)
        selectors.segments_with_counts(page.object_list)
        context.update(page_obj=page, sort=sort)
        return context


class SegmentEditMixin(SegmentationPageMixin):
    template_name = "segmentation/segment_form.html"
    section = "segments"
    segment: Segment | None = None

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        form = form or SegmentForm(instance=self.segment)
        if self.segment is not None and not self.request.user.has_perm("segmentation.change_segment"):
            for field in form.fields.values():
                field.disabled = True
        context.update(form=form, segment=self.segment, builder=support.builder_config(),
                       preview_url=reverse("segmentation:preview"), preview_tier="",
                       readonly=self.segment is not None and not self.request.user.has_perm("segmentation.change_segment"),
                       rule_html=support.rule_html(self.segment.rule) if self.segment else "")
        return context


class SegmentCreateView(SegmentEditMixin, StaffPermissionRequiredMixin, TemplateView):
    permission_required = ("segmentation.view_segment", "segmentation.add_segment")

    def post(self, request, *args, **kwargs):
        form = SegmentForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("The segment was not saved: correct the errors below."))
            return self.render_to_response(self.get_context_data(form=form))
        try:
            segment = segment_create(by=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            apply_application_error(form, exc)
            messages.error(request, exc.message)
            return self.render_to_response(self.get_context_data(form=form))
        messages.success(request, _("Segment “%(name)s” created.") % {"name": segment.name})
        return redirect("segmentation:segment-list")


class SegmentUpdateView(SegmentEditMixin, MethodPermissionMixin, TemplateView):
    permission_required = "segmentation.view_segment"
    post_permission_required = ("segmentation.change_segment",)

    def dispatch(self, request, *args, **kwargs):
        self.segment = get_object_or_404(Segment, slug=kwargs["slug"])
        return super().dispatch(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        form = SegmentForm(request.POST, instance=Segment.objects.get(pk=self.segment.pk))
        if not form.is_valid():
            messages.error(request, _("The segment was not saved: correct the errors below."))
            return self.render_to_response(self.get_context_data(form=form))
        try:
            segment = segment_update(segment=Segment.objects.get(pk=self.segment.pk), **form.cleaned_data)
        except ApplicationError as exc:
            apply_application_error(form, exc)
            messages.error(request, exc.message)
            return self.render_to_response(self.get_context_data(form=form))
        messages.success(request, _("Segment “%(name)s” saved.") % {"name": segment.name})
        return redirect("segmentation:segment-list")


class SegmentDeleteView(SegmentationPageMixin, MethodPermissionMixin, TemplateView):
    permission_required = "segmentation.delete_segment"
    template_name = "segmentation/segment_confirm_delete.html"
    section = "segments"

    def dispatch(self, request, *args, **kwargs):
        self.segment = get_object_or_404(Segment, slug=kwargs["slug"])
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["segment"] = self.segment
        return context

    def post(self, request, *args, **kwargs):
        name = self.segment.name
        try:
            self.segment.delete()
        except ProtectedError:
            messages.error(request, _("The segment is the audience of a campaign and cannot be deleted. "
                                      "Change the campaign's audience first."))
            return redirect("segmentation:segment-edit", slug=self.segment.slug)
        messages.success(request, _("Segment “%(name)s” deleted.") % {"name": name})
        return redirect("segmentation:segment-list")


# --- Recompute --------------------------------------------------------------------------------
class RecomputeStartView(StaffPermissionRequiredMixin, View):
    permission_required = "segmentation.add_recomputerun"
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        form = RecomputeForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Choose a full or an incremental recompute."))
            return redirect("segmentation:run-list")
        run = _start_recompute(request, mode=form.cleaned_data["mode"])
        if run is None:
            return redirect("segmentation:run-list")
        if run.status != RunStatus.FAILED:
            messages.info(request, _("Recompute #%(id)s started.") % {"id": run.pk})
        return redirect("segmentation:run-detail", pk=run.pk)


class RecomputeRunListView(SegmentationPageMixin, StaffPermissionRequiredMixin, TemplateView):
    permission_required = "segmentation.view_recomputerun"
    template_name = "segmentation/run_list.html"
    section = "runs"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        qs = RecomputeRun.objects.select_related("requested_by")
        status = self.request.GET.get("status") or ""
        if status in RunStatus.values:
            qs = qs.filter(status=status)
        page, sort = sorted_page(self.request, qs, RUN_SORTS, "-created", RUNS_PER_PAGE)
        for run in page.object_list:
            run.info = support.run_status(run)
        context.update(page_obj=page, sort=sort, status=status, statuses=RunStatus.choices)
        return context


class RecomputeRunDetailView(SegmentationPageMixin, StaffPermissionRequiredMixin, TemplateView):
    permission_required = "segmentation.view_recomputerun"
    template_name = "segmentation/run_detail.html"
    section = "runs"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        run = get_object_or_404(RecomputeRun.objects.select_related("requested_by"), pk=self.kwargs["pk"])
        context.update(run=run, info=support.run_status(run), stage_labels={k: str(v) for k, v in support.STAGE_LABELS.items()})
        return context


class RecomputeRunStatusView(StaffPermissionRequiredMixin, View):
    """The small JSON the progress page polls."""

    permission_required = "segmentation.view_recomputerun"
    http_method_names = ["get"]

    def get(self, request, *args, **kwargs):
        run = RecomputeRun.objects.filter(pk=kwargs["pk"]).first()
        if run is None:
            raise Http404
        return JsonResponse(support.run_status(run))


# --- Models -----------------------------------------------------------------------------------
class ModelListView(SegmentationPageMixin, StaffPermissionRequiredMixin, TemplateView):
    permission_required = "segmentation.view_predictivemodel"
    template_name = "segmentation/models.html"
    section = "models"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        overview = support.models_overview()
        cards = []
        for kind, model in overview["shown"].items():
            if kind == "cluster" or model is None:
                continue
            highlights = support.model_highlights(model)
            cards.append({"kind": kind, "model": model, "metrics_html": support.metrics_html(model.metrics),
                          "calibration_html": support.metrics_html(highlights["calibration"]), **highlights})
        cluster_model = overview["shown"].get("cluster")
        context.update(cards=cards, cluster_model=cluster_model, clusters=overview["clusters"],
                       centroid_fields=overview["centroid_fields"], history=overview["history"],
                       cluster_highlights=support.model_highlights(cluster_model) if cluster_model else {},
                       cluster_metrics_html=support.metrics_html({k: v for k, v in (cluster_model.metrics or {}).items()
                                                                  if k not in ("clusters", "population_median")})
                       if cluster_model else "",
                       churn=overview["shown"].get("churn"), value=overview["shown"].get("value"))
        return context


# --- Pins (from the customer page) ------------------------------------------------------------
def _customer_page(customer_id: int) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("accounts:customer-detail", args=[customer_id]) + "#tiers")


class TierOverrideCreateView(StaffPermissionRequiredMixin, View):
    permission_required = ("accounts.view_customer", "segmentation.add_tieroverride")
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        customer = get_object_or_404(Customer, pk=kwargs["pk"])
        form = TierOverrideForm(request.POST)
        if not form.is_valid():
            for field, errors in form.errors.items():
                label = form.fields[field].label if field in form.fields else ""
                for error in errors:
                    messages.error(request, f"{label}: {error}" if label else error)
            return _customer_page(customer.pk)
        tier = form.cleaned_data["tier"]
        try:
            tier_override_create(customer=customer, tier=tier, reason=form.cleaned_data["reason"],
                                 expires_at=form.cleaned_data["expires_at"], by=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return _customer_page(customer.pk)
        messages.success(request, _("Pinned to %(tier)s on %(dimension)s until %(expires)s.") % {
            "tier": tier.display_name, "dimension": tier.dimension.display_name,
            "expires": form.cleaned_data["expires_at"].strftime("%Y-%m-%d %H:%M")})
        return _customer_page(customer.pk)


class TierOverrideRevokeView(StaffPermissionRequiredMixin, View):
    permission_required = ("accounts.view_customer", "segmentation.change_tieroverride")
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        override = get_object_or_404(TierOverride.objects.select_related("tier"), pk=kwargs["pk"])
        try:
            tier_override_revoke(override=override, by=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return _customer_page(override.customer_id)
        messages.success(request, _("Pin revoked. The next recompute puts the customer where the rules say."))
        return _customer_page(override.customer_id)
