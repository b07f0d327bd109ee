from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = _("Recommendations")

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from accounts.services.bulk import events_stored
        from segmentation.signals import tiers_changed

        from .customer_page import register
        from .serving import forget_prepared, on_events_stored, on_tiers_changed

        # A customer's new events or tiers drop their cached recommendations (after commit).
        events_stored.connect(on_events_stored, dispatch_uid="recommendations.invalidate_customer_cache")
        tiers_changed.connect(on_tiers_changed, dispatch_uid="recommendations.invalidate_on_tier_change")
        # The serving query is prepared once per database session (serving._customer_rows).
        connection_created.connect(forget_prepared, dispatch_uid="recommendations.forget_prepared")
        register()  # the customer page's "Recommendations" section
        from accounts.services.privacy import erase_step

        from .serving import on_customer_erased

        # An erased customer's lists go (a ready list would otherwise be served for two days).
        erase_step("recommendations")(on_customer_erased)
