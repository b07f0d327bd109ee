"""A real Celery worker process, fed through Redis, writes to PostgreSQL."""
import pytest

from accounts.models import Customer, DataImport, Event
from crm.celery import app
from tests.workers import celery_worker, require_real_services

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_worker_runs_an_import_task_that_writes_to_postgresql(tmp_path, monkeypatch, client, settings):
    """The task travels through the broker (not eagerly), the worker runs it, rows land in the test DB."""
    require_real_services()
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    csv = tmp_path / "orders.csv"
    csv.write_text(
        "customer,occurred_at,type,item,quantity,amount\n"
        "w-1,2026-03-01T10:00:00Z,purchase,sku-1,1,19.90\n"
        "w-2,2026-03-02T11:00:00Z,purchase,sku-2,2,5.00\n"
    )
    from accounts.tasks import import_transactions

    with celery_worker(queues="ingest,default", log=tmp_path / "worker.log"):
        result = import_transactions.delay(str(csv), "csv")
        import_id = result.get(timeout=60)
        settings.CELERY_TASK_ALWAYS_EAGER = False
        health = client.get("/healthz")
    assert health.status_code == 200, health.json()
    assert health.json()["components"]["worker"]["workers"], "the running worker answers the health check's ping"

    run = DataImport.objects.get(pk=import_id)
    assert run.status == "succeeded"
    assert set(Customer.objects.values_list("external_id", flat=True)) == {"w-1", "w-2"}
    assert Event.objects.filter(type="purchase").count() == 2
