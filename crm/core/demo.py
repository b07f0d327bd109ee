"""What `make demo` does after the demo store exists: every later feature gets data to show.

Each step is idempotent and skipped when its work is already done, so `make demo` can be
run again on the same database.
"""
from __future__ import annotations

from collections.abc import Callable


def _tiers() -> str:
    from segmentation.choices import RunStatus
    from segmentation.models import RecomputeRun
    from segmentation.services import recompute_run_create, recompute_tiers

    if RecomputeRun.objects.filter(status=RunStatus.SUCCEEDED).exists():
        return "tiers already computed"
    run = recompute_tiers(run=recompute_run_create(mode="full"))
    return f"tiered {run.customers} customers ({run.changes} tier changes recorded)"


DEMO_STEPS: list[tuple[str, Callable[[], str]]] = [
    ("Tiers", _tiers),
]


def demo_extras(*, report: Callable[[str], None]) -> None:
    for name, step in DEMO_STEPS:
        report(f"{name}: {step()}")
