"""The demo's campaigns, and the campaigns' part of the privacy export and erasure."""
import pytest

from accounts.services.privacy import customer_erase, customer_export
from campaigns.demo import REACTIVATION, campaigns_install_demo
from campaigns.models import Campaign, Message
from campaigns.results import campaign_results
from campaigns.services import campaign_start
from tests.campaigns import factories as f

pytestmark = pytest.mark.django_db


def test_demo_installs_three_campaigns_once_and_runs_the_reactivation(run_commits, mailoutbox):
    f.customers(30, prefix="demo")          # Silent customers
    first = run_commits(campaigns_install_demo)
    assert len(first["created"]) == 3 and first["run"] is not None
    again = run_commits(campaigns_install_demo)
    assert again == {"created": [], "run": None}
    assert Campaign.objects.filter(description="Demo campaign").count() == 3
    run = Campaign.objects.get(name=REACTIVATION)
    assert run.status == "sent" and run.coupons.count() == len(mailoutbox) > 0
    assert "for 15% off" in mailoutbox[0].body
    results = campaign_results(campaign=run)["overall"]
    assert results["sent"] == len(mailoutbox) and results["holdout"] > 0


def test_export_lists_messages_and_coupons_and_erasure_stops_queued_mail(run_commits):
    a, b = f.customers(2, prefix="priv")
    campaign = f.campaign(kind="email_coupon", coupon_value=10)
    campaign_start(campaign=campaign)     # sends wait for the commit: still queued here
    data = customer_export(customer=a)
    assert data["campaign_messages"][0]["status"] == "queued"
    assert data["coupons"][0]["value"] == "10.00"
    customer_erase(customer=b)
    assert Message.objects.get(customer=b).skip_reason == "erased"


def test_dashboard_rows_follow_the_contract(run_commits):
    from campaigns.selectors import dashboard_campaigns, outbox_list

    f.customers(3, prefix="dash")
    campaign = f.campaign(name="Dash")
    run_commits(campaign_start, campaign=campaign)
    (row,) = dashboard_campaigns()
    assert row["name"] == "Dash" and row["status"] == "sent" and row["url"]
    assert {x["label"]: x["value"] for x in row["figures"]}["Sent"] == 3
    assert isinstance(outbox_list(), list)


def test_outbox_reader_reads_file_backend_messages(tmp_path, settings, run_commits):
    from campaigns.selectors import outbox_list, outbox_message

    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    f.customers(2, prefix="ob")
    run_commits(campaign_start, campaign=f.campaign(name="Outbox"))
    entries = outbox_list()
    assert len(entries) == 2 and {e.to for e in entries} == {"ob0@example.com", "ob1@example.com"}
    msg = outbox_message(entry_id=entries[0].id)
    assert "Hi Name" in msg["text"] and "/t/o/" in msg["html"] and msg["headers"]["List-Unsubscribe-Post"]
    from crm.core.errors import NotFound
    with pytest.raises(NotFound):
        outbox_message(entry_id="../../etc/passwd:0")
