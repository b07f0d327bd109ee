"""Experiments: stable hash assignment, serving per arm, results with significance and
confidence intervals on a hand-built case, attribution of purchases after clicks, stop and
promote."""
from __future__ import annotations

import itertools
import math
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Customer, Event
from recommendations.choices import Arm
from recommendations.models import TrainedModel
from recommendations.selectors import attribution, experiment_results
from recommendations.serving import experiment_arm
from recommendations.services import (
    ExperimentRunning,
    experiment_create,
    experiment_stop,
    recommender_train,
)
from recommendations.stats import two_proportion_test, wilson_interval

pytestmark = pytest.mark.django_db
_ids = itertools.count(1)


def test_assignment_is_stable_and_follows_the_traffic_split():
    arms = [experiment_arm(experiment_id=7, customer=f"c{n}", traffic_b=0.3) for n in range(20_000)]
    again = [experiment_arm(experiment_id=7, customer=f"c{n}", traffic_b=0.3) for n in range(20_000)]
    assert arms == again
    share_b = arms.count(Arm.B) / len(arms)
    assert abs(share_b - 0.3) < 0.015
    other = [experiment_arm(experiment_id=8, customer=f"c{n}", traffic_b=0.3) for n in range(20_000)]
    both_b = sum(a == b == Arm.B for a, b in zip(arms, other)) / len(arms)
    assert abs(both_b - 0.09) < 0.01  # independent across experiments


def test_arms_serve_their_model_and_tag_the_rec_id(api_client, trained, shop):
    knn = recommender_train(algorithm="item_knn", holdout_days=0)
    exp = experiment_create(name="EASE vs kNN", model_b=knn, traffic_b=0.5)
    seen = {}
    for n in range(30):
        ext = f"reader-{n}"
        data = api_client.get(f"/api/v1/customers/{ext}/recommendations/?limit=2").json()
        arm = experiment_arm(experiment_id=exp.pk, customer=ext, traffic_b=0.5)
        assert data["arm"] == arm and data["experiment"] == exp.pk
        assert data["model"] == (knn.pk if arm == Arm.B else trained.pk)
        assert data["rec_id"].startswith(f"m{data['model']}.x{exp.pk}{arm}.")
        seen[arm] = True
        again = api_client.get(f"/api/v1/customers/{ext}/recommendations/?limit=2").json()
        assert again["arm"] == arm  # stable across requests
    assert seen == {Arm.A: True, Arm.B: True}


def _events(customer: Customer, type: str, rec_id: str, n: int, at, item=None, amount=None) -> list[Event]:
    return [Event(event_id=f"x{next(_ids)}", customer=customer, type=type, item=item, occurred_at=at, amount=amount,
                  properties={"rec_id": rec_id}) for _ in range(n)]


def test_results_and_significance_on_a_hand_built_case(trained, shop):
    """A: 1000 impressions, 50 clicks; B: 1000 impressions, 80 clicks.
    p_A = 0.05, p_B = 0.08, pooled p = 0.065, se = sqrt(0.065 * 0.935 * 2/1000) = 0.011025,
    z = 0.03 / 0.011025 = 2.7211, two-sided p = 0.00651."""
    exp = experiment_create(name="hand-built", config_b={"category_cap": 1}, traffic_b=0.5)
    exp.started_at = timezone.now() - timedelta(days=10)
    exp.save()
    at = timezone.now() - timedelta(days=5)
    a_rec, b_rec = f"m{trained.pk}.x{exp.pk}a.t1", f"m{trained.pk}.x{exp.pk}b.t2"
    ca, cb = shop["readers"][0], shop["runners"][0]
    book = shop["books"][0]
    rows = (_events(ca, "rec_impression", a_rec, 1000, at) + _events(ca, "rec_click", a_rec, 50, at, item=book)
            + _events(cb, "rec_impression", b_rec, 1000, at) + _events(cb, "rec_click", b_rec, 80, at, item=book)
            # noise: another experiment's arm and a model-only rec_id
            + _events(ca, "rec_impression", f"m{trained.pk}.x{exp.pk + 1}a.t3", 500, at)
            + _events(ca, "rec_click", f"m{trained.pk}.x0.t4", 7, at, item=book))
    # Purchases: B's customer buys the clicked book 2 days later (attributed), a sports item
    # (not clicked: not attributed) and the book again 9 days later (outside 7 days: not).
    rows += [Event(event_id=f"x{next(_ids)}", customer=cb, type="purchase", item=book, amount=Decimal("12.00"),
                   occurred_at=at + timedelta(days=2)),
             Event(event_id=f"x{next(_ids)}", customer=cb, type="purchase", item=shop["sports"][0],
                   amount=Decimal("30.00"), occurred_at=at + timedelta(days=2)),
             Event(event_id=f"x{next(_ids)}", customer=cb, type="purchase", item=book, amount=Decimal("12.00"),
                   occurred_at=at + timedelta(days=9))]
    # A's customer bought the book BEFORE clicking: not attributed.
    rows.append(Event(event_id=f"x{next(_ids)}", customer=ca, type="purchase", item=book, amount=Decimal("12.00"),
                      occurred_at=at - timedelta(days=1)))
    Event.objects.bulk_create(rows)

    results = experiment_results(experiment=exp)
    A, B = results["arms"]["a"], results["arms"]["b"]
    assert (A.impressions, A.clicks, B.impressions, B.clicks) == (1000, 50, 1000, 80)
    assert (A.exposed, B.exposed) == (1, 1)
    assert (A.purchases, B.purchases, B.buyers) == (0, 1, 1)
    assert B.revenue == Decimal("12.00") and B.revenue_per_customer == Decimal("12.00")
    assert A.ctr == 0.05 and B.ctr == 0.08
    test = results["ctr_test"]
    assert test["z"] == pytest.approx(2.7211, abs=1e-4)
    assert test["p_value"] == pytest.approx(0.00651, abs=1e-4)
    assert test["significant"] is True
    se = math.sqrt(0.05 * 0.95 / 1000 + 0.08 * 0.92 / 1000)
    assert test["ci"] == pytest.approx((0.03 - 1.959964 * se, 0.03 + 1.959964 * se), abs=1e-6)
    lo, hi = A.ctr_ci
    assert lo < 0.05 < hi and lo == pytest.approx(0.03813, abs=1e-4) and hi == pytest.approx(0.06531, abs=1e-4)

    by_model = attribution(model_id=trained.pk)
    assert by_model["clicks"] == 50 + 80 + 7 and by_model["impressions"] == 2500


def test_wilson_and_z_test_edge_cases():
    assert wilson_interval(0, 0) is None
    assert two_proportion_test(0, 0, 1, 10) is None
    same = two_proportion_test(0, 100, 0, 100)
    assert same["p_value"] == 1.0 and not same["significant"]


def test_stop_and_promote_activates_the_winner_and_its_configuration(api_client, trained, shop):
    knn = recommender_train(algorithm="item_knn", holdout_days=0)
    exp = experiment_create(name="promote", model_b=knn, config_b={"category_cap": 1})
    experiment_stop(experiment=exp, promote="b")
    exp.refresh_from_db()
    knn.refresh_from_db()
    assert exp.status == "stopped" and exp.winner == "b" and exp.stopped_at
    assert knn.active and knn.serving_config == {"category_cap": 1}
    assert not TrainedModel.objects.get(pk=trained.pk).active
    data = api_client.get("/api/v1/customers/reader-1/recommendations/?limit=4").json()
    assert data["model"] == knn.pk and data["arm"] is None
    cats = [x["category"] for x in data["items"]]
    assert len(set(cats[:3])) == 3  # the promoted cap of 1 per category: Books, Sports, Toys first


def test_only_one_experiment_runs_and_arms_must_differ(trained):
    from crm.core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="identical"):
        experiment_create(name="same")
    experiment_create(name="first", config_b={"category_cap": 1})
    with pytest.raises(ExperimentRunning):
        experiment_create(name="second", config_b={"category_cap": 2})
    with pytest.raises(InvalidInput, match="bogus"):
        experiment_create(name="bad", config_b={"bogus": 1})


def test_the_admin_refuses_a_second_running_experiment_on_the_form(trained, admin_client):
    """Through the Django admin as well: a form error naming the running one, not a 500."""
    from recommendations.models import Experiment

    experiment_create(name="first", config_b={"category_cap": 1})
    form = {"name": "second", "description": "", "model_a": "", "model_b": "", "traffic_b": "0.5",
            "config_a": "{}", "config_b": '{"category_cap": 2}'}
    response = admin_client.post("/admin/recommendations/experiment/add/", form)
    assert response.status_code == 200
    assert "Another experiment is running: stop it first." in response.content.decode()
    assert Experiment.objects.count() == 1
    Experiment.objects.update(status="stopped")
    response = admin_client.post("/admin/recommendations/experiment/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Experiment.objects.get(name="second").status == "running"
