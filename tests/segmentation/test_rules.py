"""The rules compiler: every operator against hand-written features, and validation errors that name the problem."""
from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import translation

from accounts.models import Customer
from segmentation.models import CustomerFeatures, Dimension, Membership, Tier
from segmentation.rules import RuleError, compile_rule, time_thresholds

from .test_engine import builtin_dimensions  # noqa: F401  (autouse fixture)

pytestmark = pytest.mark.django_db

AS_OF = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def _in_english():
    """Error messages are in the active language, and a request in an earlier test may have left
    another one active in this thread (LocaleMiddleware): these tests read the English ones."""
    with translation.override("en"):
        yield


@pytest.fixture
def people():
    """Three customers with features written by hand, and value tiers."""
    rows = {
        # ext: (orders_total, revenue_total, churn, last activity days ago, city, email, value tier)
        "ann": (0, "0.00", None, 3, "Berlin", "ann@shop.example", "low"),
        "bob": (3, "150.00", 0.25, 30, "Paris", "bob@mail.example", "mid"),
        "cem": (7, "990.50", 0.9, 31, None, "cem@shop.example", "high"),
    }
    out = {}
    for ext, (orders, revenue, churn, active_days, city, email, value) in rows.items():
        c = Customer.objects.create(external_id=ext, email=email, attributes={"city": city} if city else {},
                                    signup_at=AS_OF - 400 * DAY)
        CustomerFeatures.objects.create(
            customer=c, as_of=AS_OF, computed_at=AS_OF, joined_at=AS_OF - 400 * DAY,
            last_activity_at=AS_OF - active_days * DAY, orders_total=orders, revenue_total=Decimal(revenue),
            churn_probability=churn)
        dim = Dimension.objects.get(slug="value")
        Membership.objects.create(customer=c, dimension=dim, tier=Tier.objects.get(dimension=dim, slug=value), since=AS_OF)
        out[ext] = c
    return out


def matching(rule, *, as_of=AS_OF) -> set[str]:
    return set(Customer.objects.filter(compile_rule(rule, as_of=as_of).q).values_list("external_id", flat=True))


def cond(field, op, value=None):
    return {"field": field, "op": op, "value": value}


@pytest.mark.parametrize(("rule", "expected"), [
    (cond("orders_total", "=", 3), {"bob"}),
    (cond("orders_total", "!=", 3), {"ann", "cem"}),
    (cond("orders_total", "<", 3), {"ann"}),
    (cond("orders_total", "<=", 3), {"ann", "bob"}),
    (cond("orders_total", ">", 3), {"cem"}),
    (cond("orders_total", ">=", 3), {"bob", "cem"}),
    (cond("orders_total", "in", [0, 7]), {"ann", "cem"}),
    (cond("orders_total", "not_in", [0, 7]), {"bob"}),
    (cond("orders_total", "between", [1, 7]), {"bob", "cem"}),
    (cond("revenue_total", ">=", "150.00"), {"bob", "cem"}),
    (cond("revenue_total", ">", 150), {"cem"}),
    (cond("churn_probability", "is_null", True), {"ann"}),
    (cond("churn_probability", "is_null", False), {"bob", "cem"}),
    (cond("churn_probability", ">=", 0.5), {"cem"}),
    (cond("email", "contains", "@SHOP."), {"ann", "cem"}),
    (cond("attributes.city", "=", "Paris"), {"bob"}),
    (cond("attributes.city", "in", ["Paris", "Berlin"]), {"ann", "bob"}),
    (cond("attributes.city", "is_null", True), {"cem"}),
    (cond("attributes.city", "contains", "erl"), {"ann"}),
    (cond("tier:value", "=", "high"), {"cem"}),
    (cond("tier:value", "!=", "high"), {"ann", "bob"}),
    (cond("tier:value", "in", ["mid", "high"]), {"bob", "cem"}),
    (cond("tier:value", "not_in", ["mid", "high"]), {"ann"}),
    # Day counts are whole days before as_of: 30 days ago is within 30, 31 is not.
    (cond("activity_recency_days", "<=", 30), {"ann", "bob"}),
    (cond("activity_recency_days", "<", 30), {"ann"}),
    (cond("activity_recency_days", ">", 30), {"cem"}),
    (cond("activity_recency_days", ">=", 30), {"bob", "cem"}),
    (cond("activity_recency_days", "=", 31), {"cem"}),
    (cond("activity_recency_days", "!=", 31), {"ann", "bob"}),
    (cond("activity_recency_days", "between", [3, 30]), {"ann", "bob"}),
    (cond("activity_recency_days", "is_null", False), {"ann", "bob", "cem"}),
    (cond("last_activity_at", "within_last", 30), {"ann"}),  # exactly 30 days ago is not within the last 30
    (cond("last_activity_at", "not_within_last", 30), {"bob", "cem"}),
    (cond("last_activity_at", "<", "2025-06-01"), {"bob", "cem"}),
    (cond("last_activity_at", ">=", "2025-06-27T12:00:00+00:00"), {"ann"}),
    ({"all": [cond("orders_total", ">=", 1), {"any": [cond("attributes.city", "=", "Paris"),
                                                      cond("tier:value", "=", "high")]}]}, {"bob", "cem"}),
    ({"any": []}, set()),
    ({"all": []}, {"ann", "bob", "cem"}),
])
def test_every_operator_compiles_to_the_expected_audience(people, rule, expected):
    assert matching(rule) == expected


def test_day_counts_follow_as_of(people):
    """The same rule matches differently at another as_of, without recomputing features."""
    rule = cond("activity_recency_days", "<=", 30)
    assert matching(rule, as_of=AS_OF) == {"ann", "bob"}
    assert matching(rule, as_of=AS_OF + 2 * DAY) == {"ann"}
    assert matching(rule, as_of=AS_OF - 2 * DAY) == {"ann", "bob", "cem"}


def test_an_empty_rule_matches_nobody():
    compiled = compile_rule({})
    assert compiled.matches_nobody


def _errors(rule, **kw) -> list[dict]:
    with pytest.raises(RuleError) as exc:
        compile_rule(rule, as_of=AS_OF, **kw)
    return exc.value.errors


@pytest.mark.parametrize(("rule", "path", "words"), [
    (cond("shoe_size", ">", 3), "rule", ["unknown field", "shoe_size"]),
    ({"all": [cond("orders_total", ">", 1), cond("orders_total", "contains", "3")]}, "all[1]",
     ["contains", "orders_total"]),
    ({"any": [cond("orders_total", ">", "three")]}, "any[0]", ["orders_total", "whole number", "three"]),
    (cond("revenue_total", ">=", "lots"), "rule", ["revenue_total", "number"]),
    (cond("orders_total", "between", [5]), "rule", ["orders_total", "between", "two values"]),
    (cond("orders_total", "between", [9, 2]), "rule", ["orders_total", "greater than"]),
    (cond("orders_total", "in", []), "rule", ["orders_total", "non-empty list"]),
    (cond("orders_total", "almost", 3), "rule", ["unknown operator", "almost"]),
    (cond("last_activity_at", "<", "yesterday-ish"), "rule", ["last_activity_at", "ISO 8601"]),
    (cond("attributes.ci ty", "=", "x"), "rule", ["attributes.ci ty"]),
    (cond("tier:value", "=", "gold"), "rule", ["value", "gold"]),
    (cond("tier:colour", "=", "red"), "rule", ["tier:colour", "no dimension"]),
    ({"all": [{"field": "orders_total", "op": ">"}]}, "all[0]", ["orders_total", "needs a 'value'"]),
    ({"all": "orders_total"}, "all", ["list"]),
])
def test_validation_errors_name_the_path_and_the_field(rule, path, words):
    errors = _errors(rule)
    assert errors[0]["path"] == path
    for word in words:
        assert word in errors[0]["message"]


def test_a_tier_rule_cannot_refer_to_its_own_dimension():
    errors = _errors(cond("tier:value", "=", "high"), dimension="value")
    assert errors == [{"path": "rule", "message": "a tier rule of dimension 'value' cannot refer to its own dimension"}]


def test_errors_are_in_the_active_language(settings):
    """A rule checked in the Chinese UI (or an API call with Accept-Language: zh-hans) gets
    Chinese messages; the field, operator and value stay as written."""
    call_command("compile_translations", stdout=io.StringIO())
    settings.LOCALE_PATHS = list(settings.LOCALE_PATHS)  # setting_changed resets gettext's catalogues
    rule = {"all": [cond("shoe_size", ">", 3), cond("orders_total", ">", "three")]}
    with translation.override("zh-hans"):
        with pytest.raises(RuleError) as exc:
            compile_rule(rule, as_of=AS_OF)
    assert [e["message"] for e in exc.value.errors] == [
        "未知字段 'shoe_size'", "'orders_total' > 需要整数，实际为 'three'"]
    assert exc.value.message == "all[0]: 未知字段 'shoe_size'（另有 1 处错误）"
    with translation.override("zh-hans"):
        assert _errors(cond("tier:value", "=", "high"), dimension="value")[0]["message"] == \
            "维度 'value' 的分层规则不能引用其自身所在的维度"
    with translation.override("en"):
        assert _errors(rule)[0]["message"] == "unknown field 'shoe_size'"


def test_every_error_in_a_rule_is_reported_at_once():
    errors = _errors({"all": [cond("nope", "=", 1), cond("orders_total", "=", "x"), cond("orders_total", "=", 1)]})
    assert [e["path"] for e in errors] == ["all[0]", "all[1]"]


def test_time_thresholds_collect_day_counts_for_incremental_runs():
    rule = {"any": [cond("activity_recency_days", "<=", 30), cond("last_purchase_at", "within_last", 90),
                    cond("orders_total", ">=", 5)]}
    assert time_thresholds(rule) == {30, 31, 90, 91}


def test_time_thresholds_are_kept_by_the_timestamp_they_are_measured_on():
    """Incremental runs look for crossings only in the timestamps rules measure from."""
    from segmentation.rules import TIMESTAMP_COLUMNS, time_thresholds_by_column

    rule = {"any": [cond("activity_recency_days", "<=", 30), cond("last_purchase_at", "within_last", 90),
                    cond("days_since_signup", "<=", 60), cond("signup_at", "within_last", 7)]}
    found = time_thresholds_by_column(rule)
    assert found["last_activity_at"] == {30, 31, 7, 8}
    assert found["last_purchase_at"] == {90, 91, 7, 8}
    assert found["joined_at"] == {60, 61, 7, 8}
    # signup_at is the customer's own column: looked for in every features timestamp
    assert set(found) == set(TIMESTAMP_COLUMNS)
    assert time_thresholds_by_column({"all": [cond("orders_total", ">=", 5)]}) == {}
