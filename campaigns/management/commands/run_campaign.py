"""Start (or resume) a campaign and wait for it, or list campaigns.

    python manage.py run_campaign --list          one per line: ID<TAB>name<TAB>status
    python manage.py run_campaign ID --wait       start or resume; when sending is done, the
                                                  last line is the counts as JSON:
    {"audience": N, "holdout": N, "skipped": N, "sent": N, "failed": N}

Running it again on a sent campaign sends nothing and prints the same counts.
"""
from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from campaigns.choices import CampaignStatus, TriggerKind
from campaigns.models import Campaign
from campaigns.services import (CampaignStateError, campaign_counts, campaign_is_done, campaign_resume,
                                campaign_start, campaigns_sweep)


class Command(BaseCommand):
    help = "List campaigns, or start/resume one and print its counts as JSON when sending is done."

    def add_arguments(self, parser):
        parser.add_argument("campaign_id", nargs="?", type=int)
        parser.add_argument("--list", action="store_true", help="List campaigns: ID<TAB>name<TAB>status.")
        parser.add_argument("--wait", action="store_true", help="Wait until sending is done, then print the counts.")
        parser.add_argument("--timeout", type=float, default=3600.0, help="Give up waiting after this many seconds.")

    def handle(self, *args, **opts):
        if opts["list"]:
            for pk, name, status in Campaign.objects.order_by("pk").values_list("pk", "name", "status"):
                self.stdout.write(f"{pk}\t{name}\t{status}")
            return
        if opts["campaign_id"] is None:
            raise CommandError("Give a campaign id, or --list.")
        campaign = Campaign.objects.filter(pk=opts["campaign_id"]).first()
        if campaign is None:
            raise CommandError(f"No campaign {opts['campaign_id']}.")
        try:
            if campaign.status in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
                if campaign.trigger == TriggerKind.RECURRING and campaign.parent_id is None:
                    raise CommandError("A recurring campaign runs on its schedule; run one of its runs instead.")
                campaign = campaign_start(campaign=campaign)
            elif campaign.status in (CampaignStatus.PAUSED, CampaignStatus.SENDING):
                campaign = campaign_resume(campaign=campaign)
        except CampaignStateError as exc:
            raise CommandError(exc.message) from None
        if opts["wait"]:
            deadline = time.monotonic() + opts["timeout"]
            last_sweep = time.monotonic()
            while not campaign_is_done(campaign=campaign):
                if time.monotonic() > deadline:
                    raise CommandError("Timed out waiting for the campaign; it keeps sending in the background.")
                time.sleep(0.5)
                if time.monotonic() - last_sweep > 15:   # a worker may have died: take its claims back
                    campaigns_sweep()
                    last_sweep = time.monotonic()
            campaign.refresh_from_db()
        self.stdout.write(json.dumps(campaign_counts(campaign=campaign)))
