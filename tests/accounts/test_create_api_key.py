"""manage.py create_api_key: the key is printed once, alone on the last line, and works."""
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import ApiKey

pytestmark = pytest.mark.django_db


def run(*args) -> list[str]:
    out = StringIO()
    call_command("create_api_key", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_last_line_is_a_working_key_with_exactly_those_scopes():
    lines = run("Web shop", "--scopes", "customers:read, events:write")
    key = lines[-1]
    assert len(lines) > 1 and " " not in key
    stored = ApiKey.objects.get()
    assert stored.name == "Web shop" and stored.scopes == ["customers:read", "events:write"]
    assert key not in stored.hashed_key  # only a hash is stored

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert client.get("/api/v1/customers/nobody/").status_code == 404  # authenticated, scope ok, unknown customer
    assert client.put("/api/v1/customers/c-1/", {"name": "A"}, format="json").status_code == 403  # no customers:write


def test_unknown_scope_is_a_command_error_naming_it():
    with pytest.raises(CommandError, match="customers:delete"):
        run("Web shop", "--scopes", "customers:read,customers:delete")
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("args", [("Web shop",), ("--scopes", "events:write")])
def test_name_and_scopes_are_required(args):
    with pytest.raises(CommandError):
        run(*args)


def test_revoke_by_prefix_stops_the_key():
    key = run("POS", "--scopes", "customers:read")[-1]
    prefix = ApiKey.objects.get().prefix

    assert "Revoked" in run("--revoke", prefix)[-1]
    run("--revoke", prefix)  # again: harmless

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert client.get("/api/v1/customers/nobody/").status_code == 401
    assert ApiKey.objects.get().revoked_at is not None


def test_revoke_unknown_prefix_is_an_error():
    with pytest.raises(CommandError, match="nope"):
        run("--revoke", "nope")
