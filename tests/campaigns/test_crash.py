"""Crash safety of sending: SIGKILL the worker in the middle of a 2,000-recipient campaign,
start a new one, and the SMTP server must have received exactly one message per
non-holdout recipient: none missing, none twice."""
from __future__ import annotations

import collections
import os
import random
import signal
import time

import pytest
from django.conf import settings

from campaigns.choices import CampaignStatus, MessageStatus
from campaigns.models import Message
from campaigns.services import campaign_start
from campaigns.tracking import message_id_header
from crm.celery import app
from tests.campaigns import factories as f
from tests.campaigns.smtp_sink import start_sink
from tests.workers import celery_worker, require_real_services

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

N = 2000


def _wait(predicate, timeout: float, what: str, step: float = 0.005):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


def test_sigkill_mid_campaign_delivers_exactly_once(tmp_path, monkeypatch):
    """Rule: every non-holdout recipient gets exactly one message, whatever instant the worker dies."""
    require_real_services()
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    monkeypatch.setattr(settings, "CELERY_TASK_ALWAYS_EAGER", False)
    controller, sink = start_sink()
    env = {"EMAIL_URL": f"smtp://127.0.0.1:{controller.port}", "CAMPAIGN_SEND_BATCH_SIZE": "100",
           "CAMPAIGN_SEND_CONCURRENCY": "1"}
    rng = random.Random(os.environ.get("CRASH_SEED") or None)
    kill_after = rng.randint(N // 10, N // 2)   # messages received before the kill
    extra_delay = rng.random() * 0.01           # plus a random fraction of a message's time
    try:
        f.customers(N, prefix="crash")
        campaign = f.campaign(holdout_percent=10)

        with celery_worker(queues="default,send", name="crash1", log=tmp_path / "worker1.log", extra_env=env) as proc:
            campaign_start(campaign=campaign)
            _wait(lambda: sink.count() >= kill_after, 120, "the first messages")
            time.sleep(extra_delay)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        at_kill = sink.count()
        in_flight = Message.objects.filter(campaign=campaign, status=MessageStatus.SENDING).count()

        with celery_worker(queues="default,send", name="crash2", log=tmp_path / "worker2.log", extra_env=env):
            # The new worker's start-up sweep takes the dead claim back and resumes sending.
            _wait(lambda: Message.objects.filter(campaign=campaign, status__in=["queued", "sending"]).count() == 0
                  and sink.count() >= at_kill, 180, "the campaign to finish", step=0.2)
            _wait(lambda: campaign.__class__.objects.get(pk=campaign.pk).status == CampaignStatus.SENT, 30,
                  "status sent", step=0.2)
        time.sleep(0.2)  # the last 250 replies
        received = sink.snapshot()
    finally:
        controller.stop()

    treated = dict(Message.objects.filter(campaign=campaign, status=MessageStatus.SENT)
                   .values_list("customer__email", "pk"))
    holdout = Message.objects.filter(campaign=campaign, status=MessageStatus.HOLDOUT).count()
    per_recipient = collections.Counter(rcpt for rcpt, _ in received)
    twice = {r: n for r, n in per_recipient.items() if n > 1}
    missing = set(treated) - set(per_recipient)
    unexpected = set(per_recipient) - set(treated)
    uncertain = Message.objects.filter(campaign=campaign, uncertain=True).count()
    print(f"\ncrash test: kill after {at_kill} received (target {kill_after}), claimed in flight {in_flight}, "
          f"treated {len(treated)}, holdout {holdout}, received {len(received)}, twice {len(twice)}, "
          f"missing {len(missing)}, uncertain-flagged {uncertain}")
    assert holdout > 0 and len(treated) + holdout == N
    assert not twice, f"received twice: {sorted(twice)[:10]}"
    assert not missing, f"never received: {sorted(missing)[:10]}"
    assert not unexpected, f"holdout or unknown recipients received mail: {sorted(unexpected)[:10]}"
    # Every message carried its deterministic Message-ID, the one a bounce would quote.
    expected_ids = {message_id_header(campaign.pk, pk) for pk in treated.values()}
    assert {mid for _, mid in received} == expected_ids
