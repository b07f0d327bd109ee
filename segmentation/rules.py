"""Rules: JSON condition trees, validated and compiled to a Django Q over customers.

    {"all": [{"field": "activity_recency_days", "op": "<=", "value": 30},
             {"any": [{"field": "orders_365d", "op": ">=", "value": 3},
                      {"field": "tier:value", "op": "=", "value": "high"}]}]}

A node is {"all": [...]}, {"any": [...]} or a condition {"field", "op", "value"}. An empty
rule ({}) matches nobody. Fields are whitelisted: customer features, customer attributes
(``attributes.city``), a few profile fields, and tiers of other dimensions
(``tier:<dimension slug>``). Errors name the node (``all[1].any[0]``), the field, the
operator or the value that is wrong, and every error in the rule is reported at once. Error
messages are in the active language (gettext, with the names as %(placeholders)s).

Day counts (recency_days, activity_recency_days, days_since_signup, tenure_days) are not
read from the stored numbers: they compile to comparisons of the underlying timestamp with
`as_of`, so a rule is exact for any as_of without recomputing features. Day counts are
whole days, floor((as_of - t) / 1 day): "<= 30" means less than 31 full days ago.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from crm.core.errors import ApplicationError

MAX_DEPTH = 8
MAX_CONDITIONS = 200

INT, DECIMAL, FLOAT, DAYS, DATETIME, STR, BOOL, TIER, ATTR = (
    "integer", "decimal", "number", "days", "datetime", "text", "boolean", "tier", "attribute")

NUMBER_OPS = {"=", "!=", "<", "<=", ">", ">=", "in", "not_in", "between", "is_null"}
OPS_BY_TYPE = {
    INT: NUMBER_OPS,
    DECIMAL: NUMBER_OPS,
    FLOAT: NUMBER_OPS,
    DAYS: NUMBER_OPS,
    DATETIME: {"<", "<=", ">", ">=", "between", "is_null", "within_last", "not_within_last"},
    STR: {"=", "!=", "in", "not_in", "contains", "is_null"},
    BOOL: {"=", "!=", "is_null"},
    TIER: {"=", "!=", "in", "not_in"},
    ATTR: {"=", "!=", "<", "<=", ">", ">=", "in", "not_in", "between", "contains", "is_null"},
}
ALL_OPS = sorted(set().union(*OPS_BY_TYPE.values()))


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    lookup: str  # ORM path from Customer
    label: str = ""
    source: str = ""  # for DAYS: the timestamp the count is measured from


def _feature(name: str, type_: str, label: str, source: str = "") -> Field:
    return Field(name, type_, f"features__{source or name}", label, source)


FIELDS: dict[str, Field] = {f.name: f for f in [
    _feature("recency_days", DAYS, "Days since last purchase", "last_purchase_at"),
    _feature("activity_recency_days", DAYS, "Days since last activity", "last_activity_at"),
    _feature("days_since_signup", DAYS, "Days since sign-up (or first seen)", "joined_at"),
    _feature("tenure_days", DAYS, "Days since first purchase", "first_purchase_at"),
    _feature("last_purchase_at", DATETIME, "Last purchase"),
    _feature("last_activity_at", DATETIME, "Last activity"),
    _feature("first_purchase_at", DATETIME, "First purchase"),
    _feature("joined_at", DATETIME, "Joined (sign-up, else first seen)"),
    _feature("orders_30d", INT, "Orders, last 30 days"),
    _feature("orders_90d", INT, "Orders, last 90 days"),
    _feature("orders_prev_90d", INT, "Orders, the 90 days before the last 90"),
    _feature("orders_365d", INT, "Orders, last 365 days"),
    _feature("orders_total", INT, "Orders, all time"),
    _feature("revenue_30d", DECIMAL, "Revenue, last 30 days"),
    _feature("revenue_90d", DECIMAL, "Revenue, last 90 days"),
    _feature("revenue_365d", DECIMAL, "Revenue, last 365 days"),
    _feature("revenue_total", DECIMAL, "Revenue, all time"),
    _feature("avg_order_value", DECIMAL, "Average order value"),
    _feature("sessions_30d", INT, "Active days, last 30 days"),
    _feature("events_30d", INT, "Events, last 30 days"),
    _feature("r_score", INT, "R score (1-5)"),
    _feature("f_score", INT, "F score (1-5)"),
    _feature("m_score", INT, "M score (1-5)"),
    _feature("rfm_score", INT, "R+F+M (3-15)"),
    _feature("churn_probability", FLOAT, "Churn probability (0-1)"),
    _feature("predicted_orders_90d", FLOAT, "Predicted orders, next 90 days"),
    _feature("predicted_value_365d", DECIMAL, "Predicted revenue, next 365 days"),
    _feature("cluster", INT, "Cluster"),
    _feature("avg_sentiment", FLOAT, "Average feedback sentiment (-1..1)"),
    Field("marketing_consent", BOOL, "marketing_consent", "Marketing consent"),
    Field("source_platform", STR, "source_platform", "Source platform"),
    Field("email", STR, "email", "E-mail"),
    Field("signup_at", DATETIME, "signup_at", "Signed up"),
    Field("erased", BOOL, "erased_at__isnull", "Erased"),
]}


class RuleError(ApplicationError):
    code, http_status = "invalid_rule", 400

    def __init__(self, errors: list[dict[str, str]]):
        first = errors[0]
        path = first["path"] or _("rule")
        more = _(" (and %(count)s more)") % {"count": len(errors) - 1} if len(errors) > 1 else ""
        super().__init__(f"{path}: {first['message']}{more}", extra={"errors": errors})
        self.errors = errors


def field_catalogue() -> list[dict[str, Any]]:
    """Fields and their operators, for the rule builder UI and the API."""
    from .models import Dimension

    out = [{"field": f.name, "type": f.type, "label": f.label, "ops": sorted(OPS_BY_TYPE[f.type])} for f in FIELDS.values()]
    out.append({"field": "attributes.<key>", "type": ATTR, "label": "Customer attribute", "ops": sorted(OPS_BY_TYPE[ATTR])})
    for dim in Dimension.objects.prefetch_related("tiers"):
        out.append({"field": f"tier:{dim.slug}", "type": TIER, "label": f"Tier: {dim.name}", "ops": sorted(OPS_BY_TYPE[TIER]),
                    "values": [t.slug for t in dim.tiers.all()]})
    return out


class _Compiler:
    def __init__(self, *, as_of: datetime, exclude_dimension: str | None):
        self.as_of = as_of
        self.exclude_dimension = exclude_dimension
        self.errors: list[dict[str, str]] = []
        self.count = 0
        self.tier_refs: set[str] = set()
        self._tiers: dict[str, tuple[int, dict[str, int]]] | None = None  # see tier()

    # -- errors ------------------------------------------------------------------------
    def fail(self, path: str, message: str) -> Q:
        self.errors.append({"path": path, "message": message})
        return Q(pk__in=[])

    # -- tree --------------------------------------------------------------------------
    def node(self, node: Any, path: str, depth: int) -> Q:
        if depth > MAX_DEPTH:
            return self.fail(path, _("rules nest at most %(depth)s levels deep") % {"depth": MAX_DEPTH})
        if not isinstance(node, dict):
            return self.fail(path, _("expected an object, got %(type)s") % {"type": type(node).__name__})
        groups = [k for k in ("all", "any") if k in node]
        if groups:
            if len(node) != 1:
                return self.fail(path, _("a group has exactly one key ('all' or 'any'), got %(keys)s") % {"keys": sorted(node)})
            key = groups[0]
            children = node[key]
            if not isinstance(children, list):
                return self.fail(f"{path}.{key}" if path else key, _("expected a list of conditions"))
            if not children:
                # all of nothing is true, any of nothing is false (as in logic and in Python)
                return Q() if key == "all" else Q(pk__in=[])
            qs = [self.node(child, f"{path + '.' if path else ''}{key}[{i}]", depth + 1) for i, child in enumerate(children)]
            out = qs[0]
            for q in qs[1:]:
                out = (out & q) if key == "all" else (out | q)
            return out
        if "field" in node or "op" in node:
            return self.condition(node, path or "rule")
        return self.fail(path, _("expected 'all', 'any' or a condition with 'field', 'op' and 'value'"))

    def condition(self, node: dict, path: str) -> Q:
        self.count += 1
        if self.count > MAX_CONDITIONS:
            return self.fail(path, _("a rule has at most %(count)s conditions") % {"count": MAX_CONDITIONS})
        unknown_keys = set(node) - {"field", "op", "value"}
        if unknown_keys:
            return self.fail(path, _("unknown key(s) %(keys)s in a condition") % {"keys": sorted(unknown_keys)})
        name, op = node.get("field"), node.get("op")
        if not isinstance(name, str) or not name:
            return self.fail(path, _("a condition needs a 'field'"))
        if not isinstance(op, str) or not op:
            return self.fail(path, _("the condition on '%(field)s' needs an 'op'") % {"field": name})
        if op not in ALL_OPS:
            return self.fail(path, _("unknown operator '%(op)s'; operators are: %(ops)s") % {"op": op, "ops": ", ".join(ALL_OPS)})
        if op != "is_null" and "value" not in node:
            return self.fail(path, _("the condition '%(field)s %(op)s' needs a 'value'") % {"field": name, "op": op})
        value = node.get("value")
        if name.startswith("attributes."):
            key = name.split(".", 1)[1]
            if not key or not key.replace("_", "").replace("-", "").isalnum():
                return self.fail(path, _("'%(field)s' is not a valid attribute name (letters, digits, _ and -)") % {"field": name})
            return self.compare(Field(name, ATTR, f"attributes__{key}"), op, value, path)
        if name.startswith("tier:"):
            return self.tier(name, op, value, path)
        field = FIELDS.get(name)
        if field is None:
            return self.fail(path, _("unknown field '%(field)s'") % {"field": name})
        return self.compare(field, op, value, path)

    # -- values ------------------------------------------------------------------------
    def scalar(self, field: Field, value: Any, path: str, op: str):
        t = field.type
        name = field.name

        def bad(expected: str) -> ValueError:
            return ValueError(_("'%(field)s' %(op)s needs %(expected)s, got %(value)s")
                              % {"field": name, "op": op, "expected": expected, "value": repr(value)})

        if t in (INT, DAYS):
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad(_("a whole number"))
            return value
        if t in (FLOAT, DECIMAL):
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise bad(_("a number"))
            try:
                number = Decimal(str(value))
            except InvalidOperation:
                raise bad(_("a number")) from None
            if not number.is_finite():
                raise bad(_("a finite number"))
            return number if t == DECIMAL else float(number)
        if t == BOOL:
            if not isinstance(value, bool):
                raise bad(_("true or false"))
            return value
        if t == STR:
            if not isinstance(value, str):
                raise bad(pgettext("kind of value", "text"))
            return value
        if t == DATETIME:
            if not isinstance(value, str):
                raise bad(_("an ISO 8601 date or date-time"))
            parsed = parse_datetime(value)
            if parsed is None and (d := parse_date(value)) is not None:
                parsed = datetime(d.year, d.month, d.day)
            if parsed is None:
                raise bad(_("an ISO 8601 date or date-time"))
            return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)
        if t == ATTR:
            if isinstance(value, (str, int, float, bool)) and not (isinstance(value, float) and value != value):
                return value
            raise bad(_("text, a number or true/false"))
        raise ValueError(_("'%(field)s' cannot be compared") % {"field": name})

    def compare(self, field: Field, op: str, value: Any, path: str) -> Q:
        allowed = OPS_BY_TYPE[field.type]
        if op not in allowed:
            return self.fail(path, _("operator '%(op)s' does not apply to '%(field)s' (%(type)s); use one of: %(ops)s")
                             % {"op": op, "field": field.name, "type": field.type, "ops": ", ".join(sorted(allowed))})
        try:
            if op == "is_null":
                if not isinstance(value, bool):
                    raise ValueError(_("'%(field)s' is_null needs true or false, got %(value)s")
                                     % {"field": field.name, "value": repr(value)})
                return self.is_null(field, value)
            if op in ("in", "not_in"):
                if not isinstance(value, list) or not value:
                    raise ValueError(_("'%(field)s' %(op)s needs a non-empty list, got %(value)s")
                                     % {"field": field.name, "op": op, "value": repr(value)})
                values = [self.scalar(field, v, path, op) for v in value]
                q = Q()
                for v in values:
                    q |= self.simple(field, "=", v)
                return ~q if op == "not_in" else q
            if op == "between":
                if not isinstance(value, list) or len(value) != 2:
                    raise ValueError(_("'%(field)s' between needs a list of two values [low, high], got %(value)s")
                                     % {"field": field.name, "value": repr(value)})
                lo, hi = (self.scalar(field, v, path, op) for v in value)
                if lo > hi:
                    raise ValueError(_("'%(field)s' between: low %(low)s is greater than high %(high)s")
                                     % {"field": field.name, "low": lo, "high": hi})
                return self.simple(field, ">=", lo) & self.simple(field, "<=", hi)
            if op in ("within_last", "not_within_last"):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(_("'%(field)s' %(op)s needs a number of days (a whole number >= 0), got %(value)s")
                                     % {"field": field.name, "op": op, "value": repr(value)})
                q = Q(**{f"{field.lookup}__gt": self.as_of - timedelta(days=value), f"{field.lookup}__lte": self.as_of})
                return ~q if op == "not_within_last" else q
            if op == "contains":
                return Q(**{f"{field.lookup}__icontains": self.scalar(field, value, path, op) if field.type == STR else str(value)})
            return self.simple(field, op, self.scalar(field, value, path, op))
        except ValueError as exc:
            return self.fail(path, str(exc))

    def is_null(self, field: Field, value: bool) -> Q:
        if field.name == "erased":
            raise ValueError(_("'erased' is never null; use erased = true/false"))
        return Q(**{f"{field.lookup}__isnull": value})

    def simple(self, field: Field, op: str, value: Any) -> Q:
        if field.type == DAYS:
            return self.days(field, op, value)
        if field.name == "erased":
            # erased = true  <=>  erased_at IS NOT NULL
            value = not value
        lookup = {"=": "", "!=": "", "<": "__lt", "<=": "__lte", ">": "__gt", ">=": "__gte"}[op]
        q = Q(**{f"{field.lookup}{lookup}": value})
        return ~q if op == "!=" else q

    def days(self, field: Field, op: str, n: int) -> Q:
        """floor((as_of - t) / 1 day) OP n, as a comparison of t with as_of."""
        at = field.lookup
        edge = lambda days: self.as_of - timedelta(days=days)  # noqa: E731
        if op == "<=":
            return Q(**{f"{at}__gt": edge(n + 1)})
        if op == "<":
            return Q(**{f"{at}__gt": edge(n)})
        if op == ">=":
            return Q(**{f"{at}__lte": edge(n)})
        if op == ">":
            return Q(**{f"{at}__lte": edge(n + 1)})
        if op == "=":
            return Q(**{f"{at}__lte": edge(n), f"{at}__gt": edge(n + 1)})
        if op == "!=":
            return ~Q(**{f"{at}__lte": edge(n), f"{at}__gt": edge(n + 1)}) & Q(**{f"{at}__isnull": False})
        raise ValueError(_("operator '%(op)s' does not apply to a day count") % {"op": op})

    def tier(self, name: str, op: str, value: Any, path: str) -> Q:
        from .models import Membership, Tier

        dim = name.split(":", 1)[1]
        if self._tiers is None:
            self._tiers = {}  # dimension slug -> (dimension id, {tier slug: tier id})
            for d_slug, d_id, t_slug, t_id in Tier.objects.values_list("dimension__slug", "dimension_id", "slug", "id"):
                self._tiers.setdefault(d_slug, (d_id, {}))[1][t_slug] = t_id
        if dim not in self._tiers:
            return self.fail(path, _("unknown field '%(field)s': there is no dimension '%(dimension)s'")
                             % {"field": name, "dimension": dim})
        if dim == self.exclude_dimension:
            return self.fail(path, _("a tier rule of dimension '%(dimension)s' cannot refer to its own dimension")
                             % {"dimension": dim})
        if op not in OPS_BY_TYPE[TIER]:
            return self.fail(path, _("operator '%(op)s' does not apply to '%(field)s'; use one of: %(ops)s")
                             % {"op": op, "field": name, "ops": ", ".join(sorted(OPS_BY_TYPE[TIER]))})
        values = value if op in ("in", "not_in") else [value]
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            return self.fail(path, _("'%(field)s' %(op)s needs tier slug(s) of dimension '%(dimension)s', got %(value)s")
                             % {"field": name, "op": op, "dimension": dim, "value": repr(value)})
        dim_id, tier_ids = self._tiers[dim]
        unknown = [v for v in values if v not in tier_ids]
        if unknown:
            return self.fail(path, _("dimension '%(dimension)s' has no tier %(unknown)s; its tiers are: %(tiers)s")
                             % {"dimension": dim, "unknown": ", ".join(repr(u) for u in unknown),
                                "tiers": ", ".join(sorted(tier_ids))})
        self.tier_refs.add(dim)
        # By id, not by joining the slugs: the planner then estimates from the memberships' own
        # statistics how many customers are in those tiers (joined through the slugs it guessed
        # a few hundred, and a preview of a tier of 600,000 customers took 2 s instead of 0.3).
        q = Q(Exists(Membership.objects.filter(customer=OuterRef("pk"), dimension_id=dim_id,
                                               tier_id__in=sorted(tier_ids[v] for v in values))))
        return ~q if op in ("!=", "not_in") else q


@dataclass
class CompiledRule:
    q: Q
    matches_nobody: bool
    tier_refs: set[str]


def compile_rule(rule: Any, *, as_of: datetime | None = None, dimension: str | None = None) -> CompiledRule:
    """Validate `rule` and compile it to a Q over Customer. Raises RuleError listing every problem."""
    as_of = as_of or timezone.now()
    compiler = _Compiler(as_of=as_of, exclude_dimension=dimension)
    if rule in ({}, None):
        return CompiledRule(q=Q(pk__in=[]), matches_nobody=True, tier_refs=set())
    q = compiler.node(rule, "", 0)
    if compiler.errors:
        raise RuleError(compiler.errors)
    return CompiledRule(q=q, matches_nobody=False, tier_refs=compiler.tier_refs)


def validate_rule(rule: Any, *, dimension: str | None = None) -> None:
    compile_rule(rule, dimension=dimension)


# The features' timestamps; a time condition on any other field is looked for in all of them.
TIMESTAMP_COLUMNS = ("last_purchase_at", "last_activity_at", "joined_at", "first_purchase_at")


def time_thresholds_by_column(rule: Any) -> dict[str, set[int]]:
    """Day counts of day-count and relative-date conditions, by the features timestamp they are
    measured on (incremental recompute looks for customers whose timestamp crossed one)."""
    found: dict[str, set[int]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("all", "any"):
                for child in node.get(key, []) if isinstance(node.get(key), list) else []:
                    walk(child)
            field = FIELDS.get(node.get("field", ""))
            is_time = (field and field.type == DAYS) or node.get("op") in ("within_last", "not_within_last")
            if is_time:
                column = (field.source if field and field.type == DAYS else field.name if field else "")
                columns = [column] if column in TIMESTAMP_COLUMNS else list(TIMESTAMP_COLUMNS)
                vals = node.get("value")
                for v in vals if isinstance(vals, list) else [vals]:
                    if isinstance(v, int) and not isinstance(v, bool):
                        for col in columns:
                            found.setdefault(col, set()).update({v, v + 1})

    walk(rule)
    return found


def time_thresholds(rule: Any) -> set[int]:
    """Every day count of the rule's day-count and relative-date conditions."""
    return set().union(*time_thresholds_by_column(rule).values())
