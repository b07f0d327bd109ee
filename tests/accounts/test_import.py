"""import_transactions: the real CDNOW and MovieLens files, the Stratum CSV, dedup, bad rows, atomicity."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from accounts.models import Customer, DataImport, Event
from accounts.services import imports
from accounts.services.imports import ImportFileError, latest_data_end, transactions_import
from recommendations.models import Item

pytestmark = pytest.mark.django_db

HEADER = "customer,occurred_at,type,item,quantity,amount\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _nothing_stored() -> bool:
    return not (Customer.objects.exists() or Event.objects.exists() or Item.objects.exists())


# --- Real datasets --------------------------------------------------------------------------


@pytest.mark.shared_data
def test_cdnow_log_imports_every_customer_and_purchase_and_reimport_adds_nothing(shared_data):
    """The whole CDNOW log: 23,570 customers ('cdnow-00001'...), 69,659 purchases, USD 2,500,315.63,
    dated 1997-01-01..1998-06-30 (noon UTC); a second import creates nothing."""
    path = shared_data / "cdnow" / "CDNOW_master.txt"

    run = transactions_import(path=path, format="cdnow")

    assert (run.status, run.rows_total, run.rows_bad) == ("succeeded", 69_659, 0)
    assert (run.customers_created, run.events_created, run.events_duplicate) == (23_570, 69_659, 0)
    assert Customer.objects.count() == 23_570
    assert Customer.objects.filter(external_id__in=["cdnow-00001", "cdnow-23570"]).count() == 2
    purchases = Event.objects.filter(type="purchase")
    assert purchases.count() == 69_659
    # Summed in Python: SQLite's SUM over a decimal column goes through floating point.
    assert sum(purchases.values_list("amount", flat=True)) == Decimal("2500315.63")
    assert purchases.aggregate(q=Sum("quantity"))["q"] == 167_881
    assert run.data_start == datetime(1997, 1, 1, 12, tzinfo=UTC)
    assert run.data_end == datetime(1998, 6, 30, 12, tzinfo=UTC)
    assert latest_data_end() == run.data_end
    first = Customer.objects.get(external_id="cdnow-00001")
    assert first.first_seen_at == first.last_seen_at == datetime(1997, 1, 1, 12, tzinfo=UTC)

    again = transactions_import(path=path, format="cdnow")

    assert (again.customers_created, again.events_created, again.events_duplicate) == (0, 0, 69_659)
    assert Event.objects.count() == 69_659 and Customer.objects.count() == 23_570


@pytest.mark.shared_data
def test_movielens_imports_users_movies_and_ratings_and_reimport_adds_nothing(shared_data):
    """MovieLens 100k: 943 customers with demographics, 1,682 active titled movies with genres,
    100,000 rate events carrying the rating; a second import creates nothing."""
    path = shared_data / "movielens-100k" / "u.data"

    run = transactions_import(path=path, format="movielens")

    assert (run.status, run.rows_total, run.rows_bad) == ("succeeded", 100_000, 0)
    assert (run.customers_created, run.items_created, run.events_created) == (943, 1_682, 100_000)
    assert Customer.objects.count() == 943 and Item.objects.count() == 1_682
    assert Event.objects.filter(type="rate").count() == 100_000
    user = Customer.objects.get(external_id="ml-1")
    assert user.attributes == {"age": 24, "age_band": "18-24", "gender": "M", "occupation": "technician",
                               "zip": "85711"}
    toy_story = Item.objects.get(external_id="ml-1")
    assert (toy_story.title, toy_story.category, toy_story.active) == ("Toy Story (1995)", "Animation", True)
    assert toy_story.tags == ["Animation", "Children's", "Comedy"]
    assert Item.objects.filter(title="Misérables, Les (1995)").exists()  # latin-1 decoded
    assert Item.objects.filter(active=False).count() == 0
    rating = Event.objects.get(customer__external_id="ml-196", item__external_id="ml-242")
    assert rating.properties == {"rating": 3}
    assert (rating.amount, rating.quantity) == (None, None)
    assert rating.occurred_at == datetime.fromtimestamp(881250949, tz=UTC)

    again = transactions_import(path=path.parent, format="movielens")  # the folder works too

    assert (again.customers_created, again.items_created, again.events_created) == (0, 0, 0)
    assert again.events_duplicate == 100_000
    assert Event.objects.count() == 100_000


# --- Stratum CSV ------------------------------------------------------------------------------


def test_csv_bad_rows_are_reported_with_line_numbers_and_good_rows_kept(tmp_path):
    path = _write(tmp_path / "orders.csv", HEADER + (
        "c-1,2026-03-01T10:00:00Z,purchase,sku-1,1,19.90\n"  # line 2: good
        "c-2,yesterday,purchase,sku-1,1,5.00\n"              # line 3: bad date
        "\n"                                                 # line 4: blank, ignored
        "c-3,2026-03-02,explode,,,\n"                        # line 5: bad type
        "c-4,2026-03-02,purchase,,1,-3.00\n"                 # line 6: negative amount on a purchase
        "c-5,2026-03-02,refund,sku-1,1,-3.00\n"              # line 7: good (refunds may be negative)
        "c-6,2026-03-02,view\n"                              # line 8: too few cells
        ",2026-03-02,view,,,\n"                              # line 9: no customer
        "c-7,2026-03-03,purchase,sku-2,two,1.00\n"           # line 10: bad quantity
    ))

    run = transactions_import(path=path, format="csv")

    assert (run.status, run.rows_total, run.rows_bad, run.events_created) == ("succeeded", 8, 6, 2)
    assert [e["line"] for e in run.errors] == [3, 5, 6, 8, 9, 10]
    assert "occurred_at 'yesterday'" in run.errors[0]["error"]
    assert "type 'explode'" in run.errors[1]["error"]
    assert "only a refund" in run.errors[2]["error"]
    assert set(Customer.objects.values_list("external_id", flat=True)) == {"c-1", "c-5"}
    assert Event.objects.get(customer__external_id="c-5").amount == Decimal("-3.00")


def test_csv_reimport_adds_nothing_and_appended_rows_add_only_themselves(tmp_path):
    """Ids come from the content plus an occurrence counter: identical rows are separate events,
    and a file that grew imports only its new rows."""
    rows = ("c-1,2026-03-01,purchase,sku-1,1,10.00\n"
            "c-1,2026-03-01,purchase,sku-1,1,10.00\n"  # a second identical order that day
            "c-2,2026-03-02,view,sku-1,,\n")
    path = _write(tmp_path / "events.csv", HEADER + rows)
    first = transactions_import(path=path, format="csv")
    assert (first.events_created, first.events_duplicate) == (3, 0)

    again = transactions_import(path=path, format="csv")
    assert (again.events_created, again.events_duplicate, again.customers_created) == (0, 3, 0)

    _write(path, HEADER + rows + "c-1,2026-03-01,purchase,sku-1,1,10.00\n" + "c-3,2026-03-05,login,,,\n")
    grown = transactions_import(path=path, format="csv")

    assert (grown.events_created, grown.events_duplicate, grown.customers_created) == (2, 3, 1)
    assert Event.objects.filter(customer__external_id="c-1").count() == 3
    assert Event.objects.count() == 5


def test_csv_times_optional_columns_and_explicit_event_ids(tmp_path):
    path = _write(tmp_path / "mixed.csv", (
        "Type,Customer,Occurred_At,event_id,platform,properties\n"
        'view,c-1,2026-03-01,,,\n'                                   # date only: midnight UTC
        'view,c-1,2026-03-01T10:00:00,,web,\n'                       # naive: UTC
        'rate,c-1,2026-03-01T10:00:00+02:00,my-1,ios,"{""rating"": 4}"\n'
        'rate,c-1,2026-03-01T11:00:00+02:00,my-1,ios,\n'             # same explicit id: duplicate
    ))

    run = transactions_import(path=path, format="csv")

    assert (run.events_created, run.events_duplicate, run.rows_bad) == (3, 1, 0)
    times = sorted(Event.objects.values_list("occurred_at", flat=True))
    assert times == [datetime(2026, 3, 1, 0, tzinfo=UTC), datetime(2026, 3, 1, 8, tzinfo=UTC),
                     datetime(2026, 3, 1, 10, tzinfo=UTC)]
    mine = Event.objects.get(event_id="my-1")
    assert (mine.platform, mine.properties) == ("ios", {"rating": 4})
    assert Event.objects.get(occurred_at=datetime(2026, 3, 1, 0, tzinfo=UTC)).platform == "import"
    assert (run.data_start, run.data_end) == (datetime(2026, 3, 1, 0, tzinfo=UTC), datetime(2026, 3, 1, 10, tzinfo=UTC))
    assert all(len(e) <= 64 for e in Event.objects.values_list("event_id", flat=True))


def test_small_cdnow_file_without_header_and_with_a_bad_row(tmp_path):
    path = _write(tmp_path / "cdnow.txt", (
        " 00001 19970101  1  11.77\r\n"
        " 00002 19970112  1  12.00\r\n"
        " 00002 19970231  1  12.00\r\n"   # no 31 February
        " 00002 19970112  1  12.00\r\n"   # same customer and day again: a separate order
    ))

    run = transactions_import(path=path, format="cdnow")

    assert (run.rows_total, run.rows_bad, run.events_created) == (4, 1, 3)
    assert run.errors == [{"line": 3, "error": "date '19970231' is not a date in YYYYMMDD form"}]
    assert Event.objects.filter(customer__external_id="cdnow-00002").count() == 2


# --- Rejected files: nothing written ---------------------------------------------------------


@pytest.mark.parametrize(("fmt", "content", "message"), [
    ("cdnow", HEADER + "c-1,2026-03-01,purchase,,,\n", "does not look like a CDNOW log"),
    ("csv", " customer_id  date number_of_cds  dollar_value\r\n 00001 19970101 1 11.77\r\n", "missing column(s) customer, occurred_at, type"),
    ("csv", "customer,occurred_at,type,ammount\nc-1,2026-03-01,purchase,1\n", "unknown column(s) 'ammount'"),
    ("movielens", HEADER + "c-1,2026-03-01,purchase,,,\n", "does not look like MovieLens u.data"),
    ("csv", "", "is empty"),
])
def test_a_file_in_the_wrong_format_is_rejected_and_writes_nothing(tmp_path, fmt, content, message):
    path = _write(tmp_path / "u.data", content)

    with pytest.raises(CommandError) as caught:
        call_command("import_transactions", str(path), "--format", fmt, "--no-progress", stdout=StringIO())

    assert message in str(caught.value)
    assert _nothing_stored() and not DataImport.objects.exists()


def test_csv_that_is_not_utf8_is_rejected_with_its_line(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(HEADER.encode() + "c-1,2026-03-01,purchase,Café,1,1.00\n".encode("latin-1"))

    with pytest.raises(ImportFileError, match="not utf-8-sig text: undecodable byte at line 2"):
        transactions_import(path=path, format="csv")
    assert _nothing_stored()


def test_missing_file_is_rejected_with_a_clear_message(tmp_path):
    with pytest.raises(CommandError, match=r"Import file .*nope\.csv does not exist"):
        call_command("import_transactions", str(tmp_path / "nope.csv"), "--format", "csv", stdout=StringIO())
    assert not DataImport.objects.exists()


def test_movielens_without_its_side_files_is_rejected(tmp_path):
    path = _write(tmp_path / "u.data", "196\t242\t3\t881250949\n")

    with pytest.raises(ImportFileError, match=r"MovieLens user file .*u\.user does not exist"):
        transactions_import(path=path, format="movielens")
    assert _nothing_stored()


# --- All or nothing ---------------------------------------------------------------------------


def test_a_failure_part_way_leaves_nothing_and_marks_the_import_failed(tmp_path, monkeypatch):
    """Chunks already stored are rolled back with the rest when a later chunk fails."""
    monkeypatch.setattr(imports, "CHUNK_ROWS", 2)
    real_store, calls = imports.events_store, []

    def store_then_crash(rows, **kwargs):
        calls.append(len(rows))
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real_store(rows, **kwargs)

    monkeypatch.setattr(imports, "events_store", store_then_crash)
    path = _write(tmp_path / "big.csv", HEADER + "".join(f"c-{n},2026-03-01,login,,,\n" for n in range(5)))

    with pytest.raises(RuntimeError, match="disk full"):
        transactions_import(path=path, format="csv")

    assert _nothing_stored()
    run = DataImport.objects.get()
    assert (run.status, run.error, run.events_created) == ("failed", "RuntimeError: disk full", 0)
    assert latest_data_end() is None


# --- Command, task, selector ---------------------------------------------------------------------


def test_command_prints_bad_rows_and_a_summary(tmp_path):
    path = _write(tmp_path / "orders.csv", HEADER + "c-1,2026-03-01,purchase,sku-1,1,19.90\nc-2,soon,view,,,\n")
    out = StringIO()

    call_command("import_transactions", str(path), "--format", "csv", "--no-progress", stdout=out)

    text = out.getvalue()
    assert "1 bad row(s) skipped" in text and "line 3: occurred_at 'soon'" in text
    for line in ("rows read          2", "bad rows           1", "customers created  1", "events created     1",
                 "duplicates         0", "data range         2026-03-01 00:00 .. 2026-03-01 00:00 UTC"):
        assert line in text
    assert "seconds" in text


def test_task_imports_and_returns_the_data_import_id(tmp_path):
    from accounts.tasks import import_transactions

    path = _write(tmp_path / "orders.csv", HEADER + "w-1,2026-03-01T10:00:00Z,purchase,sku-1,1,19.90\n")

    import_id = import_transactions(str(path), "csv")

    assert DataImport.objects.get(pk=import_id).events_created == 1


def test_latest_data_end_is_the_last_day_of_the_newest_data_among_succeeded_imports(tmp_path):
    transactions_import(path=_write(tmp_path / "a.csv", HEADER + "c-1,2025-01-01,login,,,\nc-1,2025-06-30,login,,,\n"),
                        format="csv")
    transactions_import(path=_write(tmp_path / "b.csv", HEADER + "c-1,2024-02-01,login,,,\n"), format="csv")
    DataImport.objects.create(format="csv", source="x", status="failed", data_end=datetime(2030, 1, 1, tzinfo=UTC))

    assert latest_data_end() == datetime(2025, 6, 30, tzinfo=UTC)


def test_movielens_fills_in_items_seen_before_and_reports_bad_side_file_lines(tmp_path):
    """A movie first seen in an event (inactive, untitled) gets its title and genres and is
    activated; existing customer attributes are kept and the demographics merged in."""
    flags = ["0"] * 19
    drama = flags.copy()
    drama[8] = "1"
    _write(tmp_path / "u.user", "1|24|M|technician|85711\n2|old|F|other|94043\n")
    (tmp_path / "u.item").write_bytes(
        ("1|Misérables, Les (1995)|01-Jan-1995||http://x|" + "|".join(drama) + "\n"
         "2|Broken|someday||http://y|" + "|".join(flags) + "\n").encode("latin-1"))
    data = _write(tmp_path / "u.data", "1\t1\t5\t881250949\n1\t2\t4\t881250950\n1\t3\t9\t881250951\n")
    csv_path = _write(tmp_path / "seen.csv", HEADER + "ml-1,2026-01-01,view,ml-1,,\n")
    transactions_import(path=csv_path, format="csv")
    Customer.objects.filter(external_id="ml-1").update(attributes={"city": "Tucson"})

    run = transactions_import(path=data, format="movielens")

    assert (run.customers_created, run.items_created, run.events_created) == (0, 1, 2)
    assert run.errors == [
        {"file": "u.user", "line": 2, "error": "age 'old' is not a whole number"},
        {"file": "u.item", "line": 2, "error": "release date 'someday' is not like 01-Jan-1995"},
        {"line": 3, "error": "rating '9' is not a whole number from 1 to 5"},
    ]
    movie = Item.objects.get(external_id="ml-1")
    assert (movie.title, movie.category, movie.tags, movie.active) == ("Misérables, Les (1995)", "Drama", ["Drama"], True)
    assert Item.objects.get(external_id="ml-2").active is False  # its u.item line was bad; created by the event
    assert Customer.objects.get(external_id="ml-1").attributes["city"] == "Tucson"
    assert Customer.objects.get(external_id="ml-1").attributes["occupation"] == "technician"
