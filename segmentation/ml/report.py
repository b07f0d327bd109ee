"""Plain-text reports of trained models' metrics (for the train_models command and the bench)."""
from __future__ import annotations

from ..choices import ModelKind
from ..models import PredictiveModel


def _f(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def churn_lines(metrics: dict) -> list[str]:
    test, train = metrics["test"], metrics["train"]
    lines = [
        f"  label: {metrics['label']}; evaluation: {metrics['evaluation']}",
        f"  train cutoff {metrics['train_cutoff'][:10]} ({_f(train['rows'])} customers, churn rate {_f(train['positive_rate'])}), "
        f"test cutoff {metrics['test_cutoff'][:10]} ({_f(test['rows'])} customers, churn rate {_f(test['positive_rate'])})",
        f"  test ROC AUC {_f(test['roc_auc'])} (train {_f(train['roc_auc'])})",
        f"  threshold {_f(test['threshold'])} (max F1 on the training period): precision {_f(test['precision'])}, "
        f"recall {_f(test['recall'])}, F1 {_f(test['f1'])}",
        f"  calibration: Brier {_f(test['brier'])} (base-rate Brier {_f(test['brier_base_rate'])}), log loss {_f(test['log_loss'])}, "
        f"mean predicted {_f(test['mean_predicted'])} vs observed {_f(test['positive_rate'])}",
        "  reliability by decile of predicted probability (test):",
        "    decile   rows  predicted  observed",
    ]
    for row in test["calibration"]:
        lines.append(f"    {row['decile']:>6} {row['rows']:>6}  {row['mean_predicted']:>9.3f}  {row['observed']:>8.3f}")
    lines.append(f"  production fit: cutoff {metrics['fit']['cutoff'][:10]}, {_f(metrics['fit']['rows'])} customers, "
                 f"threshold {_f(metrics['fit']['threshold'])}")
    return lines


PREDICTOR_ORDER = ["model", "naive", "bgnbd", "bgnbd_gamma_gamma"]


def value_table(block: dict, title: str) -> list[str]:
    lines = [f"  {title}: evaluation {block['evaluation']}, train cutoff {block['train_cutoff'][:10]}, "
             f"test {block['test_cutoff'][:10]} .. {block['test_end'][:10]} ({block['horizon_days']} days)",
             f"    {'target':<8} {'predictor':<18} {'rows':>7} {'MAE':>9} {'RMSE':>9} {'predicted':>12} {'actual':>12} {'error %':>8}"]
    for target in ("orders", "revenue"):
        # Fixed order (PostgreSQL's jsonb does not keep the keys' order).
        for name, m in sorted(block[target].items(), key=lambda kv: PREDICTOR_ORDER.index(kv[0])
                              if kv[0] in PREDICTOR_ORDER else 99):
            lines.append(f"    {target:<8} {name:<18} {m['rows']:>7,} {m['mae']:>9.3f} {m['rmse']:>9.3f} "
                         f"{m['total_predicted']:>12,.1f} {m['total_actual']:>12,.1f} {_f(m['total_error_pct'], 1):>8}")
    if "bgnbd" in block:
        lines.append(f"    BG/NBD {block['bgnbd']['bgnbd']}, Gamma-Gamma {block['bgnbd']['gamma_gamma']} (time in days)")
    return lines


def value_lines(metrics: dict) -> list[str]:
    return (value_table(metrics["orders_90d"], "orders, next 90 days (predicted_orders_90d)")
            + value_table(metrics["value_365d"], "revenue, next 365 days (predicted_value_365d)"))


def cluster_lines(model: PredictiveModel) -> list[str]:
    m = model.metrics
    lines = [f"  k = {m['k']} by silhouette: " + ", ".join(f"k={k}: {v:.3f}" for k, v in m["silhouette"].items())]
    medians = {c["index"]: c.get("median", {}) for c in m.get("clusters", [])}
    for c in model.clusters.order_by("index"):
        med = medians.get(c.index) or c.centroid
        lines.append(f"  {c.index}: {c.name} - {c.size:,} customers; median recency {_f(med.get('recency_days'), 0)} d, "
                     f"orders {_f(med.get('orders_total'), 1)}, revenue {_f(med.get('revenue_total'), 2)}")
    return lines


def model_report(model: PredictiveModel) -> str:
    head = (f"{model.get_kind_display()} model #{model.pk} ({model.algorithm}): {model.status}, "
            f"{model.training_rows:,} rows, {model.training_seconds:.1f} s{', ACTIVE' if model.active else ''}")
    if model.kind == ModelKind.CHURN:
        body = churn_lines(model.metrics)
    elif model.kind == ModelKind.VALUE:
        body = value_lines(model.metrics)
    else:
        body = cluster_lines(model)
    return "\n".join([head, *body])
