"""python manage.py train_models [--kind churn|value|cluster|all] [--as-of ISO] [--activate [--recompute]]

Trains in this process (the same service the Celery task calls) and prints each model's
metrics. --activate makes the new models the active ones; --recompute then runs a full
recompute so that their scores are written to every customer's features.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from crm.core.errors import ApplicationError
from segmentation.choices import RunMode, RunStatus
from segmentation.ml.report import model_report
from segmentation.ml.services import CHURN_HORIZON_DAYS, KINDS, models_train


def _as_of(value: str | None) -> datetime | None:
    """An ISO date-time, or a date meaning the end of that day (its events included)."""
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None and (d := parse_date(value)) is not None:
        parsed = datetime(d.year, d.month, d.day) + timedelta(days=1) - timedelta(microseconds=1)
    if parsed is None:
        raise CommandError(f"--as-of '{value}' is not an ISO 8601 date or date-time")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


class Command(BaseCommand):
    help = "Train the clustering, churn and customer-value models and print their metrics."

    def add_arguments(self, parser):
        parser.add_argument("--kind", choices=["all", *[str(k) for k in KINDS]], default="all")
        parser.add_argument("--as-of", help="ISO 8601 date or instant (default: now, or the end of imported history)")
        parser.add_argument("--churn-horizon", type=int, default=CHURN_HORIZON_DAYS,
                            help=f"churn label window in days (default {CHURN_HORIZON_DAYS})")
        parser.add_argument("--bgnbd", action="store_true",
                            help="also evaluate BG/NBD + Gamma-Gamma against the value model (slower)")
        parser.add_argument("--activate", action="store_true", help="make the new models the active ones")
        parser.add_argument("--recompute", action="store_true", help="with --activate: run a full recompute afterwards")

    def handle(self, *args, **opts):
        if opts["recompute"] and not opts["activate"]:
            raise CommandError("--recompute needs --activate (only active models are scored).")
        kinds = list(KINDS) if opts["kind"] == "all" else [opts["kind"]]
        as_of = _as_of(opts["as_of"])
        try:
            models = models_train(kinds=kinds, as_of=as_of, activate=opts["activate"],
                                  churn_horizon_days=opts["churn_horizon"], bgnbd=opts["bgnbd"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        for model in models:
            self.stdout.write(model_report(model))
            self.stdout.write("")
        if opts["recompute"]:
            from segmentation.services import recompute_run_create, recompute_tiers

            run = recompute_tiers(run=recompute_run_create(as_of=as_of, mode=RunMode.FULL))
            if run.status != RunStatus.SUCCEEDED:
                raise CommandError(f"Recompute #{run.pk} {run.status}: {run.error}")
            self.stdout.write(f"Recompute #{run.pk} as of {run.as_of:%Y-%m-%d %H:%M}: {run.customers:,} customers, "
                              f"{run.changes:,} tier changes.")
