"""Customer-service search by name on PostgreSQL: a trigram GIN index on UPPER(name).

Django's icontains/istartswith compile to UPPER(name) LIKE UPPER(%s) on PostgreSQL; with
pg_trgm this index answers them without scanning a million customers. The extension needs
a role allowed to create it; where it cannot be created the index is skipped (search still
works, by scanning) and the migration says so.
"""
from django.db import migrations

INDEX = "customer_name_trgm"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        if cur.fetchone() is None:
            try:
                cur.execute("SAVEPOINT stratum_trgm")
                cur.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                cur.execute("RELEASE SAVEPOINT stratum_trgm")
            except Exception as exc:  # noqa: BLE001 - any refusal (permissions, package missing) means: no index
                cur.execute("ROLLBACK TO SAVEPOINT stratum_trgm")
                print(f"\n  pg_trgm is not available ({exc}); customer name search will scan instead of using an index.")
                return
        cur.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON accounts_customer USING gin (UPPER(name) gin_trgm_ops)")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_lean_ingest_indexes")]
    operations = [migrations.RunPython(create, drop)]
