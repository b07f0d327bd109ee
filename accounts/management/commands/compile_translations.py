"""Compile the gettext catalogues (.po -> .mo) in pure Python, with polib.

`manage.py compilemessages` needs GNU gettext's msgfmt, which a fresh machine may not have;
this command needs only the polib package. Fuzzy and untranslated entries are left out, as
msgfmt does. Each .mo is written to a temporary file and renamed into place, so parallel runs
(pytest-xdist) never see half a file.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import polib
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # a build step: it must not depend on the models being valid
    help = "Compile the .po translation files under LOCALE_PATHS into .mo files (no GNU gettext needed)."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true",
                            help="Fail when a catalogue has untranslated or fuzzy entries.")

    def handle(self, *args, check: bool = False, **options):
        po_files = sorted(p for root in settings.LOCALE_PATHS for p in Path(root).glob("*/LC_MESSAGES/*.po"))
        if not po_files:
            raise CommandError(f"No .po files under {', '.join(map(str, settings.LOCALE_PATHS))}.")
        problems = []
        for po_path in po_files:
            try:
                catalogue = polib.pofile(str(po_path))
            except (OSError, ValueError) as exc:
                raise CommandError(f"{po_path}: {exc}") from exc
            untranslated = [e.msgid for e in catalogue.untranslated_entries()]
            fuzzy = [e.msgid for e in catalogue.fuzzy_entries()]
            if check and (untranslated or fuzzy):
                problems.append(f"{po_path}: {len(untranslated)} untranslated, {len(fuzzy)} fuzzy "
                                f"(first: {(untranslated + fuzzy)[0]!r})")
            mo_path = po_path.with_suffix(".mo")
            fd, tmp = tempfile.mkstemp(dir=po_path.parent, suffix=".mo.tmp")
            os.close(fd)
            try:
                catalogue.save_as_mofile(tmp)
                os.chmod(tmp, 0o644)
                os.replace(tmp, mo_path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            self.stdout.write(f"{mo_path}: {catalogue.percent_translated()}% translated")
        if problems:
            raise CommandError("Incomplete translations:\n" + "\n".join(problems))
