"""The dimensions and tiers Stratum ships with (installed by migration 0002, all editable).

Thresholds are values inside the rules, so staff change them in the admin or the rule
builder; nothing here is read at recompute time.
"""

def c(field, op, value=None):
    node = {"field": field, "op": op}
    if value is not None or op != "is_null":
        node["value"] = value
    return node


def all_(*nodes):
    return {"all": list(nodes)}


def any_(*nodes):
    return {"any": list(nodes)}


# (slug, name, order, description, tiers[(slug, name, rule, colour, is_vip, service_level, description)], fallback slug)
DIMENSIONS = [
    ("behaviour", "Behaviour", 10, "What the customer has done lately: new, active, silent or churned.", [
        ("new", "New", all_(c("days_since_signup", "<=", 30)), "#0d6efd", False,
         "Welcome them: help with the first order, answer within one business day.",
         "Signed up (or first seen) within the last 30 days."),
        ("active", "Active", all_(c("activity_recency_days", "<=", 30)), "#198754", False,
         "Standard service, answer within one business day.", "Any activity within the last 30 days."),
        ("silent", "Silent", all_(c("activity_recency_days", "<=", 90)), "#fd7e14", False,
         "Worth a reactivation offer; answer within one business day.", "Last activity 31 to 90 days ago."),
        ("churned", "Churned", {}, "#6c757d", False,
         "Win-back only with a strong reason; standard service.", "No activity for more than 90 days (the fallback)."),
    ], "churned"),
    ("value", "Value", 20, "How much the customer is worth: high (VIP), mid or low.", [
        ("high", "High (VIP)", any_(all_(c("m_score", ">=", 5), c("f_score", ">=", 4)),
                                     c("predicted_value_365d", ">=", 1000)), "#6f42c1", True,
         "VIP: priority queue, answer within 2 hours, agent may issue goodwill coupons up to 20%.",
         "Top fifth by lifetime spend and among the most frequent buyers, or a predicted year's value of 1,000 or more."),
        ("mid", "Mid", all_(c("m_score", ">=", 3)), "#0dcaf0", False,
         "Answer within one business day; goodwill coupons up to 10%.", "Lifetime spend in the middle fifths or above."),
        ("low", "Low", {}, "#adb5bd", False, "Standard service.", "Everyone else, including customers without purchases."),
    ], "low"),
    ("lifecycle", "Lifecycle", 30, "Where the customer is in their life with the shop.", [
        ("onboarding", "Onboarding", any_(c("days_since_signup", "<=", 60),
                                           all_(c("orders_total", "<=", 1), c("days_since_signup", "<=", 90))), "#20c997", False,
         "Guide them to a second order.", "Joined within 60 days, or within 90 days with at most one order."),
        ("decline", "Decline", any_(c("churn_probability", ">=", 0.7), c("activity_recency_days", ">", 90),
                                     all_(c("orders_prev_90d", ">", 0), c("orders_90d", "=", 0))),
         "#dc3545", False, "At risk: a personal touch helps; answer within one business day.",
         "High churn probability, inactive for over 90 days, or bought in the previous 90 days but not in the last 90."),
        ("growth", "Growth", all_(c("orders_90d", ">=", 2), c("orders_prev_90d", "<=", 1)), "#0d6efd", False,
         "Growing: recommend widely.", "At least two orders in the last 90 days after at most one in the 90 before."),
        ("maturity", "Maturity", {}, "#6c757d", False, "Steady customer: standard service.", "Established customers (the fallback)."),
    ], "maturity"),
    ("rfm", "RFM", 40, "The standard named RFM segments from recency (R) and frequency (F) scores.", [
        ("champions", "Champions", all_(c("r_score", "=", 5), c("f_score", ">=", 4)), "#198754", False,
         "Best customers: priority queue, answer within 2 hours.", "Bought most recently and most often."),
        ("loyal", "Loyal", all_(c("r_score", ">=", 3), c("f_score", ">=", 4)), "#20c997", False,
         "Answer within one business day; upsell.", "Buy often and not long ago."),
        ("potential-loyalist", "Potential loyalist", all_(c("r_score", ">=", 4), c("f_score", "between", [2, 3])), "#0dcaf0", False,
         "Offer membership or loyalty programme.", "Recent customers with average frequency."),
        ("new-customers", "New customers", all_(c("r_score", "=", 5), c("f_score", "=", 1)), "#0d6efd", False,
         "Help with onboarding.", "Bought recently, but only once so far."),
        ("promising", "Promising", all_(c("r_score", "=", 4), c("f_score", "=", 1)), "#6610f2", False,
         "Build awareness, free trials.", "Recent shoppers who have not bought much."),
        ("need-attention", "Need attention", all_(c("r_score", "=", 3), c("f_score", "=", 3)), "#ffc107", False,
         "Limited-time offers, recommendations.", "Above-average recency and frequency, slipping."),
        ("about-to-sleep", "About to sleep", all_(c("r_score", "=", 3), c("f_score", "<=", 2)), "#fd7e14", False,
         "Share valuable resources, reconnect.", "Below-average recency and frequency."),
        ("cannot-lose-them", "Cannot lose them", all_(c("r_score", "<=", 2), c("f_score", "=", 5)), "#d63384", False,
         "Win them back personally; answer within 2 hours.", "Bought very often but long ago."),
        ("at-risk", "At risk", all_(c("r_score", "<=", 2), c("f_score", "between", [3, 4])), "#dc3545", False,
         "Personal e-mails and offers to reconnect.", "Spent big and often, long ago."),
        ("lost", "Lost", all_(c("r_score", "=", 1), c("f_score", "=", 1)), "#495057", False,
         "Revive interest with a campaign, or let go.", "Lowest recency and frequency."),
        ("hibernating", "Hibernating", all_(c("r_score", "<=", 2), c("f_score", "<=", 2)), "#6c757d", False,
         "Offer other relevant products and discounts.", "Last purchase long ago, few orders."),
        ("no-purchase", "No purchase yet", {}, "#adb5bd", False, "Standard service.", "Customers without a purchase (no R/F/M scores)."),
    ], "no-purchase"),
]
