from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "crm.core"
    label = "core"
    verbose_name = "Stratum core"

    def ready(self) -> None:
        # The dashboard's figures link to the customers behind them: ?changed= and ?kpi=.
        from .dashboard import register_filters

        register_filters()
