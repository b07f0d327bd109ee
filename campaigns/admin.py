from django.contrib import admin, messages

from crm.core.errors import ApplicationError

from . import services
from .models import Campaign, Coupon, CouponRedemption, Message, Variant


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0
    fields = ("name", "weight", "subject")


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "kind", "status", "trigger", "holdout_percent", "started_at", "finished_at")
    list_filter = ("status", "kind", "trigger")
    search_fields = ("name", "subject")
    filter_horizontal = ("tiers",)
    raw_id_fields = ("periodic_task", "parent", "winner", "created_by")
    readonly_fields = ("status", "started_at", "finished_at", "last_error", "periodic_task", "winner")
    inlines = [VariantInline]
    actions = ["start", "pause", "resume", "cancel"]

    def _run(self, request, queryset, fn, done: str):
        for campaign in queryset:
            try:
                fn(campaign=campaign)
            except ApplicationError as exc:
                self.message_user(request, f"{campaign}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{campaign}: {done}", messages.SUCCESS)

    @admin.action(description="Start sending")
    def start(self, request, queryset):
        self._run(request, queryset, services.campaign_start, "started")

    @admin.action(description="Pause")
    def pause(self, request, queryset):
        self._run(request, queryset, services.campaign_pause, "paused")

    @admin.action(description="Resume")
    def resume(self, request, queryset):
        self._run(request, queryset, services.campaign_resume, "resumed")

    @admin.action(description="Cancel")
    def cancel(self, request, queryset):
        self._run(request, queryset, services.campaign_cancel, "cancelled")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "campaign", "customer", "variant", "tier", "status", "skip_reason", "attempts", "sent_at",
                    "opened_at", "clicked_at", "uncertain")
    list_filter = ("status", "skip_reason", "uncertain")
    search_fields = ("customer__external_id", "campaign__name")
    raw_id_fields = ("campaign", "customer", "variant", "tier")
    list_select_related = ("campaign", "customer", "variant", "tier")


class RedemptionInline(admin.TabularInline):
    model = CouponRedemption
    extra = 0
    readonly_fields = ("order_id", "customer", "amount", "discount_amount", "redeemed_at")
    can_delete = False


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    list_display = ("code", "customer", "campaign", "discount", "value", "min_basket", "expires_at", "uses", "max_uses")
    list_filter = ("discount",)
    search_fields = ("code", "customer__external_id")
    raw_id_fields = ("customer", "campaign", "issued_by")
    list_select_related = ("customer", "campaign")
    inlines = [RedemptionInline]


@admin.register(CouponRedemption)
class CouponRedemptionAdmin(admin.ModelAdmin):
    list_display = ("coupon", "order_id", "customer", "amount", "discount_amount", "redeemed_at")
    search_fields = ("coupon__code", "order_id", "customer__external_id")
    raw_id_fields = ("coupon", "customer")
