"""One precision for money across the project; round only at the edges."""
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings
from django.db import models

MONEY_DIGITS, MONEY_PLACES = 12, 2
CENT = Decimal("0.01")
MONEY_MAX = Decimal(10) ** (MONEY_DIGITS - MONEY_PLACES) - CENT


def money_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES, **kwargs)


def to_money(value) -> Decimal:
    """Parse a decimal string or number into a Decimal of cents.

    Raises ValueError with a readable message for anything that is not a finite amount
    that fits the column.
    """
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValueError(f"'{value}' is not a decimal amount.") from None
    if not amount.is_finite():
        raise ValueError(f"'{value}' is not a finite amount.")
    amount = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    if abs(amount) > MONEY_MAX:
        raise ValueError(f"'{value}' is larger than {MONEY_MAX}.")
    return amount


def currency() -> str:
    return settings.CURRENCY
