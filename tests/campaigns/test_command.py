"""run_campaign: --list lines, and ID --wait's last line of JSON counts."""
import json
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import Customer
from tests.campaigns import factories as f

pytestmark = pytest.mark.django_db


def test_list_prints_id_tab_name_tab_status():
    a = f.campaign(name="Alpha")
    b = f.campaign(name="Beta")
    out = StringIO()
    call_command("run_campaign", "--list", stdout=out)
    assert out.getvalue().splitlines() == [f"{a.pk}\tAlpha\tdraft", f"{b.pk}\tBeta\tdraft"]


@pytest.mark.django_db(transaction=True)
def test_wait_prints_counts_and_a_second_run_sends_nothing(mailoutbox):
    """A real commit (transactional test): --wait sees the sending done by the (eager) tasks."""
    people = f.customers(40, prefix="cmd")
    Customer.objects.filter(pk=people[0].pk).update(marketing_consent=False)
    campaign = f.campaign(holdout_percent=25)
    out = StringIO()
    call_command("run_campaign", str(campaign.pk), "--wait", "--timeout", "60", stdout=out)
    counts = json.loads(out.getvalue().splitlines()[-1])
    assert list(counts) == ["audience", "holdout", "skipped", "sent", "failed"]
    assert counts["audience"] == 40 and counts["skipped"] == 1 and counts["failed"] == 0
    assert counts["holdout"] + counts["sent"] == 39 and counts["holdout"] > 0
    assert len(mailoutbox) == counts["sent"]

    again = StringIO()
    call_command("run_campaign", str(campaign.pk), "--wait", "--timeout", "60", stdout=again)
    assert json.loads(again.getvalue().splitlines()[-1]) == counts
    assert len(mailoutbox) == counts["sent"]
