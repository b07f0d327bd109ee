"""python manage.py recompute_tiers [--as-of ISO] [--full | --incremental]

Runs the recompute in this process (the same service the Celery task calls), with a
progress bar on stderr and a summary on stdout. Exits non-zero with the error when the run
fails; a run skipped because another recompute holds the lock says so and exits 0.
"""
from __future__ import annotations

import sys
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime
from django.utils import timezone

from segmentation.choices import RunMode, RunStatus
from segmentation.services import recompute_run_create, recompute_tiers


def _as_of(value: str | None):
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None and (d := parse_date(value)) is not None:
        parsed = datetime(d.year, d.month, d.day)
    if parsed is None:
        raise CommandError(f"--as-of '{value}' is not an ISO 8601 date or date-time")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


class Command(BaseCommand):
    help = ("Recompute customer features and tiers of every active dimension. Incremental by default "
            "(customers with new events and time-driven transitions; full when there is no earlier run).")

    def add_arguments(self, parser):
        parser.add_argument("--as-of", help="ISO 8601 instant to compute as of (default: now, or the end of "
                                            "imported history when the data ends in the past)")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--full", dest="mode", action="store_const", const=RunMode.FULL, help="every customer")
        mode.add_argument("--incremental", dest="mode", action="store_const", const=RunMode.INCREMENTAL,
                          help="only affected customers (the default)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **opts):
        mode = opts["mode"] or RunMode.INCREMENTAL
        run = recompute_run_create(as_of=_as_of(opts["as_of"]), mode=mode)
        self.stdout.write(f"Recompute #{run.pk} ({mode}) as of {run.as_of.isoformat()}")
        bar = None
        if not opts["no_progress"]:
            from tqdm import tqdm

            bar = tqdm(total=100, file=getattr(self.stderr, "_out", sys.stderr), unit="%", bar_format="{desc:<22} {bar} {n_fmt}% [{elapsed}]")

        def progress(stage: str, percent: int) -> None:
            if bar is not None:
                bar.set_description_str(stage)
                bar.update(max(0, percent - bar.n))

        try:
            run = recompute_tiers(run=run, progress=progress)
        except Exception as exc:
            if bar is not None:
                bar.close()
            raise CommandError(f"Recompute #{run.pk} failed: {type(exc).__name__}: {exc}") from exc
        if bar is not None:
            if run.status == RunStatus.SUCCEEDED:
                bar.set_description_str("done")
                bar.update(100 - bar.n)
            bar.close()

        if run.status == RunStatus.SKIPPED:
            self.stdout.write(self.style.WARNING(
                f"Skipped: another recompute is running (run #{run.pk} did nothing)."))
            return
        self._summary(run)

    def _summary(self, run) -> None:
        timings = dict(run.timings)
        by_dim = timings.pop("changes_by_dimension", {})
        total = (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else 0.0
        self.stdout.write(self.style.SUCCESS(
            f"Recompute #{run.pk} {run.mode}: {run.customers:,} customers, {run.changes:,} tier changes in {total:.2f} s"))
        for slug, n in by_dim.items():
            self.stdout.write(f"  {slug:<20} {n:>10,} changes")
        self.stdout.write("Timings (s):")
        for stage, seconds in timings.items():
            self.stdout.write(f"  {stage:<20} {seconds:>10.3f}")
