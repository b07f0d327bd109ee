"""Coupons: codes, validation reasons, idempotent and race-free redemption, goodwill, API."""
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.utils import timezone

from accounts.models import Event
from campaigns.coupons import (ALPHABET, CouponNotRedeemable, GoodwillNotAllowed, coupon_issue_goodwill, coupon_redeem,
                               coupon_validate, new_code)
from campaigns.models import Coupon, CouponRedemption
from tests.campaigns import factories as f


def _coupon(customer, **kw):
    now = timezone.now()
    fields = dict(code=new_code(), customer=customer, discount="percent", value=Decimal("10"),
                  min_basket=Decimal("20"), valid_from=now - timedelta(days=1), expires_at=now + timedelta(days=10),
                  max_uses=1)
    fields.update(kw)
    return Coupon.objects.create(**fields)


def test_codes_are_unambiguous_and_distinct():
    codes = {new_code() for _ in range(5000)}
    assert len(codes) == 5000
    assert all(len(c) == 12 and set(c) <= set(ALPHABET) for c in codes)
    assert not set("0O1IL") & set(ALPHABET)


@pytest.mark.django_db
def test_validate_gives_the_reason():
    alice, bob = f.customers(2, prefix="v")
    ok = _coupon(alice)
    expired = _coupon(alice, expires_at=timezone.now() - timedelta(seconds=1))
    used = _coupon(alice, uses=1)
    amount = Decimal("50.00")
    assert coupon_validate(code=ok.code.lower(), customer="v0", amount=amount).discount == Decimal("5.00")
    assert coupon_validate(code="NOPE", customer="v0", amount=amount).reason == "unknown"
    assert coupon_validate(code=expired.code, customer="v0", amount=amount).reason == "expired"
    assert coupon_validate(code=used.code, customer="v0", amount=amount).reason == "used"
    assert coupon_validate(code=ok.code, customer="v1", amount=amount).reason == "wrong_customer"
    assert coupon_validate(code=ok.code, customer="v0", amount=Decimal("19.99")).reason == "basket_too_small"


@pytest.mark.django_db
def test_redeem_is_idempotent_by_order_id_and_writes_one_event():
    alice = f.customers(1, prefix="r")[0]
    coupon = _coupon(alice, discount="fixed", value=Decimal("7.50"))
    first = coupon_redeem(code=coupon.code, customer="r0", order_id="A-1", amount=Decimal("30"))
    again = coupon_redeem(code=coupon.code, customer="r0", order_id="A-1", amount=Decimal("30"))
    assert not first.replayed and again.replayed and first.redemption.pk == again.redemption.pk
    assert first.redemption.discount_amount == Decimal("7.50")
    coupon.refresh_from_db()
    assert coupon.uses == 1
    with pytest.raises(CouponNotRedeemable) as err:
        coupon_redeem(code=coupon.code, customer="r0", order_id="A-2", amount=Decimal("30"))
    assert err.value.reason == "used"
    assert Event.objects.filter(type="coupon_redeem", customer=alice).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_redemptions_of_a_single_use_code_exactly_one_succeeds():
    """Rule: threads racing on one single-use code; the row lock lets exactly one through."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers, there is no race to test")
    alice = f.customers(1, prefix="race")[0]
    coupon = _coupon(alice)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(i: int):
        from django.db import connection as conn
        try:
            barrier.wait()
            coupon_redeem(code=coupon.code, customer="race0", order_id=f"order-{i}", amount=Decimal("40"))
            result = "ok"
        except CouponNotRedeemable as exc:
            result = exc.reason
        finally:
            conn.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] + ["used"] * 7
    assert CouponRedemption.objects.filter(coupon=coupon).count() == 1
    coupon.refresh_from_db()
    assert coupon.uses == 1


@pytest.mark.django_db
def test_goodwill_needs_the_permission_and_respects_the_cap(settings):
    settings.CAMPAIGN_GOODWILL_MAX_PERCENT = 20
    customer = f.customers(1, prefix="g")[0]
    agent = User.objects.create_user("agent")
    with pytest.raises(GoodwillNotAllowed):
        coupon_issue_goodwill(customer=customer, by=agent, discount="percent", value=Decimal("10"))
    agent.user_permissions.add(Permission.objects.get(codename="issue_goodwill_coupon"))
    agent = User.objects.get(pk=agent.pk)
    coupon = coupon_issue_goodwill(customer=customer, by=agent, discount="percent", value=Decimal("10"), reason="late")
    assert coupon.issued_by == agent and coupon.campaign is None and coupon.max_uses == 1
    from crm.core.errors import InvalidInput
    with pytest.raises(InvalidInput):
        coupon_issue_goodwill(customer=customer, by=agent, discount="percent", value=Decimal("25"))


@pytest.mark.django_db
def test_customer_service_role_may_issue_goodwill():
    from django.contrib.auth.models import Group
    assert Group.objects.get(name="Customer service").permissions.filter(codename="issue_goodwill_coupon").exists()


# --- API ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_validate_redeem_and_list(make_api_client):
    alice = f.customers(1, prefix="api")[0]
    coupon = _coupon(alice)
    client = make_api_client(scopes=["coupons:redeem"])
    r = client.post(f"/api/v1/coupons/{coupon.code}/validate/", {"customer": "api0", "amount": "10.00"}, format="json")
    assert r.status_code == 200 and r.json()["valid"] is False and r.json()["reason"] == "basket_too_small"
    r = client.post(f"/api/v1/coupons/{coupon.code}/validate/", {"customer": "api0", "amount": "100.00"}, format="json")
    assert r.json() == {**r.json(), "valid": True, "reason": None, "discount_amount": "10.00"}
    body = {"customer": "api0", "order_id": "O-9", "amount": "100.00"}
    first = client.post(f"/api/v1/coupons/{coupon.code}/redeem/", body, format="json")
    replay = client.post(f"/api/v1/coupons/{coupon.code}/redeem/", body, format="json")
    assert first.status_code == replay.status_code == 200 and first.json() == replay.json()
    assert replay["Idempotent-Replayed"] == "true"
    other = client.post(f"/api/v1/coupons/{coupon.code}/redeem/", {**body, "order_id": "O-10"}, format="json")
    assert other.status_code == 409 and other.json()["extra"] == {"reason": "used"}
    unknown = client.post("/api/v1/coupons/NOPE/redeem/", body, format="json")
    assert unknown.status_code == 404 and unknown.json()["code"] == "coupon_not_redeemable"
    # listing needs customers:read
    assert client.get("/api/v1/customers/api0/coupons/").status_code == 403
    reader = make_api_client(scopes=["customers:read"])
    listed = reader.get("/api/v1/customers/api0/coupons/")
    assert listed.status_code == 200 and listed.json()[0]["code"] == coupon.code and listed.json()[0]["uses"] == 1
    assert reader.get("/api/v1/customers/nobody/coupons/").status_code == 404
    assert reader.post(f"/api/v1/coupons/{coupon.code}/validate/", {"customer": "api0", "amount": "1"},
                       format="json").status_code == 403
