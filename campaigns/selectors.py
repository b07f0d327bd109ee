"""Reads for the staff pages: campaign list with progress, and the local outbox."""
from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Q, QuerySet

from crm.core.errors import NotFound

from .choices import MessageStatus
from .models import Campaign

_SEPARATOR = b"\n" + b"-" * 79 + b"\n"


def campaign_list() -> QuerySet[Campaign]:
    """Campaigns with their progress counts (one query)."""
    return Campaign.objects.annotate(
        n_audience=Count("messages"),
        n_sent=Count("messages", filter=Q(messages__status=MessageStatus.SENT)),
        n_open=Count("messages", filter=Q(messages__status__in=[MessageStatus.QUEUED, MessageStatus.SENDING])),
        n_failed=Count("messages", filter=Q(messages__status=MessageStatus.FAILED)),
        n_holdout=Count("messages", filter=Q(messages__status=MessageStatus.HOLDOUT)),
    ).order_by("-created_at")


@dataclass
class OutboxEntry:
    id: str            # "<file name>:<index>"
    subject: str
    to: str
    from_: str
    date: str
    message_id: str


def _outbox_dir() -> Path:
    return Path(getattr(settings, "EMAIL_FILE_PATH", settings.EMAIL_OUTBOX_DIR))


def _split(path: Path) -> list[bytes]:
    """The file backend appends each message followed by a line of 79 dashes."""
    return [part for part in path.read_bytes().split(_SEPARATOR) if part.strip()]


def outbox_list(*, limit: int = 100) -> list[OutboxEntry]:
    """The newest messages of the local outbox (embedded default: EMAIL_URL unset)."""
    folder = _outbox_dir()
    if not folder.is_dir():
        return []
    out: list[OutboxEntry] = []
    for path in sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True):
        parts = _split(path)
        for index in range(len(parts) - 1, -1, -1):
            msg = email.message_from_bytes(parts[index], policy=email.policy.default)
            out.append(OutboxEntry(id=f"{path.name}:{index}", subject=str(msg["Subject"] or ""), to=str(msg["To"] or ""),
                                   from_=str(msg["From"] or ""), date=str(msg["Date"] or ""),
                                   message_id=str(msg["Message-ID"] or "")))
            if len(out) >= limit:
                return out
    return out


def outbox_message(*, entry_id: str) -> dict:
    """One outbox message: headers, text and HTML parts. NotFound for anything else (no paths)."""
    name, _, index = entry_id.rpartition(":")
    folder = _outbox_dir()
    path = folder / name
    if "/" in name or "\\" in name or not name.endswith(".log") or not path.is_file() or not index.isdigit():
        raise NotFound("No such outbox message.")
    parts = _split(path)
    if int(index) >= len(parts):
        raise NotFound("No such outbox message.")
    msg = email.message_from_bytes(parts[int(index)], policy=email.policy.default)
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    return {"id": entry_id, "headers": {k: str(v) for k, v in msg.items()},
            "text": text.get_content() if text else "", "html": html.get_content() if html else ""}


def dashboard_campaigns(*, limit: int = 8) -> list[dict]:
    """Running and recently finished campaigns for the dashboard (crm/core/dashboard.py's
    contract: name, url, status, status_label, when, audience, figures). Two queries."""
    from datetime import timedelta

    from django.urls import NoReverseMatch, reverse
    from django.utils import timezone

    from .choices import CampaignStatus

    recent = timezone.now() - timedelta(days=30)
    rows = (campaign_list().prefetch_related("tiers")
            .annotate(n_opened=Count("messages", filter=Q(messages__opened_at__isnull=False)))
            .filter(Q(status__in=[CampaignStatus.SENDING, CampaignStatus.PAUSED, CampaignStatus.SCHEDULED])
                    | Q(status=CampaignStatus.SENT, finished_at__gte=recent))
            .order_by("-started_at", "-created_at")[:limit])
    out = []
    for c in rows:
        try:
            url = reverse("campaigns:detail", args=[c.pk])
        except NoReverseMatch:   # the staff pages come with the web UI; until then, the admin
            url = reverse("admin:campaigns_campaign_change", args=[c.pk])
        audience = ", ".join(t.display_name for t in c.tiers.all()) or (c.segment.name if c.segment_id else "")
        out.append({
            "name": c.name, "url": url, "status": c.status, "status_label": c.get_status_display(),
            "when": c.started_at or c.send_at, "audience": audience,
            "figures": [{"label": "Sent", "value": c.n_sent, "url": ""},
                        {"label": "Opened", "value": c.n_opened, "url": ""},
                        {"label": "Holdout", "value": c.n_holdout, "url": ""},
                        {"label": "Waiting", "value": c.n_open, "url": ""}],
        })
    return out
