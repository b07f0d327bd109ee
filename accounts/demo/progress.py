"""A tqdm progress reporter for the demo commands (one bar per stage)."""
from __future__ import annotations

import sys

from tqdm import tqdm

STAGES = {"generate": ("Simulating customers", "customers"), "store": ("Storing events", "events")}


class ProgressBars:
    """Callable as progress(stage, advance, total); close() when done."""

    def __init__(self, *, enabled: bool = True):
        self.enabled = enabled
        self.bars: dict[str, tqdm] = {}

    def __call__(self, stage: str, advance: int, total: int) -> None:
        if not self.enabled:
            return
        if stage not in self.bars:
            for bar in self.bars.values():
                bar.close()
            desc, unit = STAGES.get(stage, (stage, "rows"))
            self.bars[stage] = tqdm(total=total, desc=desc, unit=f" {unit}", unit_scale=True, file=sys.stderr,
                                    dynamic_ncols=True, leave=True)
        self.bars[stage].update(advance)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
