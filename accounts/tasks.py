"""Celery tasks of accounts (routed to the `ingest` queue by crm/celery.py). Thin: call a service."""
from __future__ import annotations

from celery import shared_task

from .services.imports import transactions_import


# Idempotent by construction (event ids are derived from the file's content and inserted
# with ON CONFLICT DO NOTHING), so a redelivered task (acks_late) stores nothing twice. Not
# retried: a bad file fails the same way every time, and the DataImport row says why.
@shared_task(acks_late=True, soft_time_limit=20 * 60, time_limit=21 * 60)
def import_transactions(import_path: str, format: str) -> int:
    """Import a history file readable by the worker; returns the DataImport id."""
    return transactions_import(path=import_path, format=format).pk
