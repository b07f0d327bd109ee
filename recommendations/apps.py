from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = _("Recommendations")

    def ready(self) -> None:
        from accounts.services.bulk import events_stored

        from .customer_page import register
        from segmentation.signals import tiers_changed

        from .serving import on_events_stored, on_tiers_changed

        # A customer's new events or tiers drop their cached recommendations (after commit).
        events_stored.connect(on_events_stored, dispatch_uid="recommendations.invalidate_customer_cache")
        tiers_changed.connect(on_tiers_changed, dispatch_uid="recommendations.invalidate_on_tier_change")
        register()  # the customer page's "Recommendations" section
