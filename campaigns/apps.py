from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self) -> None:
        from celery.signals import worker_ready
        from django.db.backends.signals import connection_created

        from segmentation.signals import tiers_changed

        from . import privacy  # noqa: F401  (registers export sections and erase steps)
        from .audience import sqlite_register_functions
        from .services import on_tiers_changed
        from .staff_customer_page import register as register_customer_sections

        connection_created.connect(sqlite_register_functions, dispatch_uid="campaigns_sqlite_functions")
        tiers_changed.connect(on_tiers_changed, dispatch_uid="campaigns_tier_entry")
        worker_ready.connect(_on_worker_ready, dispatch_uid="campaigns_worker_ready", weak=False)
        register_customer_sections()  # coupons, messages and the goodwill coupon form on the customer page


def _on_worker_ready(sender=None, **kwargs) -> None:
    """A worker (re)starts: take back claims of dead workers and resume stalled campaigns."""
    from .tasks import campaigns_sweep

    try:
        campaigns_sweep.delay(force=True)
    except Exception:  # a broker hiccup must not stop the worker from starting
        import logging

        logging.getLogger(__name__).exception("campaigns_sweep_enqueue_failed")
