from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Customers and behaviour")

    def ready(self) -> None:
        from .roles import sync_roles_after_migrate

        # Keep the staff role groups' permissions in step with the models of every app,
        # including models that later migrations add.
        post_migrate.connect(sync_roles_after_migrate, dispatch_uid="accounts.sync_roles")
