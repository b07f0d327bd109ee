from django.contrib import admin
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import Item


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
