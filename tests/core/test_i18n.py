"""Languages: every string marked for translation has a Simplified Chinese translation.

The rule under test: `makemessages` run over the project's templates and Python code (the way a
translator would) extracts no msgid that is missing, empty or fuzzy in
locale/zh_Hans/LC_MESSAGES/django.po. When this test fails, run

    python manage.py makemessages -l zh_Hans --ignore=tests --ignore=bench --ignore=var --ignore=docs --ignore=static
    # translate the new or fuzzy entries in locale/zh_Hans/LC_MESSAGES/django.po, then
    python manage.py compile_translations
"""
from __future__ import annotations

import shutil
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from django.utils import translation

PO_PATH = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
IGNORE = ["tests", "bench", "var", "docs", "static", "node_modules", "*.min.js"]


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> polib.POFile:
    """A fresh catalogue extracted from the code by makemessages (GNU gettext), in a temp dir."""
    if not shutil.which("xgettext") or not shutil.which("msguniq"):
        pytest.skip("GNU gettext (xgettext) is not installed: apt-get install -y gettext")
    # makemessages writes each file's strings to the locale dir it sits beside (the real one for
    # the project) and templatizes templates into temporary files next to them, so it runs on a
    # copy of the sources (also safe with parallel test processes).
    root = tmp_path_factory.mktemp("sources")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.mo", "*.png", "*.sqlite3")
    for child in Path(settings.BASE_DIR).iterdir():
        if child.is_dir() and not child.name.startswith(".") and child.name not in {"locale", *IGNORE}:
            shutil.copytree(child, root / child.name, ignore=skip)
    out = root / "locale"
    out.mkdir()
    import os

    cwd = os.getcwd()
    os.chdir(root)  # makemessages walks the current directory
    try:
        with override_settings(LOCALE_PATHS=[str(out)]):
            call_command("makemessages", locale=["zh_Hans"], ignore_patterns=IGNORE, verbosity=0,
                         no_obsolete=True, no_location=True)
    finally:
        os.chdir(cwd)
    return polib.pofile(str(out / "zh_Hans" / "LC_MESSAGES" / "django.po"))


def test_makemessages_finds_the_project_strings(extracted):
    ids = {e.msgid for e in extracted}
    assert "Customers" in ids and "Tier migration in the last 30 days" in ids
    assert len(ids) > 300


def test_every_marked_string_is_translated_to_simplified_chinese(extracted):
    catalogue = {(e.msgctxt, e.msgid): e for e in polib.pofile(str(PO_PATH))}
    problems = []
    for entry in extracted:
        if entry.obsolete or not entry.msgid:
            continue
        ours = catalogue.get((entry.msgctxt, entry.msgid))
        if ours is None:
            problems.append(f"missing: {entry.msgid!r}")
        elif ours.fuzzy:
            problems.append(f"fuzzy: {entry.msgid!r}")
        elif entry.msgid_plural and not all(v.strip() for v in ours.msgstr_plural.values()):
            problems.append(f"untranslated plural: {entry.msgid!r}")
        elif not entry.msgid_plural and not ours.msgstr.strip():
            problems.append(f"untranslated: {entry.msgid!r}")
    assert not problems, f"{len(problems)} strings need a zh_Hans translation (see this module's docstring):\n" + \
        "\n".join(sorted(problems)[:200])


def test_translations_keep_their_placeholders():
    """A translation that drops or renames %(name)s / {{ name }} would crash or mislead at runtime."""
    import re

    pattern = re.compile(r"%\(\w+\)[sdf]|%[sd]|\{\{\s*\w+\s*\}\}|\{\w*\}")
    bad = []
    for entry in polib.pofile(str(PO_PATH)):
        if entry.obsolete or entry.fuzzy:
            continue
        if entry.msgid_plural:
            pairs = [(entry.msgid_plural, s) for s in entry.msgstr_plural.values() if s]
        else:
            pairs = [(entry.msgid, entry.msgstr)] if entry.msgstr else []
        for src, dst in pairs:
            if sorted(set(pattern.findall(src))) != sorted(set(pattern.findall(dst))):
                bad.append(f"{src!r} -> {dst!r}")
    assert not bad, "placeholders differ:\n" + "\n".join(bad)


def test_pages_render_in_chinese(client, django_user_model):
    """The compiled catalogue is used: the overview in zh-hans shows Chinese labels."""
    from django.contrib.auth.models import Group

    call_command("compile_translations", verbosity=0)
    user = django_user_model.objects.create_user("ops", is_staff=True)
    user.groups.add(Group.objects.get(name="Operations"))
    client.force_login(user)
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    html = response.content.decode()
    with translation.override("zh-hans"):
        assert translation.gettext("Customers") != "Customers"
        assert translation.gettext("Customers") in html
        assert translation.gettext("Key performance indicators") in html
    assert 'lang="zh-hans"' in html
