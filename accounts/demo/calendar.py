"""The shop's calendar: weekly and yearly seasonality and sales days, as a daily intensity.

A `Calendar` covers the generated window day by day (UTC; the demo shop's clock). Each day
has an intensity factor = weekday factor x month factor x sale factor, normalised to mean 1
over the window. Its running sum Λ ("busy-days") is the clock that customers' habits tick
on: an inter-purchase time of 30 busy-days is about a month in February and two weeks
around Black Friday. Bargain hunters live on a second clock that is nearly still outside
sales and races during them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

# Monday .. Sunday: online shops peak on Sunday evening and Monday.
WEEKDAY = np.array([1.06, 0.97, 0.95, 0.96, 0.97, 0.98, 1.11])
# January .. December: a February lull, the 6.18 bump in June, the November/December peak.
MONTH = np.array([0.95, 0.82, 0.90, 0.92, 0.95, 1.02, 0.95, 0.92, 0.95, 1.00, 1.35, 1.45])
# Hour of day (shop time): night lull, lunch bump, evening peak.
HOUR = np.array([0.5, 0.3, 0.2, 0.15, 0.15, 0.2, 0.4, 0.8, 1.1, 1.2, 1.3, 1.4,
                 1.7, 1.6, 1.3, 1.2, 1.2, 1.3, 1.5, 1.9, 2.2, 2.2, 1.7, 1.0])
HOUR_P = HOUR / HOUR.sum()


def _black_friday(year: int) -> date:
    nov1 = date(year, 11, 1)
    first_friday = nov1 + timedelta(days=(4 - nov1.weekday()) % 7)
    return first_friday + timedelta(weeks=3)


def sale_days(year: int) -> dict[date, tuple[str, float]]:
    """{day: (sale name, demand multiplier)} for one calendar year."""
    days: dict[date, tuple[str, float]] = {}
    for d in range(2, 8):
        days[date(year, 1, d)] = ("winter-sale", 1.3)
    for d, m in ((16, 1.4), (17, 1.5), (18, 1.8)):
        days[date(year, 6, d)] = ("6.18", m)
    for d in range(8, 15):
        days[date(year, 7, d)] = ("summer-sale", 1.25)
    for d, m in ((9, 1.5), (10, 1.8), (11, 3.0), (12, 1.3)):
        days[date(year, 11, d)] = ("11.11", m)
    bf = _black_friday(year)
    for offset, m in ((0, 2.6), (1, 1.8), (2, 1.7), (3, 2.2)):  # Friday .. Cyber Monday
        days[bf + timedelta(days=offset)] = ("black-friday", m)
    for d in range(26, 32):
        days[date(year, 12, d)] = ("winter-sale", 1.3)
    return days


@dataclass(frozen=True, slots=True)
class Calendar:
    start: datetime  # midnight UTC of day 0
    as_of: datetime
    days: int
    sale_index: np.ndarray  # per day: index into sale_names, -1 when no sale
    sale_names: tuple[str, ...]
    normal: np.ndarray  # Λ at day boundaries (days + 1 values), everyday shoppers
    bargain: np.ndarray  # Λ at day boundaries, bargain hunters

    @property
    def horizon(self) -> float:
        """as_of in days since start."""
        return (self.as_of - self.start).total_seconds() / 86400.0

    def clock(self, profile: str) -> np.ndarray:
        return self.bargain if profile == "bargain" else self.normal

    def busy(self, t: np.ndarray | float, profile: str = "normal"):
        """Λ(t): busy-days elapsed at t (days since start)."""
        return np.interp(t, np.arange(self.days + 1), self.clock(profile))

    def calendar_time(self, s: np.ndarray, profile: str = "normal") -> np.ndarray:
        """Λ⁻¹(s): days since start at which `s` busy-days have elapsed."""
        return np.interp(s, self.clock(profile), np.arange(self.days + 1))

    def sale_of(self, t: float) -> str:
        i = int(t)
        return self.sale_names[self.sale_index[i]] if 0 <= i < self.days and self.sale_index[i] >= 0 else ""


def calendar_build(*, as_of: datetime, years: float) -> Calendar:
    end_day = as_of.date()
    days = int(round(365 * years)) + 1  # the window's last day is as_of's day
    start_day = end_day - timedelta(days=days - 1)
    start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=as_of.tzinfo)
    dates = [start_day + timedelta(days=i) for i in range(days)]
    sales: dict[date, tuple[str, float]] = {}
    for year in range(start_day.year, end_day.year + 1):
        sales.update(sale_days(year))
    names = tuple(sorted({name for name, _ in sales.values()}))
    weekday = WEEKDAY[[d.weekday() for d in dates]]
    month = MONTH[[d.month - 1 for d in dates]]
    boost = np.array([sales.get(d, ("", 1.0))[1] for d in dates])
    # The days just before Christmas are busy (gifts), the holidays themselves are quiet.
    xmas = np.array([0.6 if (d.month == 12 and d.day in (24, 25)) else 1.0 for d in dates])
    sale_index = np.array([names.index(sales[d][0]) if d in sales else -1 for d in dates])
    normal = weekday * month * boost * xmas
    # Bargain hunters: a trickle outside sales, a flood during them.
    bargain = weekday * np.where(sale_index >= 0, 6.0 * boost, 0.25)
    return Calendar(
        start=start, as_of=as_of, days=days, sale_index=sale_index, sale_names=names,
        normal=np.concatenate([[0.0], np.cumsum(normal / normal.mean())]),
        bargain=np.concatenate([[0.0], np.cumsum(bargain / bargain.mean())]),
    )
