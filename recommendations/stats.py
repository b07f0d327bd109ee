"""Significance of an A/B difference in a proportion: two-proportion z-test and 95% intervals."""
from __future__ import annotations

import math

from scipy.stats import norm

Z95 = float(norm.ppf(0.975))


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion (None without trials)."""
    if trials <= 0:
        return None
    p = successes / trials
    den = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / den
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_test(x_a: int, n_a: int, x_b: int, n_b: int, z: float = Z95) -> dict | None:
    """B against A: difference of proportions, its 95% interval (unpooled), the pooled z statistic
    and the two-sided p-value. None when an arm has no trials."""
    if n_a <= 0 or n_b <= 0:
        return None
    p_a, p_b = x_a / n_a, x_b / n_b
    diff = p_b - p_a
    pooled = (x_a + x_b) / (n_a + n_b)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    if se_pooled == 0:
        z_stat, p_value = 0.0, 1.0
    else:
        z_stat = diff / se_pooled
        p_value = float(2 * norm.sf(abs(z_stat)))
    return {"diff": diff, "ci": (diff - z * se, diff + z * se), "z": z_stat, "p_value": p_value,
            "significant": p_value < 0.05, "relative": (diff / p_a) if p_a else None}
