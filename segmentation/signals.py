"""Hooks other apps use. Sent after the writing transaction has committed."""
from django.dispatch import Signal

# Sent once per recompute run (and per override) that recorded tier changes.
# kwargs: run_id (int | None), change_ids_query (a TierChange queryset of the new changes).
# Receivers ("on entering tier X" campaign triggers) filter it by to_tier.
tiers_changed = Signal()
