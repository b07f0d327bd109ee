"""Single-flight locks for long jobs, held in the database.

PostgreSQL: a session-level advisory lock on the job's connection. It is released when the
job ends, and also by PostgreSQL itself when the connection dies (a killed worker never
leaves a stale lock). SQLite (the embedded default, one process writing): a lease row in
core_joblock with an expiry, taken with one conditional UPDATE; a crashed holder's lease
runs out.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import socket
from datetime import timedelta

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone


class JobLock(models.Model):
    name = models.CharField(max_length=100, primary_key=True)
    holder = models.CharField(max_length=200, blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "core"
        verbose_name = "job lock"


def _advisory_key(name: str) -> int:
    return int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def single_flight(name: str, *, lease: timedelta = timedelta(hours=2)):
    """Yields True when this caller holds the lock for `name`, False when another holds it."""
    if connection.vendor == "postgresql":
        key = _advisory_key(name)
        with connection.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s)", [key])
            got = cur.fetchone()[0]
        try:
            yield got
        finally:
            if got:
                with connection.cursor() as cur:
                    cur.execute("SELECT pg_advisory_unlock(%s)", [key])
        return

    holder = f"{socket.gethostname()}:{os.getpid()}:{id(object())}"
    now = timezone.now()
    with transaction.atomic():
        try:
            JobLock.objects.get_or_create(name=name)
        except IntegrityError:
            pass
        got = bool(
            JobLock.objects.filter(name=name)
            .filter(models.Q(holder="") | models.Q(expires_at__lt=now))
            .update(holder=holder, expires_at=now + lease)
        )
    try:
        yield got
    finally:
        if got:
            JobLock.objects.filter(name=name, holder=holder).update(holder="", expires_at=None)
