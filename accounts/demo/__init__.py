"""The demo store: a seeded, reproducible shop with two years of believable behaviour.

See docs/demo-store.md for the archetypes and distributions. Entry points:
`demo_store_generate` (writes, used by `manage.py generate_demo_store`), `demo_store_build`
(in memory, no database) and `demo_setup` (users and an API key for `make demo`).
"""
from .behaviour import ARCHETYPE_KEYS, ARCHETYPES, Archetype, archetype_of, customer_external_id
from .store import DemoResult, demo_store_build, demo_store_generate

__all__ = ["ARCHETYPES", "ARCHETYPE_KEYS", "Archetype", "DemoResult", "archetype_of", "customer_external_id",
           "demo_store_build", "demo_store_generate"]
