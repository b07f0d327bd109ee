"""PUT/GET /api/v1/customers/{external_id}/: partial upsert, validation, scopes, erased customers,
and the OpenAPI schema of the whole v1 API."""
from datetime import UTC, datetime

import pytest
from django.urls import URLPattern, URLResolver
from django.utils import timezone

from accounts.choices import ConsentSource
from accounts.models import Customer

pytestmark = pytest.mark.django_db

URL = "/api/v1/customers/{}/"
FULL = {
    "email": "mei@example.com",
    "name": "Li Mei",
    "phone": "+86 138 0000 0000",
    "attributes": {"city": "Shanghai", "age_band": "25-34"},
    "signup_at": "2025-03-14T17:26:53+08:00",
    "marketing_consent": True,
}


def put(client, external_id, body):
    return client.put(URL.format(external_id), body, format="json")


def test_put_creates_the_profile_with_201_and_records_consent(api_client):
    """A first PUT creates the customer; the consent it states is stamped with time and source."""
    before = timezone.now()
    response = put(api_client, "c-1", FULL)
    assert response.status_code == 201, response.data
    body = response.json()
    assert body["external_id"] == "c-1"
    assert (body["email"], body["name"], body["phone"]) == ("mei@example.com", "Li Mei", "+86 138 0000 0000")
    assert body["attributes"] == {"city": "Shanghai", "age_band": "25-34"}
    assert body["signup_at"] == "2025-03-14T09:26:53Z"  # stored and shown in UTC
    customer = Customer.objects.get(external_id="c-1")
    assert customer.signup_at == datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
    assert customer.marketing_consent is True
    assert customer.consent_source == ConsentSource.API and customer.consent_at >= before


def test_put_again_updates_only_the_fields_given_with_200(api_client):
    put(api_client, "c-1", FULL)
    consent_at = Customer.objects.get().consent_at

    response = put(api_client, "c-1", {"name": "Mei Li", "marketing_consent": True})

    assert response.status_code == 200
    customer = Customer.objects.get()
    assert customer.name == "Mei Li"
    assert customer.email == "mei@example.com" and customer.phone == "+86 138 0000 0000"
    assert customer.attributes == FULL["attributes"]
    assert customer.consent_at == consent_at, "consent unchanged: its timestamp must not move"
    assert Customer.objects.count() == 1


def test_consent_change_is_recorded(api_client):
    put(api_client, "c-1", FULL)
    Customer.objects.update(consent_at=datetime(2025, 1, 1, tzinfo=UTC), consent_source=ConsentSource.IMPORT)

    response = put(api_client, "c-1", {"marketing_consent": False})

    assert response.json()["marketing_consent"] is False
    customer = Customer.objects.get()
    assert customer.consent_source == ConsentSource.API
    assert customer.consent_at > datetime(2025, 1, 1, tzinfo=UTC)


def test_null_clears_a_field_and_attributes_are_replaced_whole(api_client):
    put(api_client, "c-1", FULL)
    response = put(api_client, "c-1", {"phone": None, "attributes": {"city": "Beijing"}, "signup_at": None})
    assert response.status_code == 200
    customer = Customer.objects.get()
    assert customer.phone == "" and customer.signup_at is None
    assert customer.attributes == {"city": "Beijing"}


def test_get_returns_the_profile(api_client):
    put(api_client, "c-1", FULL)
    response = api_client.get(URL.format("c-1"))
    assert response.status_code == 200
    assert response.json()["email"] == "mei@example.com"
    assert response.json()["erased_at"] is None


def test_get_unknown_customer_is_404_in_the_error_shape(api_client):
    response = api_client.get(URL.format("nobody"))
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "No customer with external id 'nobody'.",
                               "extra": {"external_id": "nobody"}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"signup_at": "2025-03-14T09:26:53"}, "signup_at"),  # no time zone
        ({"signup_at": "yesterday"}, "signup_at"),
        ({"attributes": ["a", "b"]}, "attributes"),
        ({"marketing_consent": "perhaps"}, "marketing_consent"),
        ({"name": "x" * 201}, "name"),
        ({"emial": "typo@example.com"}, "emial"),  # unknown fields are refused, not ignored
        ({"external_id": "someone-else"}, "external_id"),
    ],
)
def test_validation_errors_name_the_field_and_store_nothing(api_client, body, field):
    response = put(api_client, "c-1", body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert field in response.json()["extra"]["fields"]
    assert not Customer.objects.exists()


def test_bad_field_on_update_leaves_the_profile_unchanged(api_client):
    put(api_client, "c-1", FULL)
    response = put(api_client, "c-1", {"name": "New", "email": "broken"})
    assert response.status_code == 400
    assert Customer.objects.get().name == "Li Mei"


def test_external_id_longer_than_the_column_is_400(api_client):
    response = put(api_client, "x" * 129, {"name": "A"})
    assert response.status_code == 400
    assert "external_id" in response.json()["extra"]["fields"]


def test_body_that_is_not_an_object_is_400(api_client):
    response = put(api_client, "c-1", ["name"])
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_external_id_may_be_repeated_in_the_body(api_client):
    response = put(api_client, "c-1", {"external_id": "c-1", "name": "A"})
    assert response.status_code == 201


def test_erased_customer_cannot_be_filled_again(api_client):
    """Erasure is final: a storefront that syncs the old profile again gets 409 and nothing is stored."""
    put(api_client, "c-1", FULL)
    api_client.post(URL.format("c-1") + "erase/")

    response = put(api_client, "c-1", FULL)

    assert response.status_code == 409
    assert response.json()["code"] == "customer_erased"
    customer = Customer.objects.get()
    assert (customer.email, customer.name, customer.phone, customer.attributes) == ("", "", "", {})
    assert customer.marketing_consent is False


def test_scopes(make_api_client):
    reader, writer = make_api_client(["customers:read"]), make_api_client(["customers:write"])
    assert put(reader, "c-1", FULL).status_code == 403
    assert put(writer, "c-1", FULL).status_code == 201
    assert writer.get(URL.format("c-1")).status_code == 403
    assert writer.get(URL.format("c-1")).json()["code"] == "permission_denied"
    assert reader.get(URL.format("c-1")).status_code == 200


def test_missing_key_is_401(client):
    response = client.get(URL.format("c-1"))
    assert response.status_code == 401
    assert response.json()["code"] in {"not_authenticated", "authentication_failed"}


# --- OpenAPI ---------------------------------------------------------------------------------------


def _v1_routes() -> dict[str, object]:
    """Every route under /api/v1/ as an OpenAPI path ({name} for converters) -> its view class."""
    import re

    from crm import api

    routes: dict[str, object] = {}

    def walk(patterns, prefix):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", prefix + str(p.pattern))
                routes["/api/v1/" + path] = getattr(p.callback, "view_class", None)

    walk(api.urlpatterns, "")
    return routes


def test_schema_lists_every_v1_path_with_its_scope(client):
    """Every /api/v1/ route is documented, and each operation's description names the scope it needs."""
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    routes = _v1_routes()
    assert routes, "no /api/v1/ routes found"
    missing = sorted(set(routes) - set(paths))
    assert not missing, f"not in the schema: {missing}"
    for path, view in routes.items():
        required = getattr(view, "required_scope", None)
        for method, operation in paths[path].items():
            scope = required.get(method.upper()) if isinstance(required, dict) else required
            if scope:
                assert f"`{scope}`" in operation.get("description", ""), f"{method.upper()} {path} does not name {scope}"


def test_docs_page_is_served(client):
    assert client.get("/api/docs/").status_code == 200


def test_schema_generates_without_warnings():
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    from drf_spectacular.validation import validate_schema

    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)  # raises on an invalid OpenAPI 3 document
    assert not GENERATOR_STATS._warn_cache, sorted(GENERATOR_STATS._warn_cache)
    assert not GENERATOR_STATS._error_cache, sorted(GENERATOR_STATS._error_cache)
