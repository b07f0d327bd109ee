"""The demo store's catalog: categories, brands, kinds of product, tags and prices.

Plain values only; nothing here touches the database. Prices are log-normal around a
median per category and end in .99; popularity within the catalog is log-normal too, so a
few items sell a lot and many sell little (the long tail a recommender has to handle).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    share: float  # of the catalog's items
    popularity: float  # prior weight of the category in customers' tastes
    price_median: float
    price_sigma: float  # of log(price)
    refund_rate: float  # per purchased line
    consumable: bool  # bought again and again (tea, serum ...), often several at once
    brands: tuple[str, ...]
    kinds: tuple[tuple[str, str], ...]  # (English, Chinese) names of the kinds of product
    tags: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category("Electronics", 0.16, 1.2, 95.0, 0.85, 0.06, False,
             ("Voltix", "Nordlight", "Kairo", "Zenbyte", "Auralis"),
             (("Wireless Earbuds", "无线耳机"), ("Bluetooth Speaker", "蓝牙音箱"), ("USB-C Charger", "充电器"),
              ("Smartwatch", "智能手表"), ("Power Bank", "充电宝"), ("Mechanical Keyboard", "机械键盘"),
              ("27-inch Monitor", "显示器"), ("Noise-Cancelling Headphones", "降噪耳机"), ("Action Camera", "运动相机"),
              ("E-Reader", "电子书阅读器")),
             ("wireless", "bluetooth", "usb-c", "portable", "smart-home", "gaming", "waterproof")),
    Category("Books", 0.14, 0.9, 15.0, 0.40, 0.02, False,
             ("Larkspur Press", "Bluequill", "Harbour House", "Northstar Books"),
             (("Cookbook", "菜谱"), ("Mystery Novel", "推理小说"), ("Science Fiction Novel", "科幻小说"),
              ("Picture Book", "绘本"), ("Biography", "传记"), ("Travel Guide", "旅行指南"),
              ("Programming Guide", "编程书"), ("Poetry Collection", "诗集")),
             ("bestseller", "paperback", "hardcover", "fiction", "non-fiction", "kids", "translated")),
    Category("Home & Kitchen", 0.15, 1.1, 32.0, 0.80, 0.05, False,
             ("Hearthwell", "Casa Lumo", "Oakfield", "Brewmaster"),
             (("Chef's Knife", "厨师刀"), ("Frying Pan", "平底锅"), ("Pour-over Coffee Set", "手冲咖啡壶"),
              ("Linen Bed Sheets", "亚麻床单"), ("Ceramic Dinner Set", "陶瓷餐具"), ("Air Fryer", "空气炸锅"),
              ("Scented Candle", "香薰蜡烛"), ("Rice Cooker", "电饭煲"), ("Throw Blanket", "毛毯")),
             ("kitchen", "bedroom", "eco", "handmade", "dishwasher-safe", "gift")),
    Category("Beauty", 0.12, 1.0, 21.0, 0.55, 0.03, True,
             ("Solis Skin", "Dewdrop", "Mirabelle", "Qingshan Herbals"),
             (("Hydrating Serum", "精华液"), ("Sunscreen SPF 50", "防晒霜"), ("Clay Face Mask", "面膜"),
              ("Lip Balm", "润唇膏"), ("Hair Oil", "护发精油"), ("Eye Cream", "眼霜"), ("Cleansing Foam", "洁面乳")),
             ("vegan", "fragrance-free", "sensitive-skin", "spf", "travel-size", "organic")),
    Category("Sports", 0.11, 0.8, 42.0, 0.80, 0.07, False,
             ("Stridewell", "Peakform", "Aerocore", "Tidewater"),
             (("Running Shoes", "跑鞋"), ("Yoga Mat", "瑜伽垫"), ("Resistance Bands", "弹力带"),
              ("Insulated Water Bottle", "保温水壶"), ("Trail Backpack", "登山包"), ("Dumbbell Pair", "哑铃"),
              ("Badminton Racket", "羽毛球拍")),
             ("running", "yoga", "outdoor", "fitness", "lightweight", "waterproof")),
    Category("Toys", 0.09, 0.6, 24.0, 0.70, 0.04, False,
             ("Bumblebox", "Tinker & Co", "Little Orbit"),
             (("Building Blocks Set", "积木"), ("Plush Panda", "熊猫公仔"), ("Wooden Puzzle", "木制拼图"),
              ("Remote-Control Car", "遥控车"), ("Board Game", "桌游"), ("Science Kit", "科学实验套装")),
             ("ages-3+", "ages-8+", "educational", "family", "gift", "wooden")),
    Category("Fashion", 0.14, 1.1, 38.0, 0.70, 0.12, False,
             ("Threadline", "Maison Arlo", "Kestrel", "Urban Loom"),
             (("Cotton T-Shirt", "T恤"), ("Denim Jacket", "牛仔外套"), ("Wool Scarf", "羊毛围巾"),
              ("Chino Trousers", "休闲裤"), ("Sneakers", "运动鞋"), ("Silk Blouse", "真丝衬衫"), ("Rain Jacket", "雨衣")),
             ("cotton", "wool", "unisex", "slim-fit", "summer", "winter", "limited-edition")),
    Category("Grocery", 0.09, 1.0, 8.0, 0.50, 0.01, True,
             ("Green Basket", "Golden Grain", "Tea Garden", "Orchard Lane"),
             (("Oolong Tea", "乌龙茶"), ("Coffee Beans", "咖啡豆"), ("Olive Oil", "橄榄油"), ("Wildflower Honey", "蜂蜜"),
              ("Jasmine Rice 5 kg", "茉莉香米"), ("Mixed Nuts", "坚果"), ("Dark Chocolate", "黑巧克力")),
             ("organic", "fair-trade", "gluten-free", "bulk", "snack")),
)
CATEGORY_NAMES = tuple(c.name for c in CATEGORIES)
MODELS = ("", "", "Pro", "Lite", "Classic", "Plus", "Mini", "Essential", "Deluxe", "Max", "Air", "Original")
COLOURS = ("Black", "White", "Navy", "Olive", "Sand", "Red", "Grey")
SHARED_TAGS = ("new", "gift-idea", "eco", "best-value")


@dataclass(frozen=True, slots=True)
class Catalog:
    """Parallel arrays, one entry per item (index = position)."""

    external_ids: tuple[str, ...]
    titles: tuple[str, ...]
    brands: tuple[str, ...]
    tags: tuple[tuple[str, ...], ...]
    kind_en: tuple[str, ...]
    kind_zh: tuple[str, ...]
    in_stock: tuple[bool, ...]
    prices: tuple[Decimal, ...]
    category: np.ndarray  # int index into CATEGORIES
    price: np.ndarray  # float, for sampling
    popularity: np.ndarray  # float weight, sums to 1 within each category

    def __len__(self) -> int:
        return len(self.external_ids)


def item_external_id(seed: int, index: int) -> str:
    return f"demo-{seed}-sku-{index:04d}"


def _price(rng: np.random.Generator, median: float, sigma: float) -> Decimal:
    raw = float(rng.lognormal(np.log(median), sigma))
    # Shop prices end in .99 (or .49 under 5).
    if raw < 5:
        return Decimal(f"{max(1, round(raw * 2)) / 2 - 0.01:.2f}")
    return Decimal(round(raw)) - Decimal("0.01")


def catalog_build(*, seed: int, items: int = 420) -> Catalog:
    """A catalog of `items` items, the same for the same seed."""
    rng = np.random.default_rng([seed, 1])
    shares = np.array([c.share for c in CATEGORIES])
    counts = np.floor(shares / shares.sum() * items).astype(int)
    counts[: items - counts.sum()] += 1
    ext, titles, brands, tags, kind_en, kind_zh, stock, prices, cats, pops = ([] for _ in range(10))
    for ci, (cat, n) in enumerate(zip(CATEGORIES, counts)):
        pop = rng.lognormal(0.0, 1.1, size=n)
        pops.append(pop / pop.sum())
        for _ in range(n):
            brand = cat.brands[rng.integers(len(cat.brands))]
            en, zh = cat.kinds[rng.integers(len(cat.kinds))]
            model = MODELS[rng.integers(len(MODELS))]
            title = " ".join(x for x in (brand, model, en) if x)
            if cat.name == "Fashion":
                title += f", {COLOURS[rng.integers(len(COLOURS))]}"
            k = int(rng.integers(1, 4))
            item_tags = list(rng.choice(cat.tags, size=min(k, len(cat.tags)), replace=False))
            if rng.random() < 0.25:
                item_tags.append(SHARED_TAGS[rng.integers(len(SHARED_TAGS))])
            ext.append(item_external_id(seed, len(ext)))
            titles.append(title)
            brands.append(brand)
            tags.append(tuple(sorted(set(item_tags))))
            kind_en.append(en)
            kind_zh.append(zh)
            stock.append(bool(rng.random() < 0.96))
            prices.append(_price(rng, cat.price_median, cat.price_sigma))
            cats.append(ci)
    return Catalog(
        external_ids=tuple(ext), titles=tuple(titles), brands=tuple(brands), tags=tuple(tags),
        kind_en=tuple(kind_en), kind_zh=tuple(kind_zh), in_stock=tuple(stock), prices=tuple(prices),
        category=np.array(cats), price=np.array([float(p) for p in prices]), popularity=np.concatenate(pops),
    )
