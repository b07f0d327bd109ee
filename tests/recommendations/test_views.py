"""Staff pages of recommendations per role: Operations change, Analysts read, Customer service
sees the customer page's section only; train now with progress, activate, tier rules,
experiments with results, stop and promote; the pages in Chinese."""
from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.roles import ANALYST, CUSTOMER_SERVICE, OPERATIONS
from recommendations.models import Experiment, TierRule, TrainedModel
from recommendations.services import experiment_create, recommender_train
from segmentation.models import Membership, Tier

pytestmark = pytest.mark.django_db
O, S, A = OPERATIONS, CUSTOMER_SERVICE, ANALYST


def login(client, role: str):
    user = User.objects.create_user(role.lower().replace(" ", "-"), password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    return client


@pytest.fixture
def experiment(trained):
    return experiment_create(name="cap test", config_b={"category_cap": 1})


PAGES = [
    ("recommendations:overview", lambda ctx: [], {O: 200, A: 200, S: 403}),
    ("recommendations:model-detail", lambda ctx: [ctx["trained"].pk], {O: 200, A: 200, S: 403}),
    ("recommendations:model-status", lambda ctx: [ctx["trained"].pk], {O: 200, A: 200, S: 403}),
    ("recommendations:rules", lambda ctx: [], {O: 200, A: 200, S: 403}),
    ("recommendations:experiments", lambda ctx: [], {O: 200, A: 200, S: 403}),
    ("recommendations:experiment-detail", lambda ctx: [ctx["experiment"].pk], {O: 200, A: 200, S: 403}),
]


@pytest.mark.parametrize("role", [O, A, S])
def test_pages_by_role(client, trained, experiment, role):
    login(client, role)
    ctx = {"trained": trained, "experiment": experiment}
    for name, args, expected in PAGES:
        response = client.get(reverse(name, args=args(ctx)))
        assert response.status_code == expected[role], (name, role)


def test_anonymous_users_go_to_the_login_page(client, trained):
    response = client.get(reverse("recommendations:overview"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_the_overview_shows_metrics_table_chart_and_nav_entry(client, shop):
    from .conftest import DAY, event

    for n, reader in enumerate(shop["readers"]):
        event(reader, shop["books"][(n + 7) % 12], "purchase", at=shop["now"] - 2 * DAY)
    model = recommender_train(algorithm="ease", holdout_days=14)
    assert model.metrics["test_users"] == 30
    login(client, O)
    html = client.get(reverse("recommendations:overview")).content.decode()
    assert 'id="recs-metrics-chart"' in html and "echarts.min.js" in html
    assert "nDCG@10" in html and "Train now" in html
    assert f'href="{reverse("recommendations:overview")}"' in html  # NAV entry


@pytest.mark.parametrize("role,allowed", [(O, True), (A, False)])
def test_train_now_and_activate_need_operations(client, shop, role, allowed, django_capture_on_commit_callbacks):
    login(client, role)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("recommendations:train"),
                               {"algorithm": "ease", "use": "customer", "window_days": 365, "holdout_days": 0,
                                "params": '{"l2": 10}'})
    if not allowed:
        assert response.status_code == 403 and not TrainedModel.objects.exists()
        return
    model = TrainedModel.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("recommendations:model-detail", args=[model.pk])
    status = client.get(reverse("recommendations:model-status", args=[model.pk])).json()
    assert status["status"] == "succeeded" and status["progress"] == 100 and status["finished"] is True
    page = client.get(reverse("recommendations:model-detail", args=[model.pk])).content.decode()
    assert "train-progress" in page and "Activate" in page
    assert client.post(reverse("recommendations:activate", args=[model.pk])).status_code == 302
    model.refresh_from_db()
    assert model.active


def test_analyst_cannot_activate(client, trained, shop):
    other = recommender_train(algorithm="item_knn", holdout_days=0)
    login(client, A)
    assert client.post(reverse("recommendations:activate", args=[other.pk])).status_code == 403
    assert not TrainedModel.objects.get(pk=other.pk).active


def test_tier_rules_editor(client, trained, shop, dimensions):
    tier = Tier.objects.get(dimension__slug="value", slug="high")
    login(client, O)
    response = client.post(reverse("recommendations:rules"), {"tier": tier.pk, "action": "boost", "category": "Toys",
                                                              "weight": "1.5", "note": "clear the toys"})
    assert response.status_code == 302
    rule = TierRule.objects.get()
    assert (rule.category, rule.weight, rule.item) == ("Toys", 1.5, None)
    bad = client.post(reverse("recommendations:rules"), {"tier": tier.pk, "action": "pin", "item": "no-such", "weight": 0})
    assert bad.status_code == 400 and "No item with this external id" in bad.content.decode()
    client.post(reverse("recommendations:rule-change", args=[rule.pk]), {"action": "toggle"})
    assert not TierRule.objects.get().active
    client.post(reverse("recommendations:rule-change", args=[rule.pk]), {"action": "delete"})
    assert not TierRule.objects.exists()


def test_analyst_cannot_write_rules(client, trained, dimensions):
    login(client, A)
    tier = Tier.objects.get(dimension__slug="value", slug="high")
    response = client.post(reverse("recommendations:rules"), {"tier": tier.pk, "action": "boost", "category": "Toys"})
    assert response.status_code == 403 and not TierRule.objects.exists()


def test_experiments_create_results_stop_and_promote(client, trained, shop):
    knn = recommender_train(algorithm="item_knn", holdout_days=0)
    login(client, O)
    response = client.post(reverse("recommendations:experiments"),
                           {"name": "EASE vs kNN", "model_b": knn.pk, "config_a": "", "config_b": '{"category_cap": 2}',
                            "traffic_b": "0.5"})
    exp = Experiment.objects.get()
    assert response.status_code == 302 and exp.model_b == knn and exp.config_b == {"category_cap": 2}
    page = client.get(reverse("recommendations:experiment-detail", args=[exp.pk])).content.decode()
    assert "Stop and promote B" in page and 'data-arm="a"' in page
    dup = client.post(reverse("recommendations:experiments"), {"name": "again", "config_b": '{"category_cap": 1}',
                                                               "traffic_b": "0.5"})
    assert dup.status_code == 400 and "Another experiment is running" in dup.content.decode()
    client.post(reverse("recommendations:experiment-stop", args=[exp.pk]), {"promote": "b"})
    exp.refresh_from_db()
    assert exp.status == "stopped" and exp.winner == "b"
    assert TrainedModel.objects.get(active=True) == knn


def test_analyst_cannot_start_or_stop_experiments(client, experiment):
    login(client, A)
    assert client.post(reverse("recommendations:experiment-stop", args=[experiment.pk]), {"promote": "b"}).status_code == 403
    assert client.post(reverse("recommendations:experiments"), {"name": "x"}).status_code == 403


@pytest.mark.parametrize("role", [O, A, S])
def test_customer_page_shows_current_recommendations_with_reasons(client, trained, shop, role):
    login(client, role)
    html = client.get(reverse("accounts:customer-detail", args=[shop["readers"][3].pk])).content.decode()
    assert 'id="recommendations"' in html
    assert "Because you bought Book" in html
    if role == S:
        assert reverse("recommendations:overview") not in html  # no link to pages they cannot open


def test_customer_page_without_a_model_says_so(client, shop):
    login(client, O)
    html = client.get(reverse("accounts:customer-detail", args=[shop["readers"][3].pk])).content.decode()
    assert "No recommendation model is active yet." in html


@pytest.fixture
def compiled_translations(settings):
    call_command("compile_translations", stdout=io.StringIO())
    settings.LOCALE_PATHS = list(settings.LOCALE_PATHS)


def test_pages_render_in_chinese(client, trained, shop, compiled_translations, dimensions):
    tier = Tier.objects.get(dimension__slug="value", slug="high")
    Membership.objects.create(customer=shop["readers"][3], dimension=tier.dimension, tier=tier, since=timezone.now())
    login(client, O)
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    html = client.get(reverse("recommendations:overview")).content.decode()
    assert "立即训练" in html  # "Train now"
    html = client.get(reverse("accounts:customer-detail", args=[shop["readers"][3].pk])).content.decode()
    assert "因为您购买了" in html  # "Because you bought"


def test_every_string_of_the_recommendations_pages_has_a_chinese_translation(settings):
    import polib

    ours = ("recommendations/views", "recommendations/forms", "recommendations/admin", "recommendations/customer_page",
            "recommendations/serving", "recommendations/choices", "recommendations/models", "templates/recommendations/")
    catalogue = polib.pofile(str(settings.LOCALE_PATHS[0] / "zh_Hans" / "LC_MESSAGES" / "django.po"))
    missing = [e.msgid for e in catalogue
               if any(path.startswith(ours) for path, _line in e.occurrences) and (not e.translated() or "fuzzy" in e.flags)]
    assert missing == []
    msgids = {e.msgid for e in catalogue}
    assert {"Train now", "Because you bought %(item)s", "Popular with VIP customers"} <= msgids


def test_model_and_experiment_lists_are_paginated_and_sortable(client, trained):
    from recommendations.views import EXPERIMENTS_PER_PAGE, MODELS_PER_PAGE

    now = timezone.now()
    TrainedModel.objects.bulk_create([TrainedModel(algorithm="popularity" if i % 2 else "item_knn", status="failed",
                                                   as_of=now) for i in range(MODELS_PER_PAGE + 3)])
    Experiment.objects.bulk_create([Experiment(name=f"exp {i:02d}", status="stopped", traffic_b=0.5, started_at=now)
                                    for i in range(EXPERIMENTS_PER_PAGE + 2)])
    login(client, A)
    url = reverse("recommendations:overview")
    first = client.get(url)
    assert first.status_code == 200 and len(first.context["models"]) == MODELS_PER_PAGE
    assert first.context["models"][0].pk > first.context["models"][-1].pk  # newest first
    assert first.context["active"]["customer"].pk == trained.pk  # the active model, on whatever page
    last = client.get(url, {"page": 2})
    assert len(last.context["models"]) == MODELS_PER_PAGE + 4 - MODELS_PER_PAGE  # 28 rows with `trained`
    by_algorithm = client.get(url, {"sort": "algorithm"}).context["models"]
    assert [m.algorithm for m in by_algorithm] == sorted(m.algorithm for m in by_algorithm)
    assert 'aria-sort="ascending"' in client.get(url, {"sort": "algorithm"}).content.decode()
    assert client.get(url, {"sort": "bogus"}).context["sort"] == "-trained"  # unknown: the default

    url = reverse("recommendations:experiments")
    names = [e.name for e in client.get(url, {"sort": "name"}).context["experiments"]]
    assert names == sorted(names) and len(names) == EXPERIMENTS_PER_PAGE
    assert len(client.get(url, {"sort": "name", "page": 2}).context["experiments"]) == 2
