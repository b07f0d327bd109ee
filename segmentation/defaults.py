"""The dimensions and tiers Stratum ships with (installed by migration 0002, all editable;
Simplified Chinese of their texts by migration 0005).

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

# The shipped texts above in Simplified Chinese, for the staff UI (Dimension/Tier.translations).
# Migration 0005 stores each one only where the row still has the shipped English text, so a name
# staff have already changed does not get a translation of the old one.
# Keys: a dimension slug, or (dimension slug, tier slug).
ZH_HANS = {
    "behaviour": {"name": "行为", "description": "客户最近的行为：新客、活跃、沉默或流失。"},
    ("behaviour", "new"): {"name": "新客", "service_level": "欢迎新客：协助完成首单，一个工作日内答复。",
                           "description": "最近 30 天内注册（或首次出现）。"},
    ("behaviour", "active"): {"name": "活跃", "service_level": "标准服务，一个工作日内答复。",
                              "description": "最近 30 天内有任何活动。"},
    ("behaviour", "silent"): {"name": "沉默", "service_level": "值得发送唤醒优惠；一个工作日内答复。",
                              "description": "最近一次活动在 31 至 90 天前。"},
    ("behaviour", "churned"): {"name": "流失", "service_level": "仅在理由充分时挽回；标准服务。",
                               "description": "超过 90 天没有任何活动（兜底分层）。"},
    "value": {"name": "价值", "description": "客户的价值：高价值（VIP）、中价值或低价值。"},
    ("value", "high"): {"name": "高价值（VIP）",
                        "service_level": "VIP：优先排队，2 小时内答复，客服可发放最高 20% 的补偿优惠券。",
                        "description": "累计消费位于前五分之一且属于购买最频繁的客户，或预测未来一年价值不低于 1,000。"},
    ("value", "mid"): {"name": "中价值", "service_level": "一个工作日内答复；补偿优惠券最高 10%。",
                       "description": "累计消费位于中间五分位或更高。"},
    ("value", "low"): {"name": "低价值", "service_level": "标准服务。",
                       "description": "其他所有客户，包括尚未购买的客户。"},
    "lifecycle": {"name": "生命周期", "description": "客户与本店的关系所处的阶段。"},
    ("lifecycle", "onboarding"): {"name": "引导期", "service_level": "引导客户完成第二单。",
                                  "description": "60 天内加入，或 90 天内加入且最多下过一单。"},
    ("lifecycle", "decline"): {"name": "衰退期", "service_level": "有流失风险：个性化关怀会有帮助；一个工作日内答复。",
                               "description": "流失概率高、超过 90 天无活动，或之前 90 天内有购买而最近 90 天内没有。"},
    ("lifecycle", "growth"): {"name": "成长期", "service_level": "正在成长：广泛推荐商品。",
                              "description": "之前 90 天内最多一单，最近 90 天内至少两单。"},
    ("lifecycle", "maturity"): {"name": "成熟期", "service_level": "稳定客户：标准服务。",
                                "description": "关系稳定的客户（兜底分层）。"},
    "rfm": {"name": "RFM", "description": "根据最近购买（R）和购买频率（F）评分划分的标准 RFM 客群。"},
    ("rfm", "champions"): {"name": "冠军客户", "service_level": "最佳客户：优先排队，2 小时内答复。",
                           "description": "最近购买且购买最频繁。"},
    ("rfm", "loyal"): {"name": "忠诚客户", "service_level": "一个工作日内答复；推荐升级购买。",
                       "description": "购买频繁且最近有购买。"},
    ("rfm", "potential-loyalist"): {"name": "潜在忠诚客户", "service_level": "邀请加入会员或忠诚度计划。",
                                    "description": "最近有购买、购买频率中等的客户。"},
    ("rfm", "new-customers"): {"name": "新客户", "service_level": "帮助客户上手。",
                               "description": "最近有购买，但迄今只买过一次。"},
    ("rfm", "promising"): {"name": "有潜力客户", "service_level": "提升品牌认知，提供免费试用。",
                           "description": "最近来购物但买得不多的客户。"},
    ("rfm", "need-attention"): {"name": "需要关注", "service_level": "限时优惠，个性化推荐。",
                                "description": "最近购买和购买频率高于平均，但正在下滑。"},
    ("rfm", "about-to-sleep"): {"name": "即将沉睡", "service_level": "分享有价值的内容，重新建立联系。",
                                "description": "最近购买和购买频率低于平均。"},
    ("rfm", "cannot-lose-them"): {"name": "不能失去的客户", "service_level": "亲自挽回；2 小时内答复。",
                                  "description": "曾经购买非常频繁，但已很久没有购买。"},
    ("rfm", "at-risk"): {"name": "高危客户", "service_level": "发送个性化邮件和优惠，重新建立联系。",
                         "description": "很久以前消费多且频繁。"},
    ("rfm", "lost"): {"name": "已流失", "service_level": "用营销活动重新唤起兴趣，或者放手。",
                      "description": "最近购买和购买频率都最低。"},
    ("rfm", "hibernating"): {"name": "休眠客户", "service_level": "推荐其他相关商品和折扣。",
                             "description": "上次购买已很久，订单很少。"},
    ("rfm", "no-purchase"): {"name": "尚未购买", "service_level": "标准服务。",
                             "description": "没有购买记录的客户（无 R/F/M 评分）。"},
}
