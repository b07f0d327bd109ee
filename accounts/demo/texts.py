"""Feedback templates for the demo store, in English and Simplified Chinese.

A review's tone follows the customer's experience: the rating (drawn from the customer's
satisfaction, or low after a refund) picks positive, neutral or negative phrasing. `{noun}`
is the product's kind in the review's language. The sentiment itself is not decided here:
it is computed from the text by accounts.sentiment.analyze, as for real feedback.
"""
from __future__ import annotations

POSITIVE, NEUTRAL, NEGATIVE = "positive", "neutral", "negative"

ITEM_REVIEWS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        POSITIVE: (
            "Love the {noun}! Great quality and it arrived quickly.",
            "Excellent {noun}, exactly as described. Will buy again.",
            "Really happy with this {noun}. Fantastic value for the price.",
            "Superb {noun}, my family loves it. Thank you!",
            "Beautiful {noun} and great service. Highly recommend this shop.",
            "Best {noun} I have owned. Perfect gift, well packed.",
        ),
        NEUTRAL: (
            "The {noun} arrived on Tuesday. It matches the description.",
            "Received the {noun}. Size as listed, delivery in four days.",
            "The {noun} is as pictured. I have used it twice so far.",
            "Ordered the {noun} for my sister. Standard packaging.",
        ),
        NEGATIVE: (
            "Disappointed with the {noun}. It broke after a week.",
            "Poor quality {noun}, not worth the money.",
            "The {noun} arrived damaged and support was slow. Very frustrating.",
            "Terrible {noun}: wrong size, and the refund took forever.",
            "Cheap and flimsy {noun}. I regret buying it.",
        ),
    },
    "zh": {
        POSITIVE: (
            "{noun}质量很好，物流也很快，非常满意！",
            "很喜欢这个{noun}，性价比高，会回购。",
            "{noun}很漂亮，包装也很精美，非常喜欢，好评！",
            "{noun}做工精细，很满意，谢谢卖家！",
            "{noun}超出预期，很好，值得购买。",
        ),
        NEUTRAL: (
            "{noun}已收到，效果待观察。",
            "{noun}到了，先用用看。",
            "{noun}昨天到的，还没怎么用。",
        ),
        NEGATIVE: (
            "{noun}质量太差了，用了一周就坏了，很失望。",
            "发货太慢，{noun}有破损，退款也很麻烦。",
            "和描述不符，{noun}不值这个价，不会再买了。",
            "客服不理人，{noun}的问题一直没解决，差评。",
        ),
    },
}

# Feedback about the shop rather than one item (delivery, app, support).
SERVICE_FEEDBACK: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        POSITIVE: (
            "Fast delivery and friendly support. Great shop!",
            "The new app is excellent, checkout is quick and easy.",
            "Thank you for the birthday coupon, lovely surprise!",
        ),
        NEUTRAL: (
            "I mostly order on weekends. Delivery usually takes three days.",
            "Could you add more payment options at checkout?",
        ),
        NEGATIVE: (
            "The app keeps crashing at checkout. Annoying and slow.",
            "My parcel was lost and nobody answered my emails. Awful service.",
            "Prices went up and the shipping fees are ridiculous.",
        ),
    },
    "zh": {
        POSITIVE: (
            "发货很快，客服很热情，这家店很棒！",
            "新版App很好用，下单很方便，点赞。",
        ),
        NEUTRAL: (
            "希望结账时能多几种支付方式。",
        ),
        NEGATIVE: (
            "App总是闪退，结账特别慢，太烦了。",
            "快递丢了，客服也不回复，服务太差了。",
        ),
    },
}


def tone_of(rating: int) -> str:
    return POSITIVE if rating >= 4 else NEUTRAL if rating == 3 else NEGATIVE
