"""Campaign sending throughput, end to end, with one Celery worker and a local SMTP sink.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python bench/send.py [--customers 20000]

What it does, all in one run against the same aiosmtpd sink (its own process):
1. raw SMTP: Django's SMTP backend pushing N prepared messages over one connection, and
   over a new connection per message (the ceiling: no rendering, no database);
2. end to end: a 20,000-customer e-mail-with-coupon campaign started with campaign_start
   (audience snapshot, coupons generated in bulk) and sent by one Celery worker process
   (rendering with tracked links, Message-ID and List-Unsubscribe headers, one commit per
   message), timed from the start call to the last message the sink received;
3. the per-message cost of each part in this process (render + MIME, the sent-mark UPDATE),
   to say what bounds the end-to-end figure.

Customers are created once (external ids bsend-*) and reused; each run makes a new campaign.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.base")


def sink_main(port: int, count, first, last, ready) -> None:
    """The SMTP sink: counts messages and records when the first and the last arrived."""
    import logging

    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            now = time.time()
            with count.get_lock():
                if count.value == 0:
                    first.value = now
                count.value += 1
                last.value = now
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--raw", type=int, default=3000, help="messages for the raw SMTP figure")
    parser.add_argument("--concurrency", type=int, default=1, help="worker processes (celery -c)")
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        sys.exit("Set DATABASE_URL (PostgreSQL) and REDIS_URL: the worker is a separate process.")

    import django

    django.setup()
    from django.conf import settings
    from django.core.mail import EmailMultiAlternatives, get_connection
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Customer
    from campaigns import sending
    from campaigns.models import Message
    from campaigns.services import campaign_create, campaign_start
    from crm.celery import app
    from segmentation.models import Membership, Tier
    from tests.campaigns.smtp_sink import free_port
    from tests.workers import celery_worker

    # --- data --------------------------------------------------------------------------------
    tier = Tier.objects.get(dimension__slug="behaviour", slug="silent")
    have = Customer.objects.filter(external_id__startswith="bsend-").count()
    if have < args.customers:
        t = time.perf_counter()
        Customer.objects.bulk_create([Customer(external_id=f"bsend-{i}", email=f"bsend{i}@example.com",
                                               name=f"Bench{i} Customer", marketing_consent=True)
                                      for i in range(have, args.customers)], batch_size=5000, ignore_conflicts=True)
        ids = Customer.objects.filter(external_id__startswith="bsend-").exclude(memberships__dimension=tier.dimension)
        Membership.objects.bulk_create([Membership(customer_id=pk, dimension=tier.dimension, tier=tier,
                                                   since=timezone.now()) for pk in ids.values_list("pk", flat=True)],
                                       batch_size=5000, ignore_conflicts=True)
        print(f"created {args.customers - have} customers in {time.perf_counter() - t:.1f} s")

    port = free_port()
    count, first, last, ready = mp.Value("i", 0), mp.Value("d", 0.0), mp.Value("d", 0.0), mp.Event()
    sink = mp.Process(target=sink_main, args=(port, count, first, last, ready), daemon=True)
    sink.start()
    ready.wait(10)

    def reset():
        with count.get_lock():
            count.value, first.value, last.value = 0, 0.0, 0.0

    # --- 1. raw SMTP ----------------------------------------------------------------------------
    body = ("Hi Bench, we have missed you. Use ABCDEFGHJKMN for 15% off orders from 20.00 until 14 December.\n" * 3)
    html = "<html><body>" + "<p>Hi Bench, we have missed you.</p>" * 6 + "</body></html>"
    msgs = []
    for i in range(args.raw):
        m = EmailMultiAlternatives("We miss you: 15% off", body, "shop@example.com", [f"raw{i}@example.com"])
        m.attach_alternative(html, "text/html")
        msgs.append(m)
    backend = get_connection("django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1", port=port,
                             use_tls=False, use_ssl=False, username="", password="")
    reset()
    t = time.perf_counter()
    backend.send_messages(msgs)
    raw_one = args.raw / (time.perf_counter() - t)
    reset()
    few = msgs[:500]
    t = time.perf_counter()
    for m in few:
        get_connection("django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1", port=port, use_tls=False,
                       use_ssl=False, username="", password="").send_messages([m])
    raw_each = len(few) / (time.perf_counter() - t)
    print(f"raw Django SMTP backend, prepared messages: {raw_one:,.0f} msg/s over one connection, "
          f"{raw_each:,.0f} msg/s with a connection per message", flush=True)

    # --- 2. end to end ----------------------------------------------------------------------------
    # The audience: Silent customers in a segment that holds exactly the bench customers.
    from segmentation.models import Segment

    segment, _ = Segment.objects.get_or_create(slug="bench-send", defaults={
        "name": "Bench send", "rule": {"field": "attributes.bench", "op": "=", "value": "send"}})
    Customer.objects.filter(external_id__startswith="bsend-").update(attributes={"bench": "send"})
    campaign = campaign_create(
        name=f"bench send {timezone.now():%H:%M:%S}", kind="email_coupon", tiers=[tier], segment=segment,
        holdout_percent=0, coupon_value=15, coupon_min_basket=20, coupon_valid_days=14,
        subject="{{ first_name }}, 15% off your next order",
        text_body="Hi {{ first_name }},\nwe have missed you. Use {{ coupon.code }} for {{ coupon.display }} off "
                  "orders from {{ coupon.min_basket }} until {{ coupon.expires_on }}.\n"
                  "Shop now: https://shop.example/sale\nUnsubscribe: {{ unsubscribe_url }}\n",
        html_body="<html><body><p>Hi {{ first_name }},</p><p>we have missed you. Use <b>{{ coupon.code }}</b> for "
                  "{{ coupon.display }} off orders from {{ coupon.min_basket }} until {{ coupon.expires_on }}.</p>"
                  '<p><a href="https://shop.example/sale">Shop now</a></p>'
                  '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>')
    # Start of the bench: the frequency cap must not skip customers sent to by earlier bench runs.
    settings.CAMPAIGN_FREQUENCY_CAP = 0
    app.conf.task_always_eager = False
    settings.CELERY_TASK_ALWAYS_EAGER = False
    env = {"EMAIL_URL": f"smtp://127.0.0.1:{port}", "CAMPAIGN_SEND_BATCH_SIZE": str(args.batch),
           "CAMPAIGN_SEND_CONCURRENCY": str(args.concurrency), "CAMPAIGN_FREQUENCY_CAP": "0",
           "LOG_LEVEL": "WARNING"}
    settings.CAMPAIGN_SEND_CONCURRENCY = args.concurrency
    # tests.workers reads the test database's name from the connection: here, the bench database.
    with celery_worker(queues="default,send", name="bench-send", extra_env=env, concurrency=args.concurrency,
                       log=Path(settings.VAR_DIR) / "bench-send-worker.log"):
        reset()
        t0 = time.time()
        campaign_start(campaign=campaign)
        t_started = time.time()
        expected = Message.objects.filter(campaign=campaign, status="queued").count() + \
            Message.objects.filter(campaign=campaign, status__in=["sending", "sent"]).count()
        deadline = time.time() + 600
        while count.value < expected and time.time() < deadline:
            time.sleep(0.05)
        t_last = last.value
        time.sleep(0.5)
    campaign.refresh_from_db()
    sent = Message.objects.filter(campaign=campaign, status="sent").count()
    e2e = count.value / (t_last - t0) if t_last > t0 else 0.0
    sending_only = count.value / (t_last - first.value) if t_last > first.value else 0.0
    print(f"end to end: {count.value:,} messages to {expected:,} recipients in {t_last - t0:.1f} s = "
          f"{e2e:,.0f} msg/s (start call incl. snapshot + {campaign.coupons.count():,} coupons: "
          f"{t_started - t0:.2f} s; sending phase alone {sending_only:,.0f} msg/s); status {campaign.status}, "
          f"sent rows {sent:,}; worker -c {args.concurrency}")

    # --- 3. what bounds it -------------------------------------------------------------------------
    sample = list(Message.objects.filter(campaign=campaign).select_related("customer", "variant").order_by("pk")[:1000])
    coupons = {c.customer_id: c for c in campaign.coupons.filter(customer_id__in=[m.customer_id for m in sample])}
    t = time.perf_counter()
    for m in sample:
        sending.prepare(campaign=campaign, message=m, customer=m.customer, memberships=[],
                        coupon=coupons.get(m.customer_id), recommendations=[]).as_bytes()
    render_ms = (time.perf_counter() - t) / len(sample) * 1000
    raw = connection.cursor().cursor
    if not settings.CAMPAIGN_SEND_SYNCHRONOUS_COMMIT:
        raw.execute("SET synchronous_commit TO off")
    t = time.perf_counter()
    for m in sample[:500]:   # the same row write and commit as the sent-mark
        raw.execute("UPDATE campaigns_message SET status = 'sent', sent_at = now(), error = '' WHERE id = %s",
                    (m.pk,))
    mark_ms = (time.perf_counter() - t) / 500 * 1000
    raw.execute("RESET synchronous_commit")
    smtp_ms = 1000 / raw_one
    print(f"per message in one process: render + MIME {render_ms:.2f} ms, sent-mark commit {mark_ms:.2f} ms, "
          f"SMTP exchange (raw figure) {smtp_ms:.2f} ms -> sum {render_ms + mark_ms + smtp_ms:.2f} ms "
          f"= {1000 / (render_ms + mark_ms + smtp_ms):,.0f} msg/s for one sending process")
    parts = {"the SMTP exchange (4 round trips to the single-threaded asyncio sink: MAIL, RCPT, DATA, body+'.')":
             smtp_ms, "rendering + MIME": render_ms,
             "the sent-mark commit" + (" (a WAL flush per message: CAMPAIGN_SEND_SYNCHRONOUS_COMMIT is on)"
                                       if settings.CAMPAIGN_SEND_SYNCHRONOUS_COMMIT else ""): mark_ms}
    ranked = sorted(parts.items(), key=lambda kv: -kv[1])
    print(f"bound: one sending process does these in series; the largest is {ranked[0][0]} "
          f"({ranked[0][1] / sum(parts.values()):.0%} of a message's time), then {ranked[1][0]}. The worker, the "
          f"sink and PostgreSQL share this machine's {os.cpu_count()} CPUs (load average now "
          f"{os.getloadavg()[0]:.1f}), and the sink's own CPU time is the ceiling of the raw figure.")
    sink.terminate()


if __name__ == "__main__":
    main()
