"""Hooks other apps use. Sent after the writing transaction has committed."""
from django.dispatch import Signal

# Sent once per recompute run (and per override) that recorded tier changes.
# kwargs: run_id (int | None), changes (a TierChange queryset of the new changes).
# Receivers: campaigns' "on entering tier X" triggers filter it by to_tier; recommendations
# drop the cached lists of the customers in it.
tiers_changed = Signal()
