"""Tracking: signed links, no open redirect, one-click unsubscribe without login."""
import pytest
from django.test import Client

from accounts.models import Customer, Event
from campaigns import tracking
from campaigns.models import Message
from campaigns.services import campaign_counts, campaign_start
from tests.campaigns import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(run_commits):
    people = f.customers(3, prefix="tr")
    campaign = f.campaign()
    run_commits(campaign_start, campaign=campaign)
    return campaign, people, list(Message.objects.filter(campaign=campaign).order_by("pk"))


def test_one_click_unsubscribe_by_post_without_login_and_excluded_next_time(sent, run_commits):
    """RFC 8058: a POST of List-Unsubscribe=One-Click, no session, no CSRF token."""
    campaign, people, messages = sent
    url = tracking.unsubscribe_url(messages[0].pk).split("8000", 1)[1]
    client = Client(enforce_csrf_checks=True)
    response = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    customer = Customer.objects.get(pk=messages[0].customer_id)
    assert customer.unsubscribed_at is not None and not customer.marketing_consent
    assert customer.consent_source == "unsubscribe"
    # GET only shows the page (link scanners must not unsubscribe anyone)
    other = tracking.unsubscribe_url(messages[1].pk).split("8000", 1)[1]
    assert client.get(other).status_code == 200
    assert Customer.objects.get(pk=messages[1].customer_id).unsubscribed_at is None

    again = f.campaign(name="next")
    run_commits(campaign_start, campaign=again)
    assert Message.objects.get(campaign=again, customer=customer).skip_reason == "unsubscribed"
    assert campaign_counts(campaign=again)["sent"] == 2


def test_tampered_unsubscribe_token_is_refused(sent):
    _, _, messages = sent
    bad = tracking.unsubscribe_token(messages[0].pk)[:-2] + "xx"
    assert Client().post(f"/t/u/{bad}/").status_code == 400
    assert not Customer.objects.filter(unsubscribed_at__isnull=False).exists()


def test_click_redirects_only_to_links_the_message_contained(sent):
    _, _, messages = sent
    good = tracking.click_url(messages[0].pk, "https://shop.example/sale").split("8000", 1)[1]
    response = Client().get(good)
    assert response.status_code == 302 and response["Location"] == "https://shop.example/sale"
    # swap the URL inside the token: the signature no longer matches
    token = good.split("/")[3]
    forged = tracking.click_url(messages[0].pk, "https://evil.example/").split("/")[-2]
    mixed = forged.split(":")[0] + ":" + ":".join(token.split(":")[1:])
    assert Client().get(f"/t/c/{mixed}/").status_code == 400
    assert Client().get("/t/c/not-a-token/").status_code == 400
    assert Event.objects.filter(type="email_click").count() == 1
    m = Message.objects.get(pk=messages[0].pk)
    assert m.clicked_at is not None and m.opened_at is not None


def test_open_pixel_records_one_open_event(sent):
    _, _, messages = sent
    url = tracking.open_url(messages[1].pk).split("8000", 1)[1]
    for _ in range(3):
        response = Client().get(url)
        assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    assert Event.objects.filter(type="email_open").count() == 1
    assert Message.objects.get(pk=messages[1].pk).opened_at is not None


def test_sent_mail_carries_rfc8058_headers_and_a_matching_message_id(sent, mailoutbox):
    campaign, _, messages = sent
    email = mailoutbox[0]
    headers = email.extra_headers
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/t/u/" in headers["List-Unsubscribe"]
    assert tracking.message_from_header(headers["Message-ID"]).pk == messages[0].pk
    assert tracking.message_from_header("<c1.m2.forged@x>") is None
    html = email.alternatives[0][0]
    assert "https://shop.example/sale" not in html and "/t/c/" in html and "/t/o/" in html
