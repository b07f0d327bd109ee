"""Name search stays indexed on PostgreSQL (customer service searches a million customers)."""
import pytest
from django.db import connection

from accounts.models import Customer
from accounts.selectors import customer_search

pytestmark = pytest.mark.django_db


def test_name_search_uses_the_trigram_index_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the trigram index is PostgreSQL's (SQLite scans the demo-sized table)")
    Customer.objects.bulk_create([Customer(external_id=f"c{i}", name=f"Customer {i}") for i in range(200)]
                                 + [Customer(external_id="c-li", name="Li Mei")])
    qs = customer_search(query="mei")
    assert list(qs.values_list("external_id", flat=True)) == ["c-li"]
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")  # a 201-row table: make the planner show the index it can use
        sql, params = qs.query.sql_with_params()
        cur.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "customer_name_trgm" in plan, plan
