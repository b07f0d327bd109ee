"""Reads and small helpers behind the segmentation staff pages (segmentation/views.py).

The writes the pages need are the services of segmentation/services.py.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import Customer
from crm.core.translations import translated_text

from .choices import ModelKind, RunStatus
from .models import (Cluster, CustomerFeatures, Dimension, Membership, PredictiveModel, RecomputeRun, Segment, Tier,
                     TierChange, TierOverride, TierSnapshot)
from .rules import ATTR, TIER, compile_rule, field_catalogue
from .selectors import audience_count, dimensions_with_counts, latest_as_of

# --- Labels (translated) of rule fields and operators -------------------------------------------
# rules.FIELDS carries English labels for the API; the staff pages show these, translated.
FIELD_LABELS = {
    "recency_days": _("Days since last purchase"),
    "activity_recency_days": _("Days since last activity"),
    "days_since_signup": _("Days since sign-up (or first seen)"),
    "tenure_days": _("Days since first purchase"),
    "last_purchase_at": _("Last purchase"),
    "last_activity_at": _("Last activity"),
    "first_purchase_at": _("First purchase"),
    "joined_at": _("Joined (sign-up, else first seen)"),
    "orders_30d": _("Orders, last 30 days"),
    "orders_90d": _("Orders, last 90 days"),
    "orders_prev_90d": _("Orders, the 90 days before the last 90"),
    "orders_365d": _("Orders, last 365 days"),
    "orders_total": _("Orders, all time"),
    "revenue_30d": _("Revenue, last 30 days"),
    "revenue_90d": _("Revenue, last 90 days"),
    "revenue_365d": _("Revenue, last 365 days"),
    "revenue_total": _("Revenue, all time"),
    "avg_order_value": _("Average order value"),
    "sessions_30d": _("Active days, last 30 days"),
    "events_30d": _("Events, last 30 days"),
    "r_score": _("R score (1-5)"),
    "f_score": _("F score (1-5)"),
    "m_score": _("M score (1-5)"),
    "rfm_score": _("R+F+M (3-15)"),
    "churn_probability": _("Churn probability (0-1)"),
    "predicted_orders_90d": _("Predicted orders, next 90 days"),
    "predicted_value_365d": _("Predicted revenue, next 365 days"),
    "cluster": _("Cluster"),
    "avg_sentiment": _("Average feedback sentiment (-1..1)"),
    "marketing_consent": _("Marketing consent"),
    "source_platform": _("Source platform"),
    "email": _("E-mail"),
    "signup_at": _("Signed up"),
    "erased": _("Erased"),
}
OP_LABELS = {
    "=": "=", "!=": "≠", "<": "<", "<=": "≤", ">": ">", ">=": "≥",
    "in": _("is one of"), "not_in": _("is none of"), "between": _("is between"), "contains": _("contains"),
    "is_null": _("is empty"), "within_last": _("within the last (days)"), "not_within_last": _("not within the last (days)"),
}
GROUP_LABELS = {"all": _("all of"), "any": _("any of")}
FEATURE_GROUPS = (
    ("features", _("Features")), ("profile", _("Profile")), ("attributes", _("Customer attributes")), ("tiers", _("Tiers")),
)
PROFILE_FIELDS = {"marketing_consent", "source_platform", "email", "signup_at", "erased"}


def field_label(name: str) -> str:
    if name in FIELD_LABELS:
        return str(FIELD_LABELS[name])
    if name.startswith("attributes."):
        return gettext("Attribute “%(key)s”") % {"key": name.split(".", 1)[1]}
    return name


def builder_config(*, exclude_dimension: str | None = None) -> dict[str, Any]:
    """What static/js/rule-builder.js needs: fields with type, operators, group and values; labels."""
    fields = []
    tier_labels: dict[str, dict[str, str]] = {}
    dimension_names: dict[str, str] = {}
    for dim in Dimension.objects.prefetch_related("tiers").order_by("order", "slug"):
        tier_labels[dim.slug] = {t.slug: t.display_name for t in dim.tiers.all()}
        dimension_names[dim.slug] = dim.display_name
    for entry in field_catalogue():
        name = entry["field"]
        if entry["type"] == TIER:
            dim = name.split(":", 1)[1]
            if dim == exclude_dimension:
                continue  # a tier rule cannot refer to its own dimension
            label = gettext("Tier: %(dimension)s") % {"dimension": dimension_names.get(dim, entry["label"][6:])}
            fields.append({**entry, "group": "tiers", "label": label, "value_labels": tier_labels.get(dim, {})})
        elif entry["type"] == ATTR:
            fields.append({**entry, "field": "attributes.", "group": "attributes", "label": str(_("Customer attribute…"))})
        else:
            group = "profile" if name in PROFILE_FIELDS else "features"
            fields.append({**entry, "group": group, "label": field_label(name)})
    return {
        "fields": fields,
        "groups": [{"key": k, "label": str(v)} for k, v in FEATURE_GROUPS],
        "ops": {k: str(v) for k, v in OP_LABELS.items()},
        "text": {
            "all": str(_("All of these are true")), "any": str(_("Any of these is true")),
            "add_condition": str(_("Add condition")), "add_group": str(_("Add group")),
            "remove": str(_("Remove")), "remove_group": str(_("Remove group")),
            "field": str(_("Field")), "operator": str(_("Operator")), "value": str(_("Value")),
            "attribute_key": str(_("Attribute name")), "low": str(_("From")), "high": str(_("To")),
            "yes": str(_("yes")), "no": str(_("no")), "empty": str(_("is empty")), "not_empty": str(_("is not empty")),
            "list_hint": str(_("Comma-separated")),
            "empty_rule": str(_("No conditions: this rule matches nobody (right for a fallback tier). Add a condition to start.")),
            "empty_group": str(_("An empty “all” group matches everybody; an empty “any” group matches nobody.")),
            "json_error": str(_("The JSON is not valid:")), "counting": str(_("Counting…")),
            "matches": str(_("customers match this rule")), "in_tier": str(_("would be in this tier (first matching tier wins)")),
            "sample": str(_("Sample of matching customers")), "no_sample": str(_("Nobody matches.")),
            "errors": str(_("The rule has errors:")), "failed": str(_("The preview could not be loaded.")),
            "as_of": str(_("as of")), "builder_label": str(_("Rule builder")), "root": str(_("rule")),
        },
    }


# --- Readable rules -----------------------------------------------------------------------------
def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, list):
        return ", ".join(_value_text(v) for v in value)
    return str(value)


def _condition_text(node: dict) -> str:
    name, op, value = node.get("field", "?"), node.get("op", "?"), node.get("value")
    label = field_label(name) if not str(name).startswith("tier:") else gettext("Tier: %(dimension)s") % {"dimension": name[5:]}
    if op == "is_null":
        return f"{label} {gettext('is empty') if value else gettext('is not empty')}"
    if op == "between" and isinstance(value, list) and len(value) == 2:
        return gettext("%(field)s is between %(low)s and %(high)s") % {"field": label, "low": value[0], "high": value[1]}
    return f"{label} {OP_LABELS.get(op, op)} {_value_text(value)}"


def rule_html(rule: Any) -> SafeString:
    """A rule as nested lists a person can read ("all of: Days since last activity ≤ 30 ...")."""
    if rule in ({}, None):
        return format_html('<span class="text-body-secondary">{}</span>', gettext("No rule: matches nobody (fallback)."))

    def node(n: Any) -> SafeString:
        if isinstance(n, dict):
            for key in ("all", "any"):
                if key in n and isinstance(n[key], list):
                    items = format_html_join("", "<li>{}</li>", ((node(c),) for c in n[key]))
                    return format_html('<span class="rule-group-label">{}</span><ul class="rule-readable">{}</ul>',
                                       GROUP_LABELS[key], items)
            return format_html('<span class="rule-condition">{}</span>', _condition_text(n))
        return format_html("<code>{}</code>", json.dumps(n))

    return node(rule)


# --- Overview -------------------------------------------------------------------------------------
@dataclass
class TierRow:
    tier: Tier
    customers: int
    share: float  # percent of the dimension's members


def dimensions_overview() -> list[dict]:
    """Active dimensions with their tiers, sizes and shares (selectors.dimensions_with_counts)."""
    out = []
    for dim in dimensions_with_counts():
        dim_tiers = list(dim.tiers.all())
        total = sum(t.customers for t in dim_tiers)
        rows = [TierRow(t, t.customers, (100.0 * t.customers / total) if total else 0.0) for t in dim_tiers]
        out.append({"dimension": dim, "rows": rows, "total": total})
    return out


def tier_trends(*, days: int = 180) -> dict[str, dict]:
    """{dimension slug: {"dates": [...], "series": [{"name", "colour", "slug", "data": [...]}]}} from TierSnapshot."""
    latest = TierSnapshot.objects.order_by("-date").values_list("date", flat=True).first()
    if latest is None:
        return {}
    since: date = latest - timedelta(days=days)
    rows = (TierSnapshot.objects.filter(date__gte=since, dimension__active=True)
            .values_list("dimension__slug", "date", "tier__slug", "tier__name", "tier__translations", "tier__colour",
                         "tier__order", "customers")
            .order_by("date"))
    by_dim: dict[str, dict] = {}
    for dim, day, slug, name, translations, colour, order, customers in rows:
        d = by_dim.setdefault(dim, {"dates": [], "tiers": OrderedDict(), "values": {}})
        iso = day.isoformat()
        if not d["dates"] or d["dates"][-1] != iso:
            d["dates"].append(iso)
        d["tiers"].setdefault(slug, (translated_text(name, translations, "name"), colour, order))
        d["values"][(slug, iso)] = customers
    out = {}
    for dim, d in by_dim.items():
        series = [{"slug": slug, "name": name, "colour": colour, "data": [d["values"].get((slug, day), 0) for day in d["dates"]]}
                  for slug, (name, colour, _order) in sorted(d["tiers"].items(), key=lambda kv: kv[1][2])]
        out[dim] = {"dates": d["dates"], "series": series}
    return out


# --- Preview --------------------------------------------------------------------------------------
def rule_preview(*, rule: Any, tier: Tier | None = None, sample: int = 10) -> dict:
    """Count and sample of a rule (segment_preview); for a tier also how many would land in the
    tier, i.e. match this rule and no earlier tier's rule (overrides aside).

    Raises RuleError naming every problem (for a tier: a reference to its own dimension too).
    """
    from .services import segment_preview

    as_of = latest_as_of()
    if tier is not None:
        compile_rule(rule, as_of=as_of, dimension=tier.dimension.slug)  # own-dimension references
    result = segment_preview(rule=rule, sample=sample, as_of=as_of)
    if tier is not None:
        def q_of(r: Any) -> Q | None:
            if r in ({}, None):
                return None  # matches nobody
            try:
                return compile_rule(r, as_of=as_of, dimension=tier.dimension.slug).q
            except Exception:  # noqa: BLE001 - another tier's broken rule only spoils the estimate
                return None

        own = q_of(rule)
        q = own if own is not None else Q(pk__in=[])
        others = list(tier.dimension.tiers.exclude(pk=tier.pk).order_by("order", "pk"))
        earlier = [o for o in others if (o.order, o.pk) < (tier.order, tier.pk)]
        for other in earlier:
            if (oq := q_of(other.rule)) is not None:
                q &= ~oq
        if tier.dimension.fallback_tier_id == tier.pk:
            # ... plus everyone whom no other tier matches
            nobody_else = Q()
            for other in others:
                if (oq := q_of(other.rule)) is not None:
                    nobody_else &= ~oq
            q = q | nobody_else if nobody_else else Q()
        result["in_tier"] = audience_count(Customer.objects.filter(q))
    return result


# --- Segments ---------------------------------------------------------------------------------
# --- Customer list filters ------------------------------------------------------------------------
def customer_filter_tier(request, value: str):
    """?tier=<dimension>:<tier> -> customers whose current membership on the dimension is that tier."""
    if not request.user.has_perm("segmentation.view_dimension"):
        return None
    dim, _sep, slug = value.partition(":")
    tier = Tier.objects.select_related("dimension").filter(dimension__slug=dim, slug=slug).first()
    if tier is None:
        return None
    q = Q(Exists(Membership.objects.filter(customer=OuterRef("pk"), tier=tier)))
    return q, f"{tier.dimension.display_name}: {tier.display_name}"


def customer_filter_segment(request, value: str):
    """?segment=<slug> -> the segment's audience now."""
    if not request.user.has_perm("segmentation.view_segment"):
        return None
    segment = Segment.objects.filter(slug=value).first()
    if segment is None:
        return None
    try:
        q = compile_rule(segment.rule, as_of=latest_as_of()).q
    except Exception:  # noqa: BLE001
        return None
    return q, gettext("Segment: %(name)s") % {"name": segment.name}


# --- Recompute runs ---------------------------------------------------------------------------
STAGE_LABELS = {
    "": _("Waiting for a worker"), "features": _("Computing features"), "scores": _("Scoring"),
    "tiers": _("Assigning tiers"), "memberships": _("Writing memberships"), "changes": _("Recording changes"),
    "snapshot": _("Taking the snapshot"), "done": _("Done"),
}


def run_status(run: RecomputeRun) -> dict:
    """The JSON the progress page polls."""
    timings = {k: v for k, v in (run.timings or {}).items() if isinstance(v, (int, float))}
    duration = None
    if run.started_at:
        from django.utils import timezone

        duration = ((run.finished_at or timezone.now()) - run.started_at).total_seconds()
    return {
        "id": run.pk, "status": run.status, "status_label": str(run.get_status_display()), "mode": run.mode,
        "stage": run.stage, "stage_label": str(STAGE_LABELS.get(run.stage, run.stage)), "progress": run.progress,
        "customers": run.customers, "changes": run.changes, "timings": timings,
        "changes_by_dimension": (run.timings or {}).get("changes_by_dimension", {}),
        "as_of": run.as_of.isoformat(), "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration": round(duration, 2) if duration is not None else None, "error": run.error,
        "finished": run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.SKIPPED),
    }


# --- Models -----------------------------------------------------------------------------------
def models_overview() -> dict:
    """The active (else latest) model of each kind, recent history, and the clusters of the
    clustering model shown."""
    shown: dict[str, PredictiveModel | None] = {}
    for kind in ModelKind.values:
        shown[kind] = (PredictiveModel.objects.filter(kind=kind, active=True).first()
                       or PredictiveModel.objects.filter(kind=kind).order_by("-created_at", "-id").first())
    clusters, centroid_fields = [], []
    if shown[ModelKind.CLUSTER]:
        clusters = list(Cluster.objects.filter(model=shown[ModelKind.CLUSTER]).order_by("index"))
        for c in clusters:
            profile = c.centroid.get("centroid", c.centroid) if isinstance(c.centroid, dict) else {}
            c.profile = profile if isinstance(profile, dict) else {}
            c.median = c.centroid.get("median", {}) if isinstance(c.centroid, dict) else {}
            for key in c.profile:
                if key not in centroid_fields:
                    centroid_fields.append(key)
        for c in clusters:
            c.values = [(c.profile.get(f), c.median.get(f) if isinstance(c.median, dict) else None) for f in centroid_fields]
    history = list(PredictiveModel.objects.order_by("-created_at", "-id")[:20])
    return {"shown": shown, "clusters": clusters, "centroid_fields": [(f, field_label(f)) for f in centroid_fields],
            "history": history}


def metrics_html(value: Any, depth: int = 0) -> SafeString:
    """Any metrics dict as nested tables (whatever keys the trainer wrote)."""
    if isinstance(value, dict):
        if not value:
            return mark_safe("—")
        rows = format_html_join("", '<tr><th scope="row">{}</th><td>{}</td></tr>',
                                ((k, metrics_html(v, depth + 1)) for k, v in value.items()))
        return format_html('<table class="table table-sm metrics-table mb-0"><tbody>{}</tbody></table>', rows)
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            keys: list[str] = []
            for v in value:
                keys += [k for k in v if k not in keys]
            head = format_html_join("", '<th scope="col">{}</th>', ((k,) for k in keys))
            body = format_html_join("", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((metrics_html(v.get(k), depth + 1),)
                                                                                              for k in keys)),) for v in value))
            return format_html('<table class="table table-sm metrics-table mb-0"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
                               head, body)
        return format_html("{}", ", ".join(str(v) for v in value))
    if value is None:
        return mark_safe("—")
    if isinstance(value, float):
        return format_html("{}", f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}")
    return format_html("{}", value)


# --- Customer page ------------------------------------------------------------------------------
FEATURE_ROWS = (
    "recency_days", "activity_recency_days", "days_since_signup", "orders_30d", "orders_90d", "orders_365d",
    "orders_total", "revenue_365d", "revenue_total", "avg_order_value", "sessions_30d", "r_score", "f_score",
    "m_score", "rfm_score", "churn_probability", "predicted_orders_90d", "predicted_value_365d", "cluster", "avg_sentiment",
)


def _feature_value(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    return value


def customer_segmentation(*, customer: Customer, history: int = 30) -> dict:
    """Everything the customer page shows about tiers: memberships with their rule, active
    overrides, the change history and the features (five to six queries)."""
    memberships = list(Membership.objects.filter(customer=customer, dimension__active=True)
                       .select_related("tier", "dimension").order_by("dimension__order", "dimension__slug"))
    for m in memberships:
        m.rule_html = rule_html(m.tier.rule)
        m.is_fallback = m.dimension.fallback_tier_id == m.tier_id
    changes = list(TierChange.objects.filter(customer=customer).select_related("dimension", "from_tier", "to_tier", "run")
                   .order_by("-at", "-id")[:history])
    from django.utils import timezone

    overrides = list(TierOverride.objects.filter(customer=customer, revoked_at__isnull=True, expires_at__gt=timezone.now())
                     .select_related("tier", "dimension", "created_by").order_by("dimension__order", "-created_at"))
    features = CustomerFeatures.objects.filter(customer=customer).first()
    feature_rows = []
    if features:
        feature_rows = [(field_label(name), _feature_value(getattr(features, name))) for name in FEATURE_ROWS]
    vip = [m for m in memberships if m.tier.is_vip]
    service = next((m for m in vip if m.tier.service_level), None) or next(
        (m for m in memberships if m.tier.service_level), None)
    return {
        "memberships": memberships,
        "is_vip": any(m.tier.is_vip for m in memberships),
        "vip_tiers": vip,
        "service": service,
        "changes": changes,
        "overrides": overrides,
        "features": features,
        "feature_rows": feature_rows,
    }


def _get(d: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def model_highlights(model: PredictiveModel) -> dict:
    """The headline figures of known metric keys (churn: out-of-time AUC, precision, recall;
    value: model against the naive baseline). Unknown shapes give empty lists; the page then
    shows only the generic tables."""
    m = model.metrics or {}
    figures: list[tuple[str, Any]] = []
    comparison: list[dict] = []
    calibration = []
    if model.kind == ModelKind.CHURN:
        test = m.get("test") or {}
        for key, label in (("roc_auc", _("ROC AUC (test)")), ("precision", _("Precision at threshold")),
                           ("recall", _("Recall at threshold")), ("f1", _("F1")), ("threshold", _("Threshold")),
                           ("brier", _("Brier score")), ("brier_base_rate", _("Brier score of the base rate")),
                           ("positive_rate", _("Churn rate (test)")), ("rows", _("Test customers"))):
            if test.get(key) is not None:
                figures.append((label, test[key]))
        calibration = test.get("calibration") if isinstance(test.get("calibration"), list) else []
    elif model.kind == ModelKind.VALUE:
        for block, target, label in (("orders_90d", "orders", _("Orders, next 90 days")),
                                     ("value_365d", "revenue", _("Revenue, next 365 days"))):
            sub = _get(m, block, target)
            if not isinstance(sub, dict):
                continue
            for name, metrics in sub.items():
                if isinstance(metrics, dict):
                    comparison.append({"target": label, "model": name, "mae": metrics.get("mae"), "rmse": metrics.get("rmse"),
                                       "total_error_pct": metrics.get("total_error_pct"), "correlation": metrics.get("correlation"),
                                       "rows": metrics.get("rows")})
    elif model.kind == ModelKind.CLUSTER:
        for key, label in (("k", _("Clusters (k)")), ("inertia", _("Inertia"))):
            if m.get(key) is not None:
                figures.append((label, m[key]))
        if isinstance(m.get("silhouette"), dict) and m.get("k") is not None:
            figures.append((_("Silhouette at k"), m["silhouette"].get(str(m["k"]))))
    return {"figures": figures, "comparison": comparison, "calibration": calibration}
