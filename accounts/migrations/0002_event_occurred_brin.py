"""A BRIN index on events.occurred_at, PostgreSQL only.

Events arrive roughly in time order, so a BRIN index (a few pages for 10^8 rows) lets
window scans ("events in the last 90 days") skip most of the table at almost no cost to
ingest. SQLite has no BRIN; the demo-sized table there does without.
"""
from django.db import migrations

INDEX = "event_occurred_brin"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON accounts_event USING brin (occurred_at) WITH (pages_per_range = 32)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
