from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = _("Recommendations")

    def ready(self) -> None:
        from accounts.services.bulk import events_stored

        from .customer_page import register
        from .serving import on_events_stored

        # A customer's new events drop their cached recommendations (after the batch commits).
        events_stored.connect(on_events_stored, dispatch_uid="recommendations.invalidate_customer_cache")
        register()  # the customer page's "Recommendations" section
