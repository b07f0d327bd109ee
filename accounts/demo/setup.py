"""`make demo`'s setup: the demo store, one staff user per role, an admin, and an API key."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from crm.core.errors import ApplicationError

from ..choices import ApiScope
from ..models import ApiKey, Customer
from ..roles import ANALYST, CUSTOMER_SERVICE, OPERATIONS
from ..services.api_keys import api_key_create
from .store import DemoResult, demo_store_generate

DEMO_PASSWORD = "demo"
DEMO_KEY_NAME = "demo storefront"
# (username, group or None for the superuser, what they are)
DEMO_USERS = (
    ("ops", OPERATIONS, "Operations"),
    ("support", CUSTOMER_SERVICE, "Customer service"),
    ("analyst", ANALYST, "Analyst (read-only)"),
    ("admin", None, "Superuser (Django admin)"),
)


class DemoModeOff(ApplicationError):
    code, http_status = "demo_mode_off", 403

    def __init__(self):
        super().__init__("Demo setup only runs in demo mode: it creates users whose password is 'demo'. "
                         "Set STRATUM_DEMO=1 (make demo does) on a machine that is not production.")


@dataclass(slots=True)
class DemoSetup:
    generated: DemoResult | None  # None when the store already had customers
    users: list[tuple[str, str]]  # (username, role)
    api_key: str
    api_key_prefix: str
    revoked_keys: int


@transaction.atomic
def _users_and_key() -> tuple[list[tuple[str, str]], str, str, int]:
    User = get_user_model()
    users, admin = [], None
    for username, group_name, role in DEMO_USERS:
        user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
        user.is_active = user.is_staff = True
        user.is_superuser = group_name is None
        user.set_password(DEMO_PASSWORD)
        user.save()
        if group_name:
            group, _ = Group.objects.get_or_create(name=group_name)
            user.groups.set([group])
        else:
            admin = user
        users.append((username, role))
    # A hashed key cannot be shown again: revoke the previous demo key and print a fresh one.
    revoked = ApiKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True).update(revoked_at=timezone.now())
    key, plain = api_key_create(name=DEMO_KEY_NAME, scopes=list(ApiScope.values), created_by=admin)
    return users, plain, key.prefix, revoked


def demo_setup(*, customers: int, seed: int = 42,
               progress: Callable[[str, int, int], None] | None = None) -> DemoSetup:
    """Fill an empty database with the demo store; (re)create the demo users and a fresh API key.

    Refuses unless settings.DEMO_MODE is on. The store is generated only when there are no
    customers yet, so running `make demo` again keeps the data and only renews the key.
    """
    if not settings.DEMO_MODE:
        raise DemoModeOff()
    generated = None
    if not Customer.objects.exists():
        generated = demo_store_generate(customers=customers, seed=seed, progress=progress)
    users, plain, prefix, revoked = _users_and_key()
    return DemoSetup(generated=generated, users=users, api_key=plain, api_key_prefix=prefix, revoked_keys=revoked)
