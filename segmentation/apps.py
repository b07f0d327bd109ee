from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SegmentationConfig(AppConfig):
    name = "segmentation"
    verbose_name = _("Segmentation")

    def ready(self) -> None:
        from . import privacy  # noqa: F401  (registers the export sections)
        from .customer_page import register

        register()  # tier sections of the staff customer page, ?tier= and ?segment= on the customer list
