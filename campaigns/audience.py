"""The audience snapshot: one INSERT ... SELECT writes a Message row per audience member.

Set-based, never a Python loop over customers. The SELECT is a Django queryset over Customer
(the audience rule, the exclusions and the targeted tier as annotations); the INSERT around
it adds what needs a hash: the holdout and the A/B variant. Both come from the first 32 bits
of md5("<purpose>:<campaign id>:<customer id>"), identical on PostgreSQL (md5()) and SQLite
(a registered function), so the split is random with respect to the customer, reproducible
per campaign, and checkable in Python (`bucket`).

Order of decisions per customer: excluded (erased, unsubscribed, no consent, no e-mail for
e-mail campaigns, frequency cap) -> SKIPPED with the reason; else holdout bucket -> HOLDOUT;
else QUEUED with a variant. The holdout is drawn among the eligible only, so that treated and
holdout groups are comparable.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Case, CharField, Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce

from accounts.models import Customer
from segmentation.models import Dimension, Membership
from segmentation.rules import compile_rule

from .choices import MessageStatus, SkipReason
from .models import Campaign, Message

BUCKETS = 10_000


def bucket(purpose: str, campaign_id: int, customer_id: int) -> int:
    """The customer's bucket in [0, 10000) for `purpose` ("holdout" or "variant")."""
    digest = hashlib.md5(f"{purpose}:{campaign_id}:{customer_id}".encode()).hexdigest()
    return int(digest[:8], 16) % BUCKETS


def _bucket_sql(seed_param: str, id_sql: str) -> str:
    if connection.vendor == "postgresql":
        return f"((('x' || substr(md5({seed_param} || CAST({id_sql} AS text)), 1, 8))::bit(32)::bigint) %% {BUCKETS})"
    return f"(stratum_h32({seed_param} || CAST({id_sql} AS TEXT)) %% {BUCKETS})"


def sqlite_register_functions(sender, connection, **kwargs) -> None:
    """connection_created receiver: md5-based bucket function for SQLite."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "stratum_h32", 1, lambda s: int(hashlib.md5(s.encode()).hexdigest()[:8], 16), deterministic=True)


def audience_q(campaign: Campaign, *, as_of: datetime | None = None) -> Q:
    """Customers in any of the campaign's tiers and, when set, in its segment."""
    q = Q()
    tiers = list(campaign.tiers.values_list("pk", "dimension_id"))
    if tiers:
        # (customer, dimension) is unique: naming the dimensions lets PostgreSQL probe that index per
        # customer even when its statistics of a freshly filled membership table lag behind.
        q &= Q(Exists(Membership.objects.filter(customer=OuterRef("pk"), dimension_id__in={d for _, d in tiers},
                                                tier_id__in=[t for t, _ in tiers])))
    if campaign.segment_id:
        q &= compile_rule(campaign.segment.rule, as_of=as_of).q
    if not tiers and not campaign.segment_id:
        q = Q(pk__in=[])
    return q


def _exclusions(campaign: Campaign, qs: QuerySet, now: datetime) -> QuerySet:
    cap = settings.CAMPAIGN_FREQUENCY_CAP
    whens = [
        When(erased_at__isnull=False, then=Value(SkipReason.ERASED)),
        When(unsubscribed_at__isnull=False, then=Value(SkipReason.UNSUBSCRIBED)),
        When(marketing_consent=False, then=Value(SkipReason.NO_CONSENT)),
    ]
    if campaign.sends_email:
        whens.append(When(email="", then=Value(SkipReason.NO_EMAIL)))
    if cap > 0:
        recent = (Message.objects.filter(customer=OuterRef("pk"), sent_at__gte=now - timedelta(days=7),
                                         status=MessageStatus.SENT)
                  .order_by().values("customer").annotate(n=Count("id")).values("n"))
        qs = qs.annotate(x_recent=Coalesce(Subquery(recent, output_field=IntegerField()), 0))
        whens.append(When(x_recent__gte=cap, then=Value(SkipReason.FREQUENCY_CAP)))
    return qs.annotate(x_skip=Case(*whens, default=Value(""), output_field=CharField()))


def _tier_subquery(campaign: Campaign):
    tiers = list(campaign.tiers.values_list("pk", "dimension_id"))
    memberships = Membership.objects.filter(customer=OuterRef("pk"))
    if tiers:
        memberships = memberships.filter(dimension_id__in={d for _, d in tiers}, tier_id__in=[t for t, _ in tiers])
    else:  # segment audience: the customer's tier on the first dimension, for per-tier results
        first = Dimension.objects.filter(active=True).order_by("order", "slug").first()
        memberships = memberships.filter(dimension=first)
    return Subquery(memberships.order_by("dimension__order", "tier__order").values("tier_id")[:1])


def snapshot(campaign: Campaign, *, now: datetime, customers: QuerySet | None = None,
             entry_changes: QuerySet | None = None) -> int:
    """Write the Message rows of `campaign` for its audience (or for `customers`); returns rows
    inserted. Idempotent: existing (campaign, customer, trigger_key) rows are kept as they are.

    `entry_changes` (tier-entry trigger): the TierChange rows that brought customers in; the
    targeted tier is the entered one and, with re-entry allowed, each entry is its own key.
    """
    base = Customer.objects.all()
    if entry_changes is not None:
        entries = entry_changes.filter(to_tier_id=campaign.entry_tier_id)
        base = base.filter(pk__in=entries.values("customer_id"))
        if campaign.segment_id:
            base = base.filter(compile_rule(campaign.segment.rule, as_of=now).q)
        qs = base.annotate(x_tier=Value(campaign.entry_tier_id, output_field=IntegerField()),
                           x_entry=Subquery(entries.filter(customer_id=OuterRef("pk")).order_by("-id").values("id")[:1]))
    else:
        base = base.filter(audience_q(campaign, as_of=now)) if customers is None else customers
        qs = base.annotate(x_tier=_tier_subquery(campaign), x_entry=Value(0, output_field=IntegerField()))
    qs = _exclusions(campaign, qs.annotate(x_cid=F("pk")), now).order_by()
    inner_sql, inner_params = qs.values("x_cid", "x_skip", "x_tier", "x_entry").query.sql_with_params()

    variants = list(campaign.variants.order_by("id").values_list("id", "weight"))
    params: list = []
    holdout = _bucket_sql("%s", "sub.x_cid")
    params_holdout = [f"holdout:{campaign.pk}:"]
    if variants:
        total = sum(w for _, w in variants)
        cases, acc = [], 0
        vb = _bucket_sql("%s", "sub.x_cid")
        for vid, weight in variants[:-1]:
            acc += weight
            cases.append(f"WHEN {vb} < {int(acc * BUCKETS / total)} THEN {int(vid)}")
        variant_sql = f"CASE {' '.join(cases)} ELSE {int(variants[-1][0])} END" if cases else str(int(variants[0][0]))
        variant_params = [f"variant:{campaign.pk}:"] * len(cases)
    else:
        variant_sql, variant_params = "CAST(NULL AS BIGINT)", []
    trigger_key = "'tc:' || CAST(sub.x_entry AS TEXT)" if (entry_changes is not None and campaign.allow_reentry) else "''"
    share = int(campaign.holdout_percent * BUCKETS / 100)
    table = connection.ops.quote_name(Message._meta.db_table)
    sql = f"""
        INSERT INTO {table} (campaign_id, customer_id, trigger_key, variant_id, tier_id, status, skip_reason,
                             created_at, claim_token, attempts, uncertain, error)
        SELECT %s, sub.x_cid, {trigger_key},
               CASE WHEN sub.x_skip <> '' OR {holdout} < %s THEN CAST(NULL AS BIGINT) ELSE {variant_sql} END,
               sub.x_tier,
               CASE WHEN sub.x_skip <> '' THEN %s WHEN {holdout} < %s THEN %s ELSE %s END,
               sub.x_skip, %s, '', 0, %s, ''
        FROM ({inner_sql}) sub
        WHERE true
        ON CONFLICT DO NOTHING"""
    params = [campaign.pk, *params_holdout, share, *variant_params,
              MessageStatus.SKIPPED, *params_holdout, share, MessageStatus.HOLDOUT, MessageStatus.QUEUED,
              connection.ops.adapt_datetimefield_value(now), False, *inner_params]
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.rowcount


def audience_estimate(campaign: Campaign, *, now: datetime | None = None) -> dict:
    """Live size of the audience for the builder: total, eligible, excluded by reason, and the
    expected holdout. One aggregate query."""
    from django.utils import timezone

    now = now or timezone.now()
    qs = _exclusions(campaign, Customer.objects.filter(audience_q(campaign, as_of=now)), now).order_by()
    rows = dict(qs.values("x_skip").annotate(n=Count("pk")).values_list("x_skip", "n"))
    total = sum(rows.values())
    eligible = rows.get("", 0)
    holdout = int(round(eligible * float(campaign.holdout_percent) / 100))
    return {"audience": total, "eligible": eligible, "expected_holdout": holdout,
            "expected_sends": eligible - holdout,
            "excluded": {reason: n for reason, n in rows.items() if reason}}

