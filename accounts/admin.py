"""Django admin for customers, events, feedback, API keys and data imports.

The events table may hold 10^8 rows on PostgreSQL, so its changelist never counts it exactly
(an estimate from the planner's statistics instead), orders by primary key (an index walk),
and offers only filters whose choices need no query.
"""
from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from crm.core.errors import ApplicationError
from crm.core.pagination import EstimatedCountPaginator

from .forms import ApiKeyAdminForm
from .models import ApiKey, Customer, DataImport, Event, Feedback
from .selectors import mask_email, mask_name, mask_phone
from .sentiment import analyze

PII_PERMISSION = "accounts.view_customer_pii"
PII_FIELDS = ("name", "email", "phone")


class ErasedFilter(admin.SimpleListFilter):
    title = _("erased")
    parameter_name = "erased"

    def lookups(self, request, model_admin):
        return [("yes", _("Erased")), ("no", _("Not erased"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(erased_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(erased_at__isnull=True)
        return queryset


class RevokedFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "revoked"

    def lookups(self, request, model_admin):
        return [("no", _("Active")), ("yes", _("Revoked"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(revoked_at__isnull=True)
        return queryset


def _customer_link(customer_id: int, label: str) -> str:
    return format_html('<a href="{}">{}</a>', reverse("admin:accounts_customer_change", args=[customer_id]), label)


class CustomerRefMixin:
    """On change pages, show the customer by external id, not by str() (a name or an e-mail),
    for staff without accounts.view_customer_pii."""

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is None or request.user.has_perm(PII_PERMISSION):
            return fields
        return [("customer_ref" if f == "customer" else f) for f in fields if f != "customer_ref"]

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and not request.user.has_perm(PII_PERMISSION):
            fields = (*fields, "customer_ref")
        return fields

    def get_exclude(self, request, obj=None):
        if obj is None or request.user.has_perm(PII_PERMISSION):
            return super().get_exclude(request, obj)
        return (*(super().get_exclude(request, obj) or ()), "customer")


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("external_id", "name", "email", "phone", "last_seen_at", "first_seen_at", "marketing_consent", "erased")
    list_display_links = ("external_id",)
    list_filter = (ErasedFilter, "marketing_consent", "source_platform", "consent_source")
    # Exact lookups use the indexes on external_id, email and phone; a name matches by prefix.
    search_fields = ("=external_id", "=email", "=phone", "^name")
    search_help_text = _("Exact e-mail, phone or external id, or the beginning of a name.")
    readonly_fields = ("first_seen_at", "last_seen_at", "erased_at", "created_at", "updated_at", "events_link")
    ordering = ("-id",)
    show_full_result_count = False
    list_per_page = 50
    actions = ("erase_personal_data",)
    fieldsets = (
        (None, {"fields": ("external_id", "name", "email", "phone", "attributes", "source_platform", "signup_at")}),
        (_("Marketing consent"), {"fields": ("marketing_consent", "consent_at", "consent_source", "unsubscribed_at")}),
        (_("Activity"), {"fields": ("first_seen_at", "last_seen_at", "events_link", "erased_at", "created_at", "updated_at")}),
    )

    # --- personal data: masked for staff without accounts.view_customer_pii ------------------
    def _unmasked(self, request) -> bool:
        return request.user.has_perm(PII_PERMISSION)

    def get_list_display(self, request):
        if self._unmasked(request):
            return self.list_display
        return tuple({"name": "masked_name", "email": "masked_email", "phone": "masked_phone"}.get(f, f) for f in self.list_display)

    def get_fieldsets(self, request, obj=None):
        if self._unmasked(request) or obj is None:
            return super().get_fieldsets(request, obj)
        swap = {"name": "masked_name", "email": "masked_email", "phone": "masked_phone"}
        return tuple((title, {**opts, "fields": tuple(swap.get(f, f) for f in opts["fields"])}) for title, opts in self.fieldsets)

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if not self._unmasked(request) and obj is not None:
            fields = (*fields, "masked_name", "masked_email", "masked_phone")
        return fields

    def get_exclude(self, request, obj=None):
        if self._unmasked(request) or obj is None:
            return super().get_exclude(request, obj)
        return PII_FIELDS

    def get_object(self, request, object_id, from_field=None):
        # Page titles, breadcrumbs and the delete/history pages print str(customer), which is
        # the name or e-mail: hand them a masked copy. save_model restores the real values.
        obj = super().get_object(request, object_id, from_field)
        if obj is not None and not self._unmasked(request):
            obj.name, obj.email, obj.phone = mask_name(obj.name), mask_email(obj.email), mask_phone(obj.phone)
            obj._pii_masked = True
        return obj

    def save_model(self, request, obj: Customer, form, change) -> None:
        if getattr(obj, "_pii_masked", False):
            real = Customer.objects.only(*PII_FIELDS).get(pk=obj.pk)
            obj.name, obj.email, obj.phone = real.name, real.email, real.phone
        super().save_model(request, obj, form, change)

    @admin.display(description=_("name"))
    def masked_name(self, obj: Customer) -> str:
        return mask_name(obj.name)

    @admin.display(description=_("e-mail"))
    def masked_email(self, obj: Customer) -> str:
        return mask_email(obj.email)

    @admin.display(description=_("phone"))
    def masked_phone(self, obj: Customer) -> str:
        return mask_phone(obj.phone)

    @admin.display(description=_("erased"), boolean=True, ordering="erased_at")
    def erased(self, obj: Customer) -> bool:
        return obj.erased_at is not None

    @admin.display(description=_("events"))
    def events_link(self, obj: Customer) -> str:
        if obj.pk is None:
            return "—"
        url = reverse("admin:accounts_event_changelist") + f"?customer__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("Show this customer's events"))

    # --- erasure -----------------------------------------------------------------------------
    @admin.action(description=_("Erase personal data"), permissions=["change"])
    def erase_personal_data(self, request, queryset):
        """Asks for confirmation, then calls accounts.services.privacy.customer_erase for each."""
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": _("Erase personal data"),
                "opts": self.model._meta,
                "customers": queryset.only("id", "external_id")[:200],
                "count": queryset.count(),
                "selected_ids": queryset.values_list("pk", flat=True),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "select_across": request.POST.get("select_across", "0"),
                "query_string": request.GET.urlencode(),
            }
            return TemplateResponse(request, "admin/accounts/customer/erase_confirmation.html", context)
        try:
            from accounts.services.privacy import customer_erase  # written by the privacy feature
        except ImportError:
            self.message_user(request, _("Erasure is not available in this installation yet."), messages.ERROR)
            return None
        erased = 0
        for customer in queryset.order_by("pk"):
            try:
                customer_erase(customer=customer, by=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"{customer.external_id}: {exc.message}", messages.ERROR)
            else:
                erased += 1
        if erased:
            self.message_user(
                request,
                ngettext("Erased the personal data of %(count)d customer.", "Erased the personal data of %(count)d customers.", erased)
                % {"count": erased},
                messages.SUCCESS,
            )
        return None


@admin.register(Event)
class EventAdmin(CustomerRefMixin, admin.ModelAdmin):
    """Read-only: the behaviour log is append-only and written by the ingest service."""

    list_display = ("event_id", "type", "customer_ref", "item", "amount", "quantity", "platform", "occurred_at")
    list_filter = ("type", "platform")
    search_fields = ("=event_id", "=customer__external_id")
    search_help_text = _("Exact event id or customer external id.")
    date_hierarchy = "occurred_at"
    list_select_related = ("customer", "item")
    raw_id_fields = ("customer", "item")
    ordering = ("-id",)
    # Sorting a 10^8-row table by an unindexed column would scan it: only event_id (unique index).
    sortable_by = ("event_id",)
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 100

    @admin.display(description=_("customer"))
    def customer_ref(self, obj: Event) -> str:
        return _customer_link(obj.customer_id, obj.customer.external_id)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Feedback)
class FeedbackAdmin(CustomerRefMixin, admin.ModelAdmin):
    list_display = ("occurred_at", "customer_ref", "short_text", "rating", "sentiment_label", "sentiment_score", "language")
    list_filter = ("sentiment_label", "rating", "language")
    search_fields = ("=customer__external_id", "text")
    list_select_related = ("customer",)
    autocomplete_fields = ("customer", "item")
    readonly_fields = ("sentiment_score", "sentiment_label", "language", "created_at", "updated_at")
    date_hierarchy = "occurred_at"
    ordering = ("-occurred_at", "-id")
    show_full_result_count = False

    @admin.display(description=_("customer"), ordering="customer__external_id")
    def customer_ref(self, obj: Feedback) -> str:
        return _customer_link(obj.customer_id, obj.customer.external_id)

    @admin.display(description=_("text"))
    def short_text(self, obj: Feedback) -> str:
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"

    def save_model(self, request, obj: Feedback, form, change) -> None:
        # The score follows the text, as when feedback arrives through the API.
        if not change or "text" in form.changed_data:
            sentiment = analyze(obj.text)
            obj.sentiment_score = sentiment.score if sentiment else None
            obj.sentiment_label = sentiment.label if sentiment else ""
            obj.language = sentiment.language if sentiment else ""
        super().save_model(request, obj, form, change)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are made by api_key_create: the plain key is shown once, in a message, never stored."""

    form = ApiKeyAdminForm
    list_display = ("name", "prefix", "scope_list", "active", "last_used_at", "created_at", "created_by")
    list_filter = (RevokedFilter,)
    search_fields = ("name", "=prefix")
    readonly_fields = ("prefix", "hashed_key", "last_used_at", "revoked_at", "created_by", "created_at", "updated_at")
    list_select_related = ("created_by",)
    actions = ("revoke",)
    ordering = ("-created_at",)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "scopes")
        return ("name", "scopes", "prefix", "hashed_key", "created_by", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    @admin.display(description=_("scopes"))
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes or [])

    @admin.display(description=_("active"), boolean=True, ordering="revoked_at")
    def active(self, obj: ApiKey) -> bool:
        return obj.revoked_at is None

    def save_model(self, request, obj: ApiKey, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        from .services.api_keys import api_key_create

        key, plain = api_key_create(name=obj.name, scopes=list(obj.scopes), created_by=request.user)
        # The admin goes on with `obj` (log entry, redirect): make it the row just created.
        for field in ApiKey._meta.concrete_fields:
            setattr(obj, field.attname, getattr(key, field.attname))
        obj._state.adding, obj._state.db = False, key._state.db
        messages.warning(
            request,
            format_html(
                '{} <code class="api-key-once">{}</code>',
                _("Copy the new API key now; it is shown only this once and cannot be recovered:"),
                plain,
            ),
        )

    @admin.action(description=_("Revoke selected API keys"), permissions=["change"])
    def revoke(self, request, queryset):
        from .services.api_keys import api_key_revoke

        revoked = 0
        for key in queryset.filter(revoked_at__isnull=True).order_by("pk"):
            api_key_revoke(key=key)
            revoked += 1
        self.message_user(
            request,
            ngettext("Revoked %(count)d API key.", "Revoked %(count)d API keys.", revoked) % {"count": revoked},
            messages.SUCCESS,
        )


@admin.register(DataImport)
class DataImportAdmin(admin.ModelAdmin):
    """Read-only: a row is the record of one import_transactions (or demo) run."""

    list_display = ("started_at", "format", "short_source", "status", "rows_total", "rows_bad", "customers_created",
                    "items_created", "events_created", "events_duplicate", "data_start", "data_end", "duration")
    list_filter = ("status", "format")
    search_fields = ("source", "=sha256")
    date_hierarchy = "started_at"
    ordering = ("-started_at",)

    @admin.display(description=_("source"))
    def short_source(self, obj: DataImport) -> str:
        return obj.source if len(obj.source) <= 60 else "…" + obj.source[-59:]

    @admin.display(description=_("duration"))
    def duration(self, obj: DataImport) -> str:
        if not obj.finished_at:
            return "—"
        return f"{(obj.finished_at - obj.started_at).total_seconds():.1f} s"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
