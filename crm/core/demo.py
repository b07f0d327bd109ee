"""What `make demo` does after the demo store exists: every later feature gets data to show.

Each step is idempotent and skipped when its work is already done, so `make demo` can be
run again on the same database.
"""
from __future__ import annotations

from collections.abc import Callable


HISTORY_WEEKS = 8


def _tiers() -> str:
    """Tier the demo as of each of the last weeks, then now: trend charts and the migration
    diagram have a history to show, as they would after weeks of nightly recomputes."""
    from datetime import timedelta

    from segmentation.choices import RunStatus
    from segmentation.models import RecomputeRun
    from segmentation.services import default_as_of, recompute_run_create, recompute_tiers

    if RecomputeRun.objects.filter(status=RunStatus.SUCCEEDED).exists():
        return "tiers already computed"
    now = default_as_of()
    changes = 0
    for weeks in range(HISTORY_WEEKS, -1, -1):
        run = recompute_tiers(run=recompute_run_create(mode="full", as_of=now - timedelta(weeks=weeks)))
        changes += run.changes
    return f"tiered {run.customers} customers weekly over {HISTORY_WEEKS} weeks ({changes} tier changes recorded)"


def _models() -> str:
    from segmentation.models import PredictiveModel
    from segmentation.ml.services import models_train

    if PredictiveModel.objects.filter(active=True).exists():
        return "models already trained"
    trained = models_train(activate=True)
    return ", ".join(f"{m.kind} ({m.algorithm})" for m in trained) + " trained and activated"


def _rescore() -> str:
    """A full recompute writes the new models' scores and the clusters dimension."""
    from segmentation.services import recompute_run_create, recompute_tiers

    run = recompute_tiers(run=recompute_run_create(mode="full"))
    return f"recomputed with the models: {run.changes} tier changes"


def _recs() -> str:
    from recommendations.services import recommendations_install_demo

    return recommendations_install_demo()


def _campaigns() -> str:
    from campaigns.demo import campaigns_install_demo

    out = campaigns_install_demo()
    created = ", ".join(out["created"]) or "none new"
    return f"campaigns created: {created}; " + (f"campaign {out['run']} run" if out["run"] else "no new run")


DEMO_STEPS: list[tuple[str, Callable[[], str]]] = [
    ("Tiers", _tiers),
    ("Churn, value and cluster models", _models),
    ("Tiers with model scores", _rescore),
    ("Recommendations", _recs),
    ("Campaigns", _campaigns),
]


def demo_extras(*, report: Callable[[str], None]) -> None:
    for name, step in DEMO_STEPS:
        report(f"{name}: {step()}")
