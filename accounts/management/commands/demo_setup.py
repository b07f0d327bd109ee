"""`make demo`: python manage.py demo_setup --customers 3000 (needs STRATUM_DEMO=1)."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.demo.progress import ProgressBars
from accounts.demo.setup import DEMO_PASSWORD, DemoModeOff, demo_setup

from .generate_demo_store import summary_lines

URL = "http://127.0.0.1:8000/"


class Command(BaseCommand):
    help = ("Demo mode only (STRATUM_DEMO=1): generate the demo store if the database has no customers, create "
            "the demo staff users ops / support / analyst and the superuser admin (password 'demo'), and print a "
            "fresh demo API key (the previous one is revoked).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customers", type=int, default=3000, help="customers in the demo store (default 3000)")
        parser.add_argument("--seed", type=int, default=42, help="random seed of the demo store (default 42)")
        parser.add_argument("--url", default=URL, help=f"where the demo will be served (default {URL})")

    def handle(self, *args, customers: int, seed: int, url: str = URL, **options):
        bars = ProgressBars(enabled=options.get("verbosity", 1) >= 1)
        try:
            setup = demo_setup(customers=customers, seed=seed, progress=bars)
        except DemoModeOff as exc:
            raise CommandError(exc.message) from exc
        finally:
            bars.close()
        out = self.stdout.write
        if setup.generated:
            for line in summary_lines(setup.generated):
                out(line)
        else:
            out("The database already has customers: the demo store was not generated again.")
        from crm.core.demo import demo_extras

        demo_extras(report=out)
        out("")
        out(self.style.SUCCESS(f"Stratum demo: {url}"))
        out(f"Log in (password '{DEMO_PASSWORD}' for all):")
        for username, role in setup.users:
            out(f"  {username:<8} {role}")
        out(f"Django admin: {url}admin/")
        out(f"API docs:     {url}api/docs/")
        if setup.revoked_keys:
            out(f"The previous demo API key was revoked ({setup.revoked_keys}).")
        out("Sample call:")
        out(f"  curl -s -H 'Authorization: Api-Key {setup.api_key}' -H 'Content-Type: application/json' \\")
        out(f"       -d '{{\"events\": [{{\"event_id\": \"try-1\", \"customer\": \"demo-{seed}-00001\", "
            f"\"type\": \"view\", \"occurred_at\": \"2026-01-01T12:00:00Z\"}}]}}' {url}api/v1/events/")
        out("Demo API key (all scopes; shown once):")
        out(setup.api_key)
