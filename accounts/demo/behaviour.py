"""Customer archetypes and the simulation of one customer's two years.

Everything is plain values: a customer's index and the seed fix a numpy Generator of their
own (so customer 17 of a 60-customer store is the same person in a 3,000-customer store),
and the functions return event tuples with times in days since the calendar's start.

Per customer:
- purchases are a renewal process with gamma inter-purchase times on the customer's clock
  (see calendar.py), laid backwards from the archetype's last purchase to the sign-up;
- browsing sessions are a Poisson process on the same clock;
- every session is a small funnel: login, (search), views, clicks, add_to_cart, and in
  purchase sessions one purchase line per basket item;
- items come from a per-customer Dirichlet taste over categories and a log-normal
  popularity within each category, tilted by price (VIPs up, bargain hunters down);
- after a purchase: refunds (per-category rate), ratings, reviews with feedback text.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from .calendar import HOUR_P, Calendar
from .catalog import CATEGORIES, Catalog
from .people import Person, person_make
from .texts import ITEM_REVIEWS, SERVICE_FEEDBACK, tone_of

CENT = Decimal("0.01")
PLATFORMS = ("web", "ios", "android", "store")
PLATFORM_P = (0.48, 0.26, 0.21, 0.05)
DISCOUNTS = (0.10, 0.15, 0.20, 0.25, 0.30, 0.40)
REFUND_REASONS = ("damaged", "not as described", "changed mind", "late delivery")
MINUTE = 1.0 / 1440.0


@dataclass(frozen=True, slots=True)
class Archetype:
    key: str
    label: str
    share: float
    signup: tuple[float, float]  # sign-up between these many days before as_of (far, near)
    last_purchase: tuple[float, float] | None  # last purchase between these many days before as_of
    interval: float  # mean inter-purchase time, in busy-days of `clock`
    shape: float  # gamma shape of the inter-purchase time (higher: more regular)
    clock: str  # "normal" or "bargain"
    browse_per_week: float  # browsing-only sessions per busy-week
    basket_extra: float  # order lines beyond the first (Poisson mean)
    price_tilt: float  # item choice weight x price ** tilt
    coupon_p: float  # share of orders outside sales that use a discount
    satisfaction: tuple[float, float]  # Beta(a, b) of the customer's satisfaction
    rate_p: float  # per purchased line: chance of a rating
    consent_p: float  # marketing consent
    refund_mult: float = 1.0


ARCHETYPES: tuple[Archetype, ...] = (
    Archetype("vip", "Loyal big spender (VIP)", 0.05, (730, 240), (0, 12), 18.0, 2.5, "normal", 0.45, 1.1, 0.5,
              0.10, (8.0, 2.0), 0.22, 0.80, 0.6),
    Archetype("regular", "Regular", 0.22, (730, 150), (0, 45), 55.0, 2.0, "normal", 0.15, 0.5, 0.0,
              0.12, (6.0, 2.5), 0.14, 0.60),
    Archetype("bargain", "Bargain hunter", 0.14, (730, 150), (0, 75), 45.0, 1.3, "bargain", 0.12, 0.25, -1.2,
              0.70, (4.0, 3.0), 0.12, 0.80),
    Archetype("one_time", "One-time buyer", 0.19, (730, 45), None, 0.0, 1.0, "normal", 0.0, 0.3, -0.2,
              0.15, (3.0, 3.5), 0.15, 0.40, 1.3),
    Archetype("new", "New sign-up (last 30 days)", 0.08, (30, 0), None, 0.0, 1.0, "normal", 1.4, 0.3, 0.0,
              0.30, (5.0, 2.5), 0.10, 0.65),
    Archetype("drifting", "Drifting away", 0.12, (730, 200), (32, 89), 42.0, 2.0, "normal", 0.16, 0.4, 0.0,
              0.12, (3.0, 4.0), 0.15, 0.55, 1.5),
    Archetype("lost", "Lost / churned", 0.20, (730, 130), (91, 560), 60.0, 1.5, "normal", 0.14, 0.35, 0.0,
              0.12, (2.5, 4.0), 0.15, 0.50, 1.5),
)
ARCHETYPE_KEYS = tuple(a.key for a in ARCHETYPES)
_CUMULATIVE = np.cumsum([a.share for a in ARCHETYPES])
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


def archetype_of(*, seed: int, index: int) -> Archetype:
    """The archetype of customer `index`.

    A golden-ratio sequence instead of independent draws: every prefix of the customer list
    holds each archetype in close to its share (a 60-customer store has its 3 VIPs), and a
    customer's archetype does not depend on how many customers are generated.
    """
    offset = np.random.default_rng([seed, 3]).random()
    u = (offset + index * _GOLDEN) % 1.0
    return ARCHETYPES[min(int(np.searchsorted(_CUMULATIVE, u * _CUMULATIVE[-1], side="right")), len(ARCHETYPES) - 1)]


def customer_external_id(seed: int, index: int) -> str:
    return f"demo-{seed}-{index:05d}"


# One generated event: (type, t in days since calendar start, item index or -1, amount, quantity,
# platform, properties). Its event_id is f"demo-{seed}-{customer index}-{position}".
EventTuple = tuple[str, float, int, Decimal | None, int | None, str, dict]


@dataclass(slots=True)
class FeedbackSpec:
    event_position: int  # position of the matching review event in the customer's events
    item: int  # -1: about the shop, not an item
    text: str
    rating: int
    language: str
    t: float


@dataclass(slots=True)
class CustomerData:
    index: int
    external_id: str
    archetype: str
    person: Person
    signup_t: float
    platform: str
    marketing_consent: bool
    unsubscribed: bool
    events: list[EventTuple] = field(default_factory=list)
    feedback: list[FeedbackSpec] = field(default_factory=list)


def _money(x: float | Decimal) -> Decimal:
    return Decimal(x).quantize(CENT, rounding=ROUND_HALF_UP)


class _Sampler:
    """Draws items for one customer: category from their taste, item from the tilted popularity."""

    def __init__(self, rng: np.random.Generator, catalog: Catalog, taste: np.ndarray, tilt: float):
        self.rng, self.taste = rng, taste
        weights = catalog.popularity * catalog.price ** tilt
        cats = catalog.category
        # Block-wise CDF made globally increasing by adding the category index: a draw in
        # category c is searchsorted(cdf, c + u).
        cdf = np.empty_like(weights)
        for c in range(len(CATEGORIES)):
            block = cats == c
            w = np.cumsum(weights[block])
            cdf[block] = c + w / w[-1]
        self.cdf = cdf
        self.n = len(weights)

    def categories(self, k: int) -> np.ndarray:
        return self.rng.choice(len(self.taste), size=k, p=self.taste)

    def items(self, cats: np.ndarray) -> np.ndarray:
        u = self.rng.random(len(cats))
        return np.minimum(np.searchsorted(self.cdf, cats + u), self.n - 1)


def _poisson_times(rng, cal: Calendar, clock: str, rate_per_day: float, a: float, b: float) -> np.ndarray:
    if b <= a or rate_per_day <= 0:
        return np.empty(0)
    sa, sb = cal.busy(a, clock), cal.busy(b, clock)
    n = rng.poisson(rate_per_day * (sb - sa))
    return np.sort(cal.calendar_time(rng.uniform(sa, sb, size=n), clock))


def _purchase_times(rng, cal: Calendar, arch: Archetype, signup_t: float, horizon: float) -> np.ndarray:
    """Backwards renewal process from the last purchase to the sign-up, on the archetype's clock."""
    lo, hi = arch.last_purchase
    near, far = horizon - lo, max(signup_t + 1.0, horizon - hi)
    s_near, s_far = cal.busy(near, arch.clock), cal.busy(far, arch.clock)
    s_last = rng.uniform(min(s_far, s_near), s_near)
    s_signup = cal.busy(signup_t, arch.clock)
    n = int(max(8, 3 * (s_last - s_signup) / arch.interval + 8))
    gaps = rng.gamma(arch.shape, arch.interval / arch.shape, size=n)
    if arch.key == "drifting":
        # Declining: the most recent gaps are the longest.
        gaps[:3] *= (2.2, 1.7, 1.3)
    s = s_last - np.concatenate([[0.0], np.cumsum(gaps)])
    s = s[s > s_signup + 0.05][:250]
    return np.sort(cal.calendar_time(s, arch.clock))


def _at_hour(rng, t: np.ndarray) -> np.ndarray:
    """Move times within their day to a shop hour (lunch bump, evening peak)."""
    hours = rng.choice(24, size=len(t), p=HOUR_P)
    return np.floor(t) + (hours + rng.random(len(t))) / 24.0


def customer_simulate(*, seed: int, index: int, cal: Calendar, catalog: Catalog) -> CustomerData:
    """One customer's profile and everything they did in the window."""
    rng = np.random.default_rng([seed, 2, index])
    arch = archetype_of(seed=seed, index=index)
    person = person_make(rng, index=index)
    horizon = cal.horizon
    far = max(0.0, horizon - arch.signup[0])
    near = max(far, horizon - arch.signup[1])
    if arch.key == "new":
        signup_t = rng.uniform(max(far, horizon - 30.0 + MINUTE), horizon - 0.05)
    else:
        signup_t = far + (near - far) * rng.beta(1.2, 1.6)
    platform = PLATFORMS[int(rng.choice(4, p=PLATFORM_P))]
    consent = bool(rng.random() < arch.consent_p)
    unsubscribed = consent and bool(rng.random() < 0.04)
    data = CustomerData(index=index, external_id=customer_external_id(seed, index), archetype=arch.key,
                        person=person, signup_t=float(signup_t), platform=platform,
                        marketing_consent=consent and not unsubscribed, unsubscribed=unsubscribed)

    # When the customer buys, and until when they browse.
    if arch.last_purchase is not None:
        purchases = _purchase_times(rng, cal, arch, signup_t, horizon)
        last = purchases[-1] if len(purchases) else signup_t
        browse_until = {"drifting": min(horizon - 3.0, last + rng.uniform(0, 25)),
                        "lost": min(horizon - 91.0, last + rng.uniform(0, 10))}.get(arch.key, horizon)
        browse = _poisson_times(rng, cal, arch.clock, arch.browse_per_week / 7.0, signup_t, browse_until)
    elif arch.key == "one_time":
        purchases = np.array([min(horizon - MINUTE, signup_t + rng.exponential(2.0))])
        browse = np.sort(rng.uniform(signup_t, min(horizon, signup_t + 60.0), size=rng.poisson(2.0)))
    else:  # new sign-ups: most buy once soon, some twice
        first = signup_t + rng.exponential(3.0)
        purchases = np.array([first] if rng.random() < 0.6 and first < horizon else [])
        if len(purchases) and rng.random() < 0.25:
            second = first + rng.exponential(6.0)
            purchases = np.append(purchases, second) if second < horizon else purchases
        browse = _poisson_times(rng, cal, arch.clock, arch.browse_per_week / 7.0, signup_t, horizon)
    # Lost customers are silent for the last 90 days, whatever follows a purchase.
    cap = horizon - 90.5 if arch.key == "lost" else horizon

    sessions_t = np.concatenate([purchases, browse])
    is_purchase = np.concatenate([np.ones(len(purchases), bool), np.zeros(len(browse), bool)])
    sessions_t = np.clip(_at_hour(rng, sessions_t), signup_t + 2 * MINUTE, cap - 30 * MINUTE)
    order = np.argsort(sessions_t, kind="stable")
    sessions_t, is_purchase = sessions_t[order], is_purchase[order]

    # Taste over categories: Dirichlet around the categories' popularity, tilted like items by
    # price (bargain hunters lean to cheap categories, VIPs to dear ones).
    prior = np.array([c.popularity * c.price_median ** (arch.price_tilt / 2) for c in CATEGORIES])
    taste = rng.dirichlet(prior / prior.mean() * 0.6)
    sampler = _Sampler(rng, catalog, taste, arch.price_tilt)
    satisfaction = rng.beta(*arch.satisfaction)

    ev = data.events
    ev.append(("signup", float(signup_t), -1, None, None, platform, {}))
    n_sessions = len(sessions_t)
    session_cats = sampler.categories(n_sessions)
    extra_views = rng.poisson(0.8, size=n_sessions)
    basket_sizes = np.minimum(1 + rng.poisson(arch.basket_extra, size=n_sessions), 6)
    bought_consumables: list[int] = []
    order_no = 0
    for k in range(n_sessions):
        t = float(sessions_t[k])
        sid = f"{index}-{k}"
        plat = platform if rng.random() < 0.8 else PLATFORMS[int(rng.integers(3))]
        ev.append(("login", t, -1, None, None, plat, {"session": sid}))
        t += rng.exponential(0.5) * MINUTE
        cat = int(session_cats[k])
        if rng.random() < 0.3:
            ev.append(("search", t, -1, None, None, plat,
                       {"session": sid, "q": CATEGORIES[cat].kinds[int(rng.integers(len(CATEGORIES[cat].kinds)))][0].lower()}))
            t += rng.exponential(0.5) * MINUTE
        browsing = sampler.items(np.full(int(extra_views[k]) + (0 if is_purchase[k] else 1), cat))
        for item in browsing:
            t += rng.exponential(1.0) * MINUTE
            ev.append(("view", t, int(item), None, None, plat, {"session": sid}))
            if rng.random() < 0.3:
                t += rng.exponential(0.3) * MINUTE
                ev.append(("click", t, int(item), None, None, plat, {"session": sid}))
                if not is_purchase[k] and rng.random() < 0.2:  # an abandoned cart
                    t += rng.exponential(0.3) * MINUTE
                    ev.append(("add_to_cart", t, int(item), None, None, plat, {"session": sid, "quantity": 1}))
        if not is_purchase[k]:
            continue
        basket = list(sampler.items(np.full(int(basket_sizes[k]), cat)))
        if bought_consumables and rng.random() < 0.35:  # replenishing a usual item
            basket[0] = bought_consumables[int(rng.integers(len(bought_consumables)))]
        basket = list(dict.fromkeys(int(i) for i in basket))
        lines = []
        for item in basket:
            t += rng.exponential(1.0) * MINUTE
            ev.append(("view", t, item, None, None, plat, {"session": sid}))
            if rng.random() < 0.75:
                t += rng.exponential(0.3) * MINUTE
                ev.append(("click", t, item, None, None, plat, {"session": sid}))
            cat_i = CATEGORIES[int(catalog.category[item])]
            qty = int(min(4, 1 + rng.poisson(0.5))) if cat_i.consumable else (2 if rng.random() < 0.06 else 1)
            t += rng.exponential(0.5) * MINUTE
            ev.append(("add_to_cart", t, item, None, None, plat, {"session": sid, "quantity": qty}))
            lines.append((item, qty))
            if cat_i.consumable:
                bought_consumables.append(item)
        sale = cal.sale_of(t)
        if sale:
            discounted = arch.key == "bargain" or rng.random() < 0.6
        else:
            discounted = rng.random() < arch.coupon_p
        discount = 0.0
        if discounted:
            weights = np.array([1, 2, 3, 3, 2, 1.0]) if arch.key == "bargain" else np.array([3, 3, 2, 1, 0.5, 0.2])
            discount = DISCOUNTS[int(rng.choice(len(DISCOUNTS), p=weights / weights.sum()))]
        order_no += 1
        order_id = f"D{seed}-{index}-{order_no}"
        t += rng.exponential(2.0) * MINUTE
        props_base = {"session": sid, "order": order_id}
        if discount:
            props_base["discount"] = f"{discount:.2f}"
        if sale:
            props_base["sale"] = sale
        for item, qty in lines:
            amount = _money(catalog.prices[item] * qty * Decimal(str(1 - discount)))
            ev.append(("purchase", t, item, amount, qty, plat, dict(props_base)))
            cat_i = CATEGORIES[int(catalog.category[item])]
            refunded = rng.random() < cat_i.refund_rate * arch.refund_mult
            if refunded:
                tr = t + rng.uniform(3, 21)
                if tr < cap:
                    ev.append(("refund", tr, item, -amount, qty, plat,
                               {"order": order_id, "reason": REFUND_REASONS[int(rng.integers(len(REFUND_REASONS)))]}))
                else:
                    refunded = False
            if rng.random() < (0.5 if refunded else arch.rate_p):
                tr = t + rng.uniform(2, 14)
                if tr >= cap:
                    continue
                p = 0.15 if refunded else float(np.clip(satisfaction + rng.normal(0, 0.12), 0.02, 0.98))
                rating = int(1 + rng.binomial(4, p))
                ev.append(("rate", tr, item, None, None, plat, {"rating": rating}))
                if rng.random() < 0.4:
                    _review(rng, data, catalog, item, rating, tr + 3 * MINUTE, plat)
    if rng.random() < 0.12 and n_sessions:  # a word about the shop itself
        t = float(sessions_t[int(rng.integers(n_sessions))]) + 20 * MINUTE
        if t < cap:
            rating = int(1 + rng.binomial(4, satisfaction))
            _review(rng, data, catalog, -1, rating, t, platform)
    return data


def _review(rng, data: CustomerData, catalog: Catalog, item: int, rating: int, t: float, platform: str) -> None:
    language = data.person.language if rng.random() < 0.9 else ("en" if data.person.language == "zh" else "zh")
    tone = tone_of(rating)
    if item >= 0:
        templates = ITEM_REVIEWS[language][tone]
        noun = catalog.kind_zh[item] if language == "zh" else catalog.kind_en[item].lower()
        text = templates[int(rng.integers(len(templates)))].format(noun=noun)
    else:
        templates = SERVICE_FEEDBACK[language][tone]
        text = templates[int(rng.integers(len(templates)))]
    data.feedback.append(FeedbackSpec(event_position=len(data.events), item=item, text=text, rating=rating,
                                      language=language, t=t))
    data.events.append(("review", t, item, None, None, platform, {"rating": rating, "language": language}))
