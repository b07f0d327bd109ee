"""From the events table to the arrays the algorithms learn from (querysets to matrices).

Set-based: one `values_list` scan over the training window (the BRIN index on occurred_at on
PostgreSQL), streamed in chunks into numpy arrays; never a model instance per row.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import scipy.sparse as sp
from django.conf import settings

from accounts.models import Event

from .algorithms import DEFAULT_EVENT_WEIGHTS, interaction_matrix, item_tokens
from .models import Item

CHUNK = 50_000


def event_weights() -> dict[str, float]:
    """Event-type weights (settings.RECS_EVENT_WEIGHTS overrides the algorithms' defaults)."""
    return {**DEFAULT_EVENT_WEIGHTS, **getattr(settings, "RECS_EVENT_WEIGHTS", {})}


@dataclass
class EventLog:
    """Interactions as parallel arrays: customer pk, item pk, type code, value, Unix time."""

    customer: np.ndarray
    item: np.ndarray
    type_code: np.ndarray
    value: np.ndarray
    ts: np.ndarray
    types: list[str]

    def __len__(self) -> int:
        return len(self.customer)

    def subset(self, mask: np.ndarray) -> "EventLog":
        return EventLog(self.customer[mask], self.item[mask], self.type_code[mask], self.value[mask], self.ts[mask],
                        self.types)

    def type_names(self) -> np.ndarray:
        return np.asarray(self.types, dtype=object)[self.type_code] if len(self) else np.array([], dtype=object)


def event_log(*, since: datetime, until: datetime) -> EventLog:
    """Every weighted interaction (item events of a type with a weight) in [since, until)."""
    weights = event_weights()
    types = sorted(t for t, w in weights.items() if w)
    code = {t: i for i, t in enumerate(types)}
    base = Event.objects.filter(occurred_at__gte=since, occurred_at__lt=until, item__isnull=False)
    cust, item, tcode, value, ts = [], [], [], [], []
    # Most events carry no value: read them without their JSON properties (decoding those is
    # the slowest part of the scan); a rating's value is properties.rating (or the amount).
    plain = [t for t in types if t != "rate"]
    for c, i, t, at in base.filter(type__in=plain).values_list("customer_id", "item_id", "type", "occurred_at").iterator(
            chunk_size=CHUNK):
        cust.append(c)
        item.append(i)
        tcode.append(code[t])
        value.append(1.0)
        ts.append(at.timestamp())
    if "rate" in code:
        for c, i, amount, props, at in base.filter(type="rate").values_list(
                "customer_id", "item_id", "amount", "properties", "occurred_at").iterator(chunk_size=CHUNK):
            raw = props.get("rating") if isinstance(props, dict) else None
            try:
                v = float(raw if raw is not None else (amount if amount is not None else 1.0))
            except (TypeError, ValueError):
                v = 1.0
            cust.append(c)
            item.append(i)
            tcode.append(code["rate"])
            value.append(v)
            ts.append(at.timestamp())
    return EventLog(np.asarray(cust, dtype=np.int64), np.asarray(item, dtype=np.int64),
                    np.asarray(tcode, dtype=np.int16), np.asarray(value, dtype=np.float64),
                    np.asarray(ts, dtype=np.float64), types)


def encode(ids: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions of `values` in the sorted array `ids`, mask of the values found)."""
    pos = np.searchsorted(ids, values)
    pos = np.minimum(pos, max(len(ids) - 1, 0))
    found = (ids[pos] == values) if len(ids) else np.zeros(len(values), dtype=bool)
    return pos, found


def weighted_matrix(log: EventLog, users: np.ndarray, items: np.ndarray, *, half_life_days: float | None,
                    as_of: float) -> sp.csr_matrix:
    """The users x items csr matrix of `log`; `users`/`items` are sorted pk arrays (rows/columns),
    interactions of other customers or items are dropped."""
    u, fu = encode(users, log.customer)
    i, fi = encode(items, log.item)
    keep = fu & fi
    sub = log.subset(keep)
    return interaction_matrix(u[keep], i[keep], shape=(len(users), len(items)), event_types=sub.type_names(),
                              values=sub.value, timestamps=sub.ts, event_weights=event_weights(),
                              half_life_days=half_life_days, as_of=as_of)


def timestamps_matrix(log: EventLog, users: np.ndarray, items: np.ndarray, pattern: sp.csr_matrix) -> sp.csr_matrix:
    """Latest interaction time per (user, item) on the sparsity pattern of `pattern` (for trending)."""
    u, fu = encode(users, log.customer)
    i, fi = encode(items, log.item)
    keep = fu & fi
    r, c, t = u[keep], i[keep], log.ts[keep]
    order = np.lexsort((t, c, r))
    r, c, t = r[order], c[order], t[order]
    last = np.ones(len(r), dtype=bool)
    last[:-1] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
    T = sp.csr_matrix((t[last], (r[last], c[last])), shape=pattern.shape)
    mask = pattern.copy()
    mask.data[:] = 1.0
    T = T.multiply(mask).tocsr()
    T.sort_indices()
    return T


def item_feature_tokens(item_pks: list[int]) -> tuple[list[list[str]], list[str]]:
    """(token list per item, category per item) aligned with `item_pks`."""
    rows = {pk: (cat, brand, tags) for pk, cat, brand, tags in
            Item.objects.filter(pk__in=item_pks).values_list("pk", "category", "brand", "tags").iterator(chunk_size=CHUNK)}
    tokens, categories = [], []
    for pk in item_pks:
        cat, brand, tags = rows.get(pk, ("", "", []))
        tokens.append(item_tokens(cat, brand, tags if isinstance(tags, list) else []))
        categories.append(cat or "")
    return tokens, categories
