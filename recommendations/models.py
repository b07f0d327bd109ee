from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from crm.core.models import BaseModel
from crm.core.money import money_field


class Item(BaseModel):
    """A catalog item, known by the storefront's id.

    Items first seen in an event are created inactive (`active=False`, no title) so that no
    event is lost; a later catalog upsert fills them in and activates them.
    """

    external_id = models.CharField(_("external id"), max_length=128)  # unique: see Meta.constraints
    title = models.CharField(_("title"), max_length=300, blank=True, default="")
    category = models.CharField(_("category"), max_length=100, blank=True, default="", db_index=True)
    brand = models.CharField(_("brand"), max_length=100, blank=True, default="")
    price = money_field(verbose_name=_("price"), null=True, blank=True)
    tags = models.JSONField(_("tags"), default=list, blank=True)
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    url = models.URLField(_("URL"), max_length=500, blank=True, default="")
    active = models.BooleanField(_("active"), default=True)
    in_stock = models.BooleanField(_("in stock"), default=True)

    class Meta:
        verbose_name = _("item")
        verbose_name_plural = _("items")
        constraints = [
            models.UniqueConstraint(fields=["external_id"], name="item_external_id_uniq"),
            models.CheckConstraint(condition=~Q(external_id=""), name="item_external_id_not_empty"),
            models.CheckConstraint(condition=Q(price__isnull=True) | Q(price__gte=0), name="item_price_gte_0"),
        ]

    def __str__(self) -> str:
        return self.title or self.external_id
