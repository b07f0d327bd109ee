"""The model registry: training from the events table records metrics, sizes and artefacts;
serving loads the artefact and never retrains; one active model per use; tasks, schedule, demo."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from recommendations import model_store
from recommendations.artefacts import loads
from recommendations.models import TrainedModel
from recommendations.serving import customer_recommendations
from recommendations.services import (
    ModelNotReady,
    recommendations_install_demo,
    recommender_activate,
    recommender_train,
    recommender_train_request,
)

from .conftest import DAY, customer, event

pytestmark = pytest.mark.django_db


def test_training_evaluates_on_a_time_holdout_and_stores_metrics_and_artefact(shop):
    """The last 14 days are held out: readers and runners buy two more of their kind there."""
    now = shop["now"]
    for n, reader in enumerate(shop["readers"][:20]):
        event(reader, shop["books"][(n + 7) % 12], "purchase", at=now - 3 * DAY, amount="12.00")
    for n, runner in enumerate(shop["runners"][:20]):
        event(runner, shop["sports"][(n + 7) % 12], "purchase", at=now - 3 * DAY, amount="30.00")
    model = recommender_train(algorithm="ease", params={"l2": 10}, window_days=365, holdout_days=14, as_of=now)
    assert model.status == "succeeded", model.error
    m = model.metrics
    assert m["k"] == 10 and m["test_users"] == 40 and m["holdout_days"] == 14
    for key in ("precision", "recall", "ndcg", "map", "coverage"):
        assert 0 <= m[key] <= 1
    assert m["ndcg"] > m["baseline_popularity"]["ndcg"]  # taste beats popularity on this shop
    assert m["precision"] >= 0.09  # at least one hit in ten for most customers
    assert (model.n_users, model.n_items) == (60, 28)
    assert model.n_interactions > 0 and model.training_seconds > 0 and model.trained_at
    assert model.window_start <= model.window_end <= now
    state = loads(model.artefact)
    assert sorted(state["item_pks"].tolist()) == state["item_pks"].tolist()
    assert model.artefact_bytes == len(bytes(model.artefact)) and len(model.artefact_sha256) == 64
    assert {"nb_indptr", "pop", "trend"} <= set(state)


def test_serving_loads_the_artefact_once_and_never_retrains(trained, monkeypatch, django_assert_num_queries):
    from recommendations.algorithms import EASE

    def no_fit(*args, **kwargs):
        raise AssertionError("serving must not train")

    monkeypatch.setattr(EASE, "fit", no_fit)
    model_store.forget_loaded_models()
    first = model_store.serving_model(trained.pk, trained.artefact_sha256)
    with django_assert_num_queries(0):
        assert model_store.serving_model(trained.pk, trained.artefact_sha256) is first
    data = customer_recommendations(external_id="reader-1", limit=3, use_cache=False)
    assert len(data["items"]) == 3


def test_a_corrupted_artefact_is_refused(trained):
    TrainedModel.objects.filter(pk=trained.pk).update(artefact_sha256="0" * 64)
    model_store.forget_loaded_models()
    with pytest.raises(ValueError, match="checksum"):
        model_store.serving_model(trained.pk, "0" * 64)


@pytest.mark.parametrize("algorithm", ["als", "hybrid", "item_knn", "rp3beta", "popularity"])
def test_every_algorithm_trains_and_serves(api_client, shop, algorithm):
    model = recommender_train(algorithm=algorithm, holdout_days=0, params={"factors": 8, "iterations": 5} if algorithm == "als" else {})
    assert model.status == "succeeded", model.error
    recommender_activate(model=model)
    late = customer("late")
    event(late, shop["sports"][2], "view", at=timezone.now() - timedelta(hours=2))
    data = api_client.get("/api/v1/customers/late/recommendations/?limit=3").json()
    assert len(data["items"]) == 3
    if algorithm != "popularity":  # a personal model folds the new history in
        assert data["items"][0]["category"] == "Sports"


def test_one_active_model_per_use(shop):
    a = recommender_activate(model=recommender_train(algorithm="ease", holdout_days=0))
    b = recommender_activate(model=recommender_train(algorithm="item_knn", holdout_days=0))
    a.refresh_from_db()
    assert b.active and not a.active
    assert model_store.active_model_id() == b.pk
    with pytest.raises(IntegrityError), transaction.atomic():
        TrainedModel.objects.filter(pk=a.pk).update(active=True)


def test_a_failed_training_is_recorded_and_cannot_be_activated(db):
    model = recommender_train(algorithm="ease", holdout_days=0)
    assert model.status == "failed" and "No interactions" in model.error
    with pytest.raises(ModelNotReady):
        recommender_activate(model=model)


def test_train_now_queues_the_task_which_runs_once(shop, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        model = recommender_train_request(algorithm="ease", params={"l2": 10}, holdout_days=0)
    model.refresh_from_db()
    assert model.status == "succeeded" and model.progress == 100
    trained_at = model.trained_at
    from recommendations.tasks import recommender_train as task

    task(model.pk)  # delivered twice: nothing new
    model.refresh_from_db()
    assert model.trained_at == trained_at


def test_unknown_parameters_are_refused_by_name(db):
    from crm.core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="bogus"):
        recommender_train_request(algorithm="ease", params={"bogus": 1})


def test_the_nightly_training_is_scheduled():
    task = PeriodicTask.objects.get(name="Train recommendations (nightly)")
    assert task.task == "recommendations.tasks.recommender_train_nightly" and task.crontab is not None


def test_nightly_training_activates_its_model(shop):
    from recommendations.tasks import recommender_train_nightly

    recommender_train_nightly(algorithm="ease", holdout_days=0)
    assert TrainedModel.objects.get(active=True).algorithm == "ease"


def test_demo_install_trains_activates_and_is_idempotent(shop):
    message = recommendations_install_demo()
    assert "activated" in message
    assert recommendations_install_demo() == "a recommendation model is already active"
    assert TrainedModel.objects.filter(active=True).count() == 1


def test_artefact_neighbours_are_bounded(shop):
    model = recommender_train(algorithm="ease", holdout_days=0, params={"neighbours": 3})
    state = loads(model.artefact)
    assert np.diff(state["nb_indptr"]).max() <= 3
