"""Build the demo store: python manage.py generate_demo_store --customers 3000 --seed 42."""
from __future__ import annotations

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_date, parse_datetime

from accounts.demo import ARCHETYPES, demo_store_generate
from accounts.demo.progress import ProgressBars


def parse_as_of(value: str) -> datetime:
    """An ISO date (midnight UTC) or an ISO date-time (UTC when no offset is given)."""
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            moment = datetime(day.year, day.month, day.day) if day else None
    except ValueError:
        moment = None
    if moment is None:
        raise CommandError(f"--as-of {value!r} is not an ISO date (2026-01-31) or date-time (2026-01-31T18:00:00Z).")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def summary_lines(result) -> list[str]:
    labels = {a.key: a.label for a in ARCHETYPES}
    lines = [
        f"Demo store (seed {result.seed}): {result.customers} customers, data {result.data_start:%Y-%m-%d} .. "
        f"{result.as_of:%Y-%m-%d %H:%M} UTC (data import #{result.import_id}).",
        f"Created: {result.items_created} items, {result.customers_created} customers, {result.events_created} events "
        f"({result.events_duplicate} already stored), {result.feedback_created} feedback.",
        f"Time: {result.seconds_generate:.1f} s simulating, {result.seconds_store:.1f} s storing.",
        "Customers by archetype: " + ", ".join(f"{labels[k]} {n}" for k, n in result.archetypes.items()),
        "Events by type: " + ", ".join(f"{k} {n}" for k, n in result.event_types.items()),
    ]
    return lines


class Command(BaseCommand):
    help = ("Generate a seeded, reproducible demo shop: catalog, customers of seven archetypes and two years of "
            "sessions, views, carts, purchases, refunds, ratings and feedback. Re-running with the same "
            "arguments adds nothing. See docs/demo-store.md.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customers", type=int, default=3000, help="number of customers (default 3000)")
        parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
        parser.add_argument("--as-of", dest="as_of", default=None,
                            help="the shop's 'today', ISO date or date-time (default: now, or the as-of of an "
                                 "earlier run with the same seed, size and years)")
        parser.add_argument("--years", type=float, default=2.0, help="years of history up to as-of (1..5, default 2)")

    def handle(self, *args, customers: int, seed: int, as_of: str | None, years: float, **options):
        if customers < 1:
            raise CommandError("--customers must be at least 1.")
        if not 1 <= years <= 5:
            raise CommandError("--years must be between 1 and 5.")
        bars = ProgressBars(enabled=options.get("verbosity", 1) >= 1)
        try:
            result = demo_store_generate(customers=customers, seed=seed, years=years,
                                         as_of=parse_as_of(as_of) if as_of else None, progress=bars)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bars.close()
        for line in summary_lines(result):
            self.stdout.write(line)
