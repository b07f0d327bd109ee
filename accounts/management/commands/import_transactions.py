"""python manage.py import_transactions FILE --format cdnow|movielens|csv

A thin shell over accounts.services.imports.transactions_import: a progress bar on stderr,
the bad rows and a summary on stdout, and a CommandError for a file that cannot be imported.
"""
from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from accounts.services.imports import FILE_FORMATS, ImportFileError, transactions_import

SHOW_BAD_ROWS = 20


class Command(BaseCommand):
    help = (
        "Import purchase/behaviour history: the CDNOW master log (--format cdnow), MovieLens 100k "
        "(--format movielens; FILE is u.data, u.user and u.item are read from the same folder) or a "
        "Stratum CSV (--format csv; see docs/import-csv.md). Re-importing a file adds nothing; bad "
        "rows are reported and skipped; the import is all-or-nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the file to import (for MovieLens: u.data or its folder)")
        parser.add_argument("--format", required=True, choices=[str(f) for f in FILE_FORMATS])
        parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")

    def handle(self, *args, file: str, no_progress: bool, **options) -> None:
        fmt = options["format"]
        show = not no_progress and sys.stderr.isatty()
        bar: tqdm | None = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:  # created on the first report, when the number of lines is known
                bar = tqdm(total=total, unit=" lines", unit_scale=True, file=sys.stderr, desc=f"Importing {fmt}",
                           disable=not show, dynamic_ncols=True)
            bar.update(done - bar.n)

        started = time.monotonic()
        try:
            record = transactions_import(path=file, format=fmt, progress=progress)
        except ImportFileError as exc:
            raise CommandError(exc.message) from None
        except KeyboardInterrupt:
            raise CommandError("Interrupted: the import was rolled back, nothing was stored.") from None
        finally:
            if bar is not None:
                bar.close()
        seconds = time.monotonic() - started

        if record.rows_bad:
            self.stdout.write(self.style.WARNING(f"{record.rows_bad:,} bad row(s) skipped:"))
            for err in record.errors[:SHOW_BAD_ROWS]:
                where = f"{err['file']} line {err['line']}" if err.get("file") else f"line {err['line']}"
                self.stdout.write(f"  {where}: {err['error']}")
            if record.rows_bad > SHOW_BAD_ROWS:
                self.stdout.write(f"  ... and {record.rows_bad - SHOW_BAD_ROWS:,} more (see data import #{record.pk})")

        data_range = (f"{record.data_start:%Y-%m-%d %H:%M} .. {record.data_end:%Y-%m-%d %H:%M} UTC"
                      if record.data_start else "no data")
        self.stdout.write(self.style.SUCCESS(f"Imported {record.source} as {fmt} (data import #{record.pk})"))
        for label, value in (
            ("rows read", f"{record.rows_total:,}"),
            ("bad rows", f"{record.rows_bad:,}"),
            ("customers created", f"{record.customers_created:,}"),
            ("items created", f"{record.items_created:,}"),
            ("events created", f"{record.events_created:,}"),
            ("duplicates", f"{record.events_duplicate:,}"),
            ("data range", data_range),
            ("seconds", f"{seconds:.1f}"),
        ):
            self.stdout.write(f"  {label:<18} {value}")
