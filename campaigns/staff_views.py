"""Staff pages of campaigns: the list with progress, the builder (audience with a live estimate,
template editor with preview, coupon policy, variants, trigger, holdout, test send and the
lifecycle buttons), results with charts, the local outbox, and the goodwill coupon from the
customer page. Views translate input and output; writes are in services.py and coupons.py, reads
in selectors.py and results.py. Domain errors become messages, never stack traces.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from accounts.models import Customer
from crm.core.errors import ApplicationError, NotFound
from crm.core.views import StaffPermissionRequiredMixin, sorted_page
from segmentation.models import Segment, Tier

from . import rendering
from .audience import audience_estimate
from .choices import CampaignStatus, CampaignKind, SkipReason
from .coupons import coupon_issue_goodwill
from .models import Campaign, Variant
from .results import campaign_results, tier_strategy_figures
from .selectors import campaign_list, outbox_list, outbox_message
from .services import (EDITABLE, campaign_cancel, campaign_create, campaign_pause, campaign_preview, campaign_resume,
                       campaign_schedule, campaign_start, campaign_test_send, campaign_update)
from .staff_forms import CampaignForm, GoodwillCouponForm, PreviewForm, apply_domain_error

logger = logging.getLogger(__name__)

VIEW = "campaigns.view_campaign"
ADD = "campaigns.add_campaign"
CHANGE = "campaigns.change_campaign"
GOODWILL = "campaigns.issue_goodwill_coupon"
CAMPAIGNS_PER_PAGE = 25
OUTBOX_PER_PAGE = 25
OUTBOX_LIMIT = 1000
LIVE = (CampaignStatus.SENDING,)
SORTS = {"name": ("name", "id"), "-name": ("-name", "-id"), "status": ("status", "-created_at"),
         "-status": ("-status", "-created_at"), "created": ("created_at", "id"), "-created": ("-created_at", "-id"),
         "started": ("started_at", "id"), "-started": ("-started_at", "-id")}


class MethodPermissionMixin(StaffPermissionRequiredMixin):
    """`permission_required` to read (GET); `post_permission_required` added to write (POST)."""

    post_permission_required: tuple[str, ...] = ()

    def get_permission_required(self):
        perms = tuple(super().get_permission_required())
        if self.request.method == "POST":
            perms += tuple(self.post_permission_required)
        return perms


def _strategies() -> list[dict]:
    """tier_strategy_figures() with a translated title per strategy."""
    titles = {"new_customer_retention": _("New-customer retention"),
              "silent_reactivation": _("Silent-customer reactivation"),
              "churned_win_back": _("Churned-customer win-back")}
    return [{**s, "title": titles.get(s["key"], s["label"])} for s in tier_strategy_figures()]


def _progress(c: Campaign) -> dict:
    """Progress of one campaign_list() row: sent of those to send (holdout and skipped excluded)."""
    total = c.n_sent + c.n_open + c.n_failed
    return {"id": c.pk, "status": c.status, "status_label": c.get_status_display(), "sent": c.n_sent,
            "failed": c.n_failed, "waiting": c.n_open, "total": total, "holdout": c.n_holdout,
            "audience": c.n_audience, "percent": round(100 * (c.n_sent + c.n_failed) / total) if total else 0}


# --- list -------------------------------------------------------------------------------------------
class CampaignListView(StaffPermissionRequiredMixin, TemplateView):
    permission_required = VIEW
    template_name = "campaigns/campaign_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        qs = campaign_list().select_related("segment").prefetch_related("tiers__dimension")
        page, sort = sorted_page(self.request, qs, SORTS, "-created", CAMPAIGNS_PER_PAGE)
        rows = [{"campaign": c, "progress": _progress(c)} for c in page.object_list]
        context.update(page_obj=page, rows=rows, sort=sort, can_add=self.request.user.has_perm(ADD),
                       live=any(r["campaign"].status in LIVE for r in rows),
                       live_ids=",".join(str(r["campaign"].pk) for r in rows),
                       strategies=_strategies())
        return context


class CampaignProgressView(StaffPermissionRequiredMixin, View):
    """JSON progress of the campaigns named in ?ids= (the list page polls it while sending)."""

    permission_required = VIEW

    def get(self, request, *args, **kwargs):
        ids = [int(x) for x in (request.GET.get("ids") or "").split(",") if x.strip().isdigit()][:100]
        rows = campaign_list().filter(pk__in=ids)
        return JsonResponse({"campaigns": [_progress(c) for c in rows]})


# --- builder ------------------------------------------------------------------------------------------
def _builder_context(request, *, form: CampaignForm, campaign: Campaign | None) -> dict:
    editable = campaign is None or campaign.status in EDITABLE
    can_edit = request.user.has_perm(ADD if campaign is None else CHANGE)
    if not (editable and can_edit):
        for field in form.fields.values():
            field.disabled = True
    sample = None
    if campaign is not None:
        sample = Customer.objects.filter(pk=request.GET.get("customer")).first() if request.GET.get("customer") else None
        sample = sample or _default_sample(campaign)
    return {"form": form, "campaign": campaign, "editable": editable, "can_edit": can_edit and editable,
            "can_send": campaign is not None and request.user.has_perm(CHANGE),
            "variant_rows": form.variant_rows(), "sample_customer": sample,
            "variants": list(campaign.variants.all()) if campaign else [],
            "context_keys": rendering.CONTEXT_KEYS, "status": CampaignStatus,
            "test_to": request.user.email,
            "builder_labels": {"audience": _("in the audience"), "sends": _("to send"), "holdout": _("held out"),
                               "choose": _("Choose tiers or a segment."), "failed": _("The estimate failed."),
                               "rendering": _("Rendering…")}}


def _default_sample(campaign: Campaign) -> Customer | None:
    """A customer to preview for: one of the tiers' members, else any customer."""
    tier_ids = list(campaign.tiers.values_list("pk", flat=True))
    if campaign.entry_tier_id:
        tier_ids.append(campaign.entry_tier_id)
    qs = Customer.objects.filter(erased_at__isnull=True)
    found = qs.filter(memberships__tier_id__in=tier_ids).order_by("pk").first() if tier_ids else None
    return found or qs.order_by("pk").first()


class CampaignCreateView(StaffPermissionRequiredMixin, TemplateView):
    permission_required = (VIEW, ADD)
    template_name = "campaigns/campaign_form.html"

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(_builder_context(self.request, form=form or CampaignForm(), campaign=None))
        return context

    def post(self, request, *args, **kwargs):
        form = CampaignForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        try:
            campaign = campaign_create(by=request.user, **form.service_kwargs())
        except ApplicationError as exc:
            apply_domain_error(form, exc)
            return self.render_to_response(self.get_context_data(form=form), status=400)
        messages.success(request, _("Draft saved."))
        return redirect("campaigns:detail", campaign.pk)


class CampaignDetailView(MethodPermissionMixin, TemplateView):
    """The builder of one campaign: editable while draft or scheduled (campaigns.change_campaign);
    read-only otherwise and for readers."""

    permission_required = VIEW
    post_permission_required = (CHANGE,)
    template_name = "campaigns/campaign_form.html"

    def dispatch(self, request, *args, **kwargs):
        self.campaign = get_object_or_404(Campaign.objects.select_related("segment", "entry_tier"), pk=kwargs["pk"])
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        form = form or CampaignForm(initial=CampaignForm.initial_for(self.campaign))
        context.update(_builder_context(self.request, form=form, campaign=self.campaign))
        return context

    def post(self, request, *args, **kwargs):
        form = CampaignForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        try:
            self.campaign = campaign_update(campaign=self.campaign, **form.service_kwargs())
        except ApplicationError as exc:
            apply_domain_error(form, exc)
            self.campaign.refresh_from_db()
            return self.render_to_response(self.get_context_data(form=form), status=400)
        messages.success(request, _("Campaign saved."))
        return redirect("campaigns:detail", self.campaign.pk)


@dataclass
class _DraftAudience:
    """The builder's unsaved audience, shaped like a Campaign for audience_estimate()."""

    tiers: QuerySet
    segment: Segment | None
    segment_id: int | None
    kind: str
    holdout_percent: float

    @property
    def sends_email(self) -> bool:
        return self.kind in (CampaignKind.EMAIL, CampaignKind.EMAIL_COUPON)


def _json_body(request) -> dict:
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}
    return {k: (request.POST.getlist(k) if k == "tiers" else request.POST.get(k)) for k in request.POST}


class AudienceEstimateView(StaffPermissionRequiredMixin, View):
    """POST {tiers: [ids], segment: id, kind, holdout_percent} -> the live audience size."""

    permission_required = VIEW
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        body = _json_body(request)
        try:
            tier_ids = [int(t) for t in (body.get("tiers") or []) if str(t).strip()]
            segment_id = int(body["segment"]) if str(body.get("segment") or "").strip() else None
            holdout = float(body.get("holdout_percent") or 0)
        except (TypeError, ValueError):
            return JsonResponse({"code": "invalid", "message": _("Give tier ids, a segment id and a holdout share.")},
                                status=400)
        segment = Segment.objects.filter(pk=segment_id).first() if segment_id else None
        if segment_id and segment is None:
            return JsonResponse({"code": "invalid", "message": _("No such segment.")}, status=400)
        draft = _DraftAudience(tiers=Tier.objects.filter(pk__in=tier_ids), segment=segment, segment_id=segment_id,
                               kind=body.get("kind") or CampaignKind.EMAIL, holdout_percent=min(max(holdout, 0), 90))
        try:
            estimate = audience_estimate(draft)
        except ApplicationError as exc:  # e.g. a segment whose rule no longer compiles
            return JsonResponse({"code": exc.code, "message": exc.message}, status=400)
        labels = dict(SkipReason.choices)
        estimate["excluded_labels"] = {k: str(labels.get(k, k)) for k in estimate["excluded"]}
        return JsonResponse(estimate)


class CampaignPreviewView(StaffPermissionRequiredMixin, View):
    """POST the editor's subject/HTML/text (unsaved) and a customer id -> the rendered message,
    or the template errors with their line."""

    permission_required = VIEW
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        campaign = get_object_or_404(Campaign, pk=kwargs["pk"])
        body = _json_body(request)
        form = PreviewForm(body)
        if not form.is_valid():
            return JsonResponse({"code": "invalid", "message": _("Choose a customer (by id)."),
                                 "errors": form.errors}, status=400)
        customer = Customer.objects.filter(pk=form.cleaned_data["customer"], erased_at__isnull=True).first()
        if customer is None:
            return JsonResponse({"code": "not_found", "message": _("No such customer.")}, status=404)
        variant = None
        if form.cleaned_data.get("variant"):
            variant = Variant.objects.filter(campaign=campaign, pk=form.cleaned_data["variant"]).first()
        # The editor's unsaved content, on an in-memory copy (nothing is saved).
        for name in ("subject", "html_body", "text_body"):
            if isinstance(body.get(name), str):
                setattr(campaign, name, body[name])
        errors: dict[str, list[str]] = {}
        for name in ("subject", "html_body", "text_body"):
            try:
                rendering.template_check(getattr(campaign, name), field=name, html=name == "html_body")
            except ValidationError as exc:
                for field, msgs in exc.message_dict.items():
                    errors.setdefault(field, []).extend(msgs)
        if errors:
            return JsonResponse({"code": "template_error", "message": _("The template has errors."),
                                 "errors": errors}, status=400)
        try:
            out = campaign_preview(campaign=campaign, customer=customer, variant=variant)
        except Exception as exc:  # noqa: BLE001  a template that compiles can still fail to render
            logger.info("campaign_preview_failed campaign=%s: %s", campaign.pk, exc)
            return JsonResponse({"code": "render_error", "message": str(exc), "errors": {}}, status=400)
        return JsonResponse({"subject": out["subject"], "text": out["text"], "html": out["html"],
                             "customer": {"id": customer.pk, "name": customer.name or customer.external_id}})


class CampaignTestSendView(StaffPermissionRequiredMixin, View):
    """Send the saved content, rendered for a customer, to the staff user's own address."""

    permission_required = (VIEW, CHANGE)
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        campaign = get_object_or_404(Campaign, pk=kwargs["pk"])
        url = reverse("campaigns:detail", args=[campaign.pk])
        customer = None
        if (request.POST.get("customer") or "").isdigit():
            customer = Customer.objects.filter(pk=request.POST["customer"], erased_at__isnull=True).first()
        customer = customer or _default_sample(campaign)
        if customer is None:
            messages.error(request, _("There is no customer to render the test message for."))
            return HttpResponseRedirect(url)
        if not request.user.email:
            messages.error(request, _("Your user has no e-mail address: add one to receive test messages."))
            return HttpResponseRedirect(url)
        try:
            campaign_test_send(campaign=campaign, to=request.user.email, customer=customer)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        except Exception as exc:  # noqa: BLE001  an SMTP refusal or a render failure: say so, do not 500
            logger.exception("campaign_test_send_failed campaign=%s", campaign.pk)
            messages.error(request, _("The test message could not be sent: %(error)s") % {"error": exc})
        else:
            messages.success(request, _("Test message sent to %(to)s.") % {"to": request.user.email})
        return HttpResponseRedirect(url)


ACTIONS = {"schedule": campaign_schedule, "start": campaign_start, "pause": campaign_pause,
           "resume": campaign_resume, "cancel": campaign_cancel}


class CampaignActionView(StaffPermissionRequiredMixin, View):
    """The lifecycle buttons: schedule, start, pause, resume, cancel."""

    permission_required = (VIEW, CHANGE)
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        action = kwargs["action"]
        if action not in ACTIONS:
            raise Http404
        campaign = get_object_or_404(Campaign, pk=kwargs["pk"])
        try:
            if action == "schedule":
                campaign = campaign_schedule(campaign=campaign, by=request.user)
            else:
                campaign = ACTIONS[action](campaign=campaign)
        except ApplicationError as exc:
            fields = (exc.extra or {}).get("fields") or {}
            detail = " ".join(f"{m}" for msgs in fields.values() for m in msgs)
            messages.error(request, f"{exc.message} {detail}".strip())
            return redirect("campaigns:detail", campaign.pk)
        campaign.refresh_from_db()
        done = {"schedule": _("Campaign scheduled."), "start": _("Sending started."), "pause": _("Campaign paused."),
                "resume": _("Sending resumed."), "cancel": _("Campaign cancelled.")}[action]
        messages.success(request, done)
        logger.info("campaign_action action=%s campaign=%s by=%s", action, campaign.pk, request.user.pk)
        if action in ("start", "resume"):
            return redirect("campaigns:results", campaign.pk)
        return redirect("campaigns:detail", campaign.pk)


# --- results ----------------------------------------------------------------------------------------
def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


def _results_payload(campaign: Campaign) -> dict:
    results = campaign_results(campaign=campaign)
    results["status_label"] = campaign.get_status_display()
    results["live"] = campaign.status in LIVE
    return results


class CampaignResultsView(StaffPermissionRequiredMixin, TemplateView):
    permission_required = VIEW
    template_name = "campaigns/campaign_results.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        campaign = get_object_or_404(Campaign.objects.select_related("segment"), pk=kwargs["pk"])
        results = _results_payload(campaign)
        labels = dict(SkipReason.choices)
        for block in [results["overall"], *results["variants"], *results["tiers"]]:
            block["skipped_rows"] = [(str(labels.get(k, k)), n) for k, n in block["skipped_by_reason"].items()]
        chart_labels = {"treated": _("Treated"), "holdout": _("Holdout"), "uplift": _("Uplift"),
                        "overall": _("Overall"), "sent": _("Sent"), "failed": _("Failed"), "skipped": _("Skipped"),
                        "queued": _("Waiting"), "cancelled": _("Cancelled")}
        context.update(campaign=campaign, results=results, chart_data=_jsonable(results), chart_labels=chart_labels,
                       can_send=self.request.user.has_perm(CHANGE), status=CampaignStatus)
        return context


class CampaignResultsDataView(StaffPermissionRequiredMixin, View):
    permission_required = VIEW

    def get(self, request, *args, **kwargs):
        campaign = get_object_or_404(Campaign, pk=kwargs["pk"])
        return JsonResponse(_jsonable(_results_payload(campaign)))


class StrategyFiguresView(StaffPermissionRequiredMixin, TemplateView):
    permission_required = VIEW
    template_name = "campaigns/strategies.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        strategies = _strategies()
        context.update(strategies=strategies, chart_data=_jsonable(strategies))
        return context


# --- outbox -----------------------------------------------------------------------------------------
class OutboxListView(StaffPermissionRequiredMixin, TemplateView):
    permission_required = VIEW
    template_name = "campaigns/outbox_list.html"

    def get_context_data(self, **kwargs):
        from django.conf import settings

        context = super().get_context_data(**kwargs)
        entries = outbox_list(limit=OUTBOX_LIMIT)
        page = Paginator(entries, OUTBOX_PER_PAGE).get_page(self.request.GET.get("page"))
        context.update(page_obj=page, embedded=not settings.EMAIL_URL, limit=OUTBOX_LIMIT)
        return context


class OutboxMessageView(StaffPermissionRequiredMixin, TemplateView):
    permission_required = VIEW
    template_name = "campaigns/outbox_message.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        try:
            message = outbox_message(entry_id=kwargs["entry_id"])
        except NotFound:
            raise Http404 from None
        context.update(message=message, subject=message["headers"].get("Subject", ""))
        return context


# --- customer page ----------------------------------------------------------------------------------
class GoodwillCouponCreateView(StaffPermissionRequiredMixin, View):
    """From the customer page: issue a goodwill coupon (campaigns.issue_goodwill_coupon)."""

    permission_required = ("accounts.view_customer", GOODWILL)
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        customer = get_object_or_404(Customer, pk=kwargs["pk"])
        back = HttpResponseRedirect(reverse("accounts:customer-detail", args=[customer.pk]) + "#coupons")
        form = GoodwillCouponForm(request.POST)
        if not form.is_valid():
            for field, errors in form.errors.items():
                label = form.fields[field].label if field in form.fields else ""
                for error in errors:
                    messages.error(request, f"{label}: {error}" if label else error)
            return back
        data = form.cleaned_data
        try:
            coupon = coupon_issue_goodwill(customer=customer, by=request.user, discount=data["discount"],
                                           value=data["value"], valid_days=data["valid_days"],
                                           min_basket=data.get("min_basket") or Decimal("0"), reason=data["reason"],
                                           now=timezone.now())
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return back
        messages.success(request, _("Goodwill coupon %(code)s issued.") % {"code": coupon.code})
        return back
