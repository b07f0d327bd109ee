#!/usr/bin/env python
"""Rule preview benchmark: the live count and sample of the rule builder over 1M customers.

    python bench/recompute.py          # first: fills stratum_bench_recompute and computes the tiers
    python bench/preview.py            # then: times previews on that database

The issue's target: a preview (matching count and a sample of customers) under 1 s for 1M
customers on PostgreSQL. This times segmentation.views_support.rule_preview, what the rule
builder's live count calls, for rules on features, relative dates, customer attributes, other
dimensions' tiers and nested any/all, and a tier's own preview (how many would land in the
tier: its rule and no earlier tier's). Each is run three times; the best and the worst are
printed with the count.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_S = 1.0


def cond(field: str, op: str, value=None) -> dict:
    return {"field": field, "op": op, "value": value}


RULES = {
    "activity within 30 days": {"all": [cond("activity_recency_days", "<=", 30)]},
    "R/F/M scores (VIP)": {"all": [cond("m_score", ">=", 5), cond("f_score", ">=", 4)]},
    "any: bought in 7 days or spent 1,000": {"any": [cond("recency_days", "<=", 7), cond("revenue_total", ">=", 1000)]},
    "nested: (city in 2) and (any: 3+ orders, 90-day trend up)": {"all": [
        cond("attributes.city", "in", ["Berlin", "Paris"]),
        {"any": [cond("orders_total", ">=", 3), cond("orders_90d", ">", 1)]}]},
    "last purchase within 60 days (relative date)": {"all": [cond("last_purchase_at", "within_last", 60)]},
    "tier of another dimension (churned)": {"all": [cond("tier:behaviour", "=", "churned")]},
    "tiers, not in (two value tiers)": {"all": [cond("tier:value", "not_in", ["mid", "low"])]},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/stratum_bench_recompute")
    args = p.parse_args()
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.base")
    import django

    django.setup()
    from accounts.models import Customer
    from segmentation.models import Membership, Tier
    from segmentation.rules import RuleError
    from segmentation.views_support import rule_preview

    customers = Customer.objects.count()
    if not Membership.objects.exists():
        sys.exit("no tiers computed in this database: run bench/recompute.py first")
    print(f"{customers:,} customers; rule_preview (count + sample of 10), best and worst of 3 runs")
    worst_all = 0.0

    def timed(label: str, **kwargs) -> None:
        nonlocal worst_all
        times = []
        for _ in range(3):
            t = time.perf_counter()
            try:
                out = rule_preview(**kwargs)
            except RuleError as exc:
                sys.exit(f"{label}: {exc}")
            times.append(time.perf_counter() - t)
        worst_all = max(worst_all, max(times))
        extra = f", {out['in_tier']:,} would land in the tier" if "in_tier" in out else ""
        print(f"  {label:<62} {out['count']:>9,} match{extra}: {min(times) * 1000:6.0f} ms best, "
              f"{max(times) * 1000:6.0f} ms worst")

    for label, rule in RULES.items():
        timed(label, rule=rule)
    for dim, slug in (("lifecycle", "growth"), ("rfm", "at-risk"), ("value", "high")):
        tier = Tier.objects.select_related("dimension").filter(dimension__slug=dim, slug=slug).first()
        if tier is not None:
            timed(f"tier {dim}/{slug}: its rule, and no earlier tier's", rule=tier.rule, tier=tier)
    verdict = "MET" if worst_all < TARGET_S else "NOT MET"
    print(f"slowest preview {worst_all:.2f} s (target < {TARGET_S:.0f} s for 1M customers): {verdict}")


if __name__ == "__main__":
    main()
