"""Clustering, churn and customer-value algorithms: numpy, scipy and scikit-learn, no ORM.

Everything a production model learns is stored as an *artefact* that
segmentation.engine.model_output_sql compiles to SQL:

    {"inputs": [{"field", "fill", "log1p", "mean", "scale"}, ...],
     "outputs": {column: {"intercept", "coef", "link": logistic|exp|identity, "clip"?}},
     "centroids": [[...], ...]}

`transform` and `artefact_predict` are the Python mirror of that SQL (same fill, log1p,
standardisation, clipping of the linear predictor to [-40, 40]); tests check that the two agree.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

LINEAR_CLIP = 40.0  # engine.model_output_sql clips the linear predictor to [-40, 40]


# ---------------------------------------------------------------------------------------
# Inputs: fill, log1p, standardise (the artefact's "inputs")
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InputSpec:
    """How one raw feature becomes a model input. `fill` "max" means the column's maximum
    (for day counts that are NULL when the event never happened: "longer ago than anyone")."""

    field: str
    log1p: bool = False
    fill: float | str = 0.0


def _prepared(raw: np.ndarray, fill: float, log1p: bool) -> np.ndarray:
    x = np.where(np.isnan(raw), fill, raw).astype(float)
    if log1p:
        x = np.log1p(np.maximum(x, 0.0))
    return x


def fit_inputs(raw: np.ndarray, specs: Sequence[InputSpec]) -> list[dict]:
    """Learn fill values, means and scales; returns the artefact's "inputs" list.

    A constant column gets scale 1 (it then carries no information and, with L2
    regularisation, a zero weight).
    """
    raw = np.asarray(raw, dtype=float)
    inputs = []
    for j, spec in enumerate(specs):
        col = raw[:, j]
        if spec.fill == "max":
            finite = col[~np.isnan(col)]
            fill = float(finite.max()) if finite.size else 0.0
        else:
            fill = float(spec.fill)
        x = _prepared(col, fill, spec.log1p)
        mean = float(x.mean()) if x.size else 0.0
        scale = float(x.std()) if x.size else 1.0
        inputs.append({"field": spec.field, "fill": fill, "log1p": bool(spec.log1p), "mean": mean,
                       "scale": scale if scale > 1e-12 else 1.0})
    return inputs


def transform(raw: np.ndarray, inputs: Sequence[dict]) -> np.ndarray:
    """Raw features (NaN for NULL) -> standardised model inputs, exactly as the SQL does."""
    raw = np.asarray(raw, dtype=float)
    cols = [(_prepared(raw[:, j], inp.get("fill", 0.0), inp.get("log1p", False)) - inp.get("mean", 0.0))
            / (inp.get("scale", 1.0) or 1.0) for j, inp in enumerate(inputs)]
    return np.column_stack(cols) if cols else np.zeros((raw.shape[0], 0))


def untransform(z: np.ndarray, inputs: Sequence[dict]) -> np.ndarray:
    """Standardised inputs -> original units (the inverse of `transform`, without the fill)."""
    z = np.atleast_2d(np.asarray(z, dtype=float))
    out = np.empty_like(z)
    for j, inp in enumerate(inputs):
        x = z[:, j] * (inp.get("scale", 1.0) or 1.0) + inp.get("mean", 0.0)
        out[:, j] = np.expm1(x) if inp.get("log1p") else x
    return out


def linear_output(z: np.ndarray, spec: dict) -> np.ndarray:
    eta = np.clip(spec["intercept"] + z @ np.asarray(spec["coef"], dtype=float), -LINEAR_CLIP, LINEAR_CLIP)
    link = spec.get("link", "identity")
    if link == "logistic":
        y = 1.0 / (1.0 + np.exp(-eta))
    elif link == "exp":
        y = np.exp(eta)
    else:
        y = eta
    if "clip" in spec:
        y = np.clip(y, *spec["clip"])
    return y


def nearest_centroid(z: np.ndarray, centroids: Sequence[Sequence[float]]) -> np.ndarray:
    """Index of the nearest centroid; ties go to the lower index (as the SQL CASE does)."""
    c = np.asarray(centroids, dtype=float)
    d = ((z[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
    return d.argmin(axis=1)


def artefact_predict(artefact: dict, raw: np.ndarray) -> dict[str, np.ndarray]:
    """Python mirror of engine.model_output_sql: every output of the artefact for raw rows."""
    z = transform(raw, artefact["inputs"])
    out = {col: linear_output(z, spec) for col, spec in artefact.get("outputs", {}).items()}
    if "centroids" in artefact:
        out["cluster"] = nearest_centroid(z, artefact["centroids"])
    return out


# ---------------------------------------------------------------------------------------
# Clustering
# ---------------------------------------------------------------------------------------
@dataclass
class ClusteringResult:
    k: int
    centroids: np.ndarray  # standardised
    labels: np.ndarray
    silhouette: dict[int, float]
    inertia: float


def kmeans_auto(z: np.ndarray, *, k_min: int = 3, k_max: int = 8, sample: int = 5000, seed: int = 0,
                n_init: int = 4, fit_rows: int = 200_000) -> ClusteringResult:
    """k-means with k chosen by the silhouette score on a sample (k_min..k_max).

    The silhouette is computed on at most `sample` rows (it is quadratic); the final model is
    fitted on at most `fit_rows` rows and then assigns every row to its nearest centroid.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    n = z.shape[0]
    if n < 2:
        raise ValueError("clustering needs at least two customers")
    k_max = max(1, min(k_max, n - 1))
    k_min = max(2, min(k_min, k_max))
    idx = rng.choice(n, size=min(n, sample), replace=False)
    zs = z[idx]
    scores: dict[int, float] = {}
    for k in range(k_min, k_max + 1):
        if k >= len(np.unique(zs, axis=0)):
            break
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(zs)
        if len(set(km.labels_)) < 2:
            continue
        scores[k] = float(silhouette_score(zs, km.labels_, random_state=seed))
    best = max(scores, key=lambda k: (round(scores[k], 6), -k)) if scores else min(2, n)
    fit_idx = rng.choice(n, size=min(n, fit_rows), replace=False) if n > fit_rows else np.arange(n)
    km = KMeans(n_clusters=best, n_init=n_init, random_state=seed).fit(z[fit_idx])
    centroids = km.cluster_centers_
    labels = nearest_centroid(z, centroids)
    inertia = float(((z - centroids[labels]) ** 2).sum())
    return ClusteringResult(k=best, centroids=centroids, labels=labels, silhouette=scores, inertia=inertia)


def order_clusters(result: ClusteringResult, *, by: np.ndarray) -> ClusteringResult:
    """Renumber clusters by descending `by` (one value per centroid), e.g. value first."""
    order = np.argsort(-np.asarray(by), kind="stable")
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    return ClusteringResult(k=result.k, centroids=result.centroids[order], labels=remap[result.labels],
                            silhouette=result.silhouette, inertia=result.inertia)


# Thresholds on a centroid's standardised (log-scaled) value: the population mean is 0 and
# one unit is one population standard deviation.
TOP, HIGH, LOW = 1.25, 0.5, -0.5
RECENT_DAYS, FAIRLY_RECENT_DAYS = 30, 90


def name_cluster(profile: dict[str, float], z: dict[str, float]) -> str:
    """A readable name from a centroid: `profile` in original units, `z` standardised.

    Rules, in order: customers who have not bought are "Non-buyers" (recently active or
    inactive, engaged); buyers are named by spend relative to the population (top / high / mid /
    low spenders, or "One-time buyers" when the typical customer bought once and spends no more
    than most), then frequency (frequent / infrequent), then recency (recent: last purchase
    within 30 days; fairly recent: within 90; otherwise cooling or lapsed relative to the
    population), then engagement (engaged).
    """
    orders = profile.get("orders_total")
    parts: list[str] = []
    engaged = z.get("sessions_30d", 0.0) >= HIGH or z.get("events_30d", 0.0) >= HIGH
    if orders is not None and orders < 0.5:
        parts.append("Non-buyers")
        act = z.get("activity_recency_days")
        if act is not None:
            parts.append("recently active" if act <= LOW else "inactive" if act >= HIGH else "")
        if engaged:
            parts.append("engaged")
        return ", ".join(p for p in parts if p)
    spend = z.get("revenue_total", 0.0)
    one_time = orders is not None and orders < 1.5
    if one_time and spend < HIGH:
        parts.append("One-time buyers")
    else:
        parts.append("Top spenders" if spend >= TOP else "High spenders" if spend >= HIGH
                     else "Low spenders" if spend <= LOW else "Mid spenders")
        freq = z.get("orders_total", 0.0)
        parts.append("frequent" if freq >= HIGH else "infrequent" if freq <= LOW or one_time else "")
    days, rec = profile.get("recency_days"), z.get("recency_days")
    if days is not None and days <= RECENT_DAYS:
        parts.append("recent")
    elif days is not None and days <= FAIRLY_RECENT_DAYS:
        parts.append("fairly recent")
    elif rec is not None:
        parts.append("cooling" if rec <= LOW else "lapsed" if rec >= HIGH else "")
    if engaged:
        parts.append("engaged")
    return ", ".join(p for p in parts if p)


def cluster_names(centroids: np.ndarray, inputs: Sequence[dict]) -> list[str]:
    """Names for every centroid, made unique (a repeated name gets " (2)", " (3)" ...)."""
    fields = [inp["field"] for inp in inputs]
    originals = untransform(centroids, inputs)
    names: list[str] = []
    for c, orig in zip(centroids, originals, strict=True):
        name = name_cluster(dict(zip(fields, orig.tolist(), strict=True)), dict(zip(fields, c.tolist(), strict=True)))
        base, n = name, 2
        while name in names:
            name, n = f"{base} ({n})", n + 1
        names.append(name)
    return names


# ---------------------------------------------------------------------------------------
# Churn: logistic regression and its evaluation
# ---------------------------------------------------------------------------------------
def fit_logistic(z: np.ndarray, y: np.ndarray, *, c: float = 1.0) -> dict:
    """L2-regularised logistic regression -> an artefact output (link logistic)."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y).astype(int)
    if len(np.unique(y)) < 2:
        # One class only: predict the (smoothed) base rate.
        rate = (y.sum() + 0.5) / (len(y) + 1.0)
        return {"intercept": float(math.log(rate / (1 - rate))), "coef": [0.0] * z.shape[1], "link": "logistic"}
    clf = LogisticRegression(C=c, max_iter=2000).fit(z, y)
    return {"intercept": float(clf.intercept_[0]), "coef": [float(v) for v in clf.coef_[0]], "link": "logistic"}


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The probability threshold that maximises F1 (positives: p >= threshold)."""
    from sklearn.metrics import precision_recall_curve

    y = np.asarray(y).astype(int)
    if y.sum() == 0:
        return 0.5
    precision, recall, thresholds = precision_recall_curve(y, p)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)[:-1]
    return float(thresholds[int(np.argmax(f1))]) if len(thresholds) else 0.5


def reliability_table(y: np.ndarray, p: np.ndarray, *, bins: int = 10) -> list[dict]:
    """Calibration by decile of the predicted probability: rows, mean predicted, observed rate."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    table = []
    for i, chunk in enumerate(np.array_split(order, bins)):
        if chunk.size == 0:
            continue
        table.append({"decile": i + 1, "rows": int(chunk.size), "mean_predicted": round(float(p[chunk].mean()), 4),
                      "observed": round(float(y[chunk].mean()), 4),
                      "min_p": round(float(p[chunk].min()), 4), "max_p": round(float(p[chunk].max()), 4)})
    return table


def classification_metrics(y: np.ndarray, p: np.ndarray, *, threshold: float) -> dict:
    """ROC AUC, precision/recall/F1 at the threshold, Brier score, calibration table."""
    from sklearn.metrics import brier_score_loss, f1_score, log_loss, precision_score, recall_score, roc_auc_score

    y = np.asarray(y).astype(int)
    pred = (p >= threshold).astype(int)
    both = len(np.unique(y)) == 2
    return {
        "rows": int(len(y)),
        "positive_rate": round(float(y.mean()), 4) if len(y) else None,
        "roc_auc": round(float(roc_auc_score(y, p)), 4) if both else None,
        "threshold": round(float(threshold), 4),
        "precision": round(float(precision_score(y, pred, zero_division=0)), 4),
        "recall": round(float(recall_score(y, pred, zero_division=0)), 4),
        "f1": round(float(f1_score(y, pred, zero_division=0)), 4),
        "brier": round(float(brier_score_loss(y, p)), 4),
        "brier_base_rate": round(float(np.mean((y - y.mean()) ** 2)), 4) if len(y) else None,
        "log_loss": round(float(log_loss(y, np.clip(p, 1e-12, 1 - 1e-12), labels=[0, 1])), 4),
        "mean_predicted": round(float(np.mean(p)), 4),
        "calibration": reliability_table(y, p),
    }


# ---------------------------------------------------------------------------------------
# Customer value: log-link (Poisson) regression
# ---------------------------------------------------------------------------------------
def fit_poisson(z: np.ndarray, y: np.ndarray, *, alpha: float = 1e-4, clip: Sequence[float] | None = None) -> dict:
    """Poisson regression with a log link -> an artefact output (link exp).

    Works for counts and, as a quasi-Poisson mean model, for non-negative amounts (revenue):
    the fitted mean is exp(b0 + b.x). The target is divided by its mean while fitting (the
    solver converges better) and the intercept gets log(mean) back.
    """
    from sklearn.linear_model import PoissonRegressor

    y = np.maximum(np.asarray(y, dtype=float), 0.0)
    scale = float(y.mean()) if y.size and y.mean() > 0 else 1.0
    if y.sum() == 0:
        spec = {"intercept": -LINEAR_CLIP / 2, "coef": [0.0] * z.shape[1], "link": "exp"}
    else:
        reg = PoissonRegressor(alpha=alpha, solver="newton-cholesky", max_iter=300).fit(z, y / scale)
        spec = {"intercept": float(reg.intercept_ + math.log(scale)), "coef": [float(v) for v in reg.coef_], "link": "exp"}
    if clip is not None:
        spec["clip"] = [float(clip[0]), float(clip[1])]
    return spec


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict:
    """MAE, RMSE, totals (predicted vs actual) and the correlation of per-customer values."""
    y = np.asarray(y, dtype=float)
    pred = np.asarray(pred, dtype=float)
    err = pred - y
    corr = float(np.corrcoef(y, pred)[0, 1]) if len(y) > 1 and y.std() > 0 and pred.std() > 0 else None
    return {"rows": int(len(y)), "mae": round(float(np.abs(err).mean()), 4), "rmse": round(float(np.sqrt((err ** 2).mean())), 4),
            "total_predicted": round(float(pred.sum()), 2), "total_actual": round(float(y.sum()), 2),
            "total_error_pct": round(float(100 * (pred.sum() - y.sum()) / y.sum()), 2) if y.sum() else None,
            "correlation": round(corr, 4) if corr is not None else None}


# ---------------------------------------------------------------------------------------
# BG/NBD + Gamma-Gamma (Fader, Hardie & Lee 2005; Fader, Hardie & Lee 2005b) for comparison
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


def _bgnbd_ll(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    r, alpha, a, b = np.exp(params)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def _weighted_unique(*cols: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct rows of the columns and how often each occurs (likelihoods are sums over rows)."""
    rows, counts = np.unique(np.column_stack(cols), axis=0, return_counts=True)
    return [rows[:, j] for j in range(rows.shape[1])], counts.astype(float)


def fit_bgnbd(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> BgNbd:
    """Maximum likelihood for BG/NBD: x repeat purchases, t_x time of the last, T age (same unit).

    Time is rescaled to the mean age while fitting (well-conditioned), identical rows are
    weighted, and the log-parameters are bounded so the optimiser cannot run off to infinity.
    """
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    unit = float(T.mean()) if T.size and T.mean() > 0 else 1.0
    (ux, ut, uT), w = _weighted_unique(x, t_x / unit, T / unit)
    total = w.sum()

    def nll(p):
        return -float(np.dot(w, _bgnbd_ll(p, ux, ut, uT))) / total

    best = None
    for start in ([0.0, 0.0, 0.0, 0.0], [-1.0, -1.0, -0.5, 0.5], [0.5, 0.5, 1.0, 1.0]):
        res = optimize.minimize(nll, np.array(start), method="L-BFGS-B", bounds=[(-8.0, 8.0)] * 4)
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    r, alpha, a, b = np.exp(best.x)
    return BgNbd(float(r), float(alpha * unit), float(a), float(b))


def bgnbd_expected(m: BgNbd, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Expected purchases in the next `t` time units, given each customer's (x, t_x, T)."""
    r, alpha, a, b = m.r, m.alpha, m.a, m.b
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    first = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    with np.errstate(divide="ignore", invalid="ignore"):
        second = np.where(x > 0, a / np.maximum(b + x - 1, 1e-300) * ((alpha + T) / (alpha + t_x)) ** (r + x), 0.0)
    return first / (1 + second)


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    v: float

    def as_dict(self) -> dict:
        return {"p": self.p, "q": self.q, "v": self.v}


def fit_gamma_gamma(x: np.ndarray, m: np.ndarray) -> GammaGamma:
    """Gamma-Gamma spend model on customers with x >= 1 repeat purchases of mean value m > 0."""
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    keep = (x > 0) & (m > 0)
    x, m = x[keep], m[keep]

    unit = float(m.mean()) if m.size else 1.0  # money rescaled while fitting, like time above
    m = m / unit

    def nll(params):
        p, q, v = np.exp(params)
        ll = (special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q) + q * np.log(v)
              + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(x * m + v))
        return -ll.mean()

    best = None
    for start in ([0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [2.0, 1.0, 1.0]):
        res = optimize.minimize(nll, np.array(start), method="L-BFGS-B", bounds=[(-8.0, 8.0)] * 3)
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    p, q, v = np.exp(best.x)
    return GammaGamma(float(p), float(q), float(v * unit))


def gamma_gamma_expected(g: GammaGamma, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Expected value of a transaction; customers without repeat purchases get the population mean."""
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    population = g.p * g.v / (g.q - 1) if g.q > 1 else float(np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = g.p * (g.v + x * m) / (g.p * x + g.q - 1)
    return np.where(x > 0, cond, population)
