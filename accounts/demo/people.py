"""Who the demo store's customers are: names, e-mails, phones, cities, age and gender.

About a third have Chinese names (written in Chinese characters, with pinyin e-mail
addresses) and mostly live in Chinese cities; the rest have English names. E-mail
addresses use the reserved example.com/.net/.org domains and UK/US phone numbers come from
the ranges set aside for drama, so a demo can never reach a real person.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EN_FIRST = ("Olivia", "Emma", "Amelia", "Ava", "Sophia", "Isla", "Grace", "Mia", "Chloe", "Lily", "Ella", "Zoe",
            "Hannah", "Lucy", "Emily", "Sarah", "Laura", "Rachel", "Megan", "Nora",
            "Oliver", "George", "Harry", "Noah", "Jack", "Leo", "Arthur", "Oscar", "Henry", "Theo", "James",
            "William", "Thomas", "Daniel", "Samuel", "David", "Michael", "Ethan", "Lucas", "Ryan")
EN_LAST = ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Robinson",
           "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson",
           "Clarke", "Hughes", "Edwards", "Turner", "Martin", "Cooper", "Hill", "Ward", "Morris", "Moore",
           "Clark", "Lee", "King", "Baker", "Harrison", "Morgan", "Allen", "Young", "Scott", "Mitchell")
ZH_SURNAMES = (("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
               ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"),
               ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("林", "lin"),
               ("罗", "luo"), ("高", "gao"))
ZH_GIVEN = (("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"),
            ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"),
            ("杰", "jie"), ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("霞", "xia"), ("平", "ping"),
            ("秀英", "xiuying"), ("浩然", "haoran"), ("子涵", "zihan"), ("欣怡", "xinyi"), ("梓轩", "zixuan"),
            ("雨桐", "yutong"), ("宇航", "yuhang"), ("思远", "siyuan"), ("佳琪", "jiaqi"), ("俊杰", "junjie"))
# (city, country, share within the group)
EN_CITIES = (("London", "GB", 0.22), ("Manchester", "GB", 0.10), ("Edinburgh", "GB", 0.05), ("New York", "US", 0.16),
             ("San Francisco", "US", 0.09), ("Chicago", "US", 0.07), ("Toronto", "CA", 0.08), ("Sydney", "AU", 0.08),
             ("Singapore", "SG", 0.06), ("Dublin", "IE", 0.05), ("Berlin", "DE", 0.04))
ZH_CITIES = (("上海", "CN", 0.22), ("北京", "CN", 0.20), ("深圳", "CN", 0.13), ("杭州", "CN", 0.10),
             ("广州", "CN", 0.10), ("成都", "CN", 0.08), ("南京", "CN", 0.05), ("Singapore", "SG", 0.05),
             ("London", "GB", 0.04), ("Toronto", "CA", 0.03))
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
AGE_SHARES = (0.17, 0.31, 0.24, 0.15, 0.09, 0.04)
GENDERS = ("female", "male", "non-binary")
GENDER_SHARES = (0.54, 0.44, 0.02)
EN_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com")
ZH_DOMAINS = ("example.com", "example.net", "example.org")
ZH_SHARE = 0.35


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    email: str
    phone: str
    language: str  # "en" or "zh": the language the person writes feedback in
    attributes: dict


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def _weighted(rng: np.random.Generator, rows):
    weights = np.array([r[-1] for r in rows], dtype=float)
    return rows[int(rng.choice(len(rows), p=weights / weights.sum()))]


def person_make(rng: np.random.Generator, *, index: int) -> Person:
    """One customer's identity; `index` keeps e-mail addresses unique."""
    zh = rng.random() < ZH_SHARE
    if zh:
        (sur, sur_py), (given, given_py) = _pick(rng, ZH_SURNAMES), _pick(rng, ZH_GIVEN)
        name = sur + given
        email = f"{given_py}.{sur_py}{index}@{_pick(rng, ZH_DOMAINS)}"
        city, country, _ = _weighted(rng, ZH_CITIES)
    else:
        first, last = _pick(rng, EN_FIRST), _pick(rng, EN_LAST)
        name = f"{first} {last}"
        email = f"{first.lower()}.{last.lower()}{index}@{_pick(rng, EN_DOMAINS)}"
        city, country, _ = _weighted(rng, EN_CITIES)
    digits = rng.integers(0, 10, size=8)
    if country == "CN":
        phone = f"+86 1{_pick(rng, ('38', '39', '50', '58', '86', '88'))}{''.join(map(str, digits[:4]))} {''.join(map(str, digits[4:]))}"
    elif country in ("US", "CA"):
        phone = f"+1 {int(rng.integers(201, 990))} 555 01{''.join(map(str, digits[:2]))}"  # 555-0100..0199: fictional
    else:
        phone = f"+44 7700 900{''.join(map(str, digits[:3]))}"  # Ofcom's drama range
    attributes = {
        "city": city,
        "country": country,
        "age_band": AGE_BANDS[int(rng.choice(len(AGE_BANDS), p=AGE_SHARES))],
        "gender": GENDERS[int(rng.choice(len(GENDERS), p=GENDER_SHARES))],
        "language": "zh" if zh else "en",
    }
    return Person(name=name, email=email, phone=phone, language="zh" if zh else "en", attributes=attributes)
