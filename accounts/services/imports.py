"""Imports of existing history: the CDNOW purchase log, MovieLens 100k and a generic CSV.

One entry point, `transactions_import`, used by the `import_transactions` command and the
Celery task of the same name. How it works:

- The file is checked before anything is written (exists, decodes, looks like the format);
  a file that fails is an `ImportFileError` and leaves no rows at all.
- A `DataImport` row is committed first (status running), then the whole import runs in one
  transaction: customers, items and events are either all stored or, on any error, crash or
  Ctrl-C, none are; the row is then marked failed with the error.
- Rows are parsed as a stream and stored in chunks through `events_store` (set-based inserts
  with ON CONFLICT on event_id), never one ORM save per row.
- Dedup: every event gets a deterministic event_id derived from the normalised content of its
  row plus an occurrence counter for identical rows (`<prefix>-<40 hex>`). Re-importing a file
  adds nothing; importing the file again with rows appended adds only the new rows.
- Bad rows are skipped and reported with their line numbers (the first `MAX_STORED_ERRORS`
  are kept on the DataImport row); the good rows are imported.
- The data's own time range is stored (`data_start`/`data_end`); `latest_data_end()` gives
  later computations their "as of the data's last day".

External ids (documented in docs/import-csv.md):
- CDNOW customer 00001 -> customer "cdnow-00001" (the log's own id, namespaced so that two
  datasets in one database never merge their customer 1).
- MovieLens user 1 -> customer "ml-1"; movie 1 -> item "ml-1".
- CSV: the customer and item columns are used verbatim.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time as dtime
from pathlib import Path

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from crm.core.errors import InvalidInput
from crm.core.money import to_money
from recommendations.models import Item

from ..choices import EventType, ImportFormat, JobStatus, Platform
from ..models import Customer, DataImport
from .bulk import EventRow, events_store

logger = logging.getLogger(__name__)

__all__ = [
    "CSV_COLUMNS",
    "FILE_FORMATS",
    "ImportFileError",
    "latest_data_end",
    "transactions_import",
]

CHUNK_ROWS = 5_000
MAX_STORED_ERRORS = 1_000
EVENT_ID_MAX = 64
EXTERNAL_ID_MAX = 128
PROPERTIES_MAX_BYTES = 4096
# Formats a file can be imported as (the demo generator records its own DataImport rows).
FILE_FORMATS = (ImportFormat.CDNOW, ImportFormat.MOVIELENS, ImportFormat.CSV)

ProgressCallback = Callable[[int, int], None]


class ImportFileError(InvalidInput):
    """The file cannot be imported at all (missing, unreadable, not in the given format)."""

    code = "import_file_invalid"


class BadRow(ValueError):
    """One row cannot be imported; the message says why. The row is skipped."""


@dataclass
class _Stats:
    rows_total: int = 0
    rows_bad: int = 0
    customers_created: int = 0
    items_created: int = 0
    events_created: int = 0
    events_duplicate: int = 0
    errors: list[dict] = field(default_factory=list)
    data_start: datetime | None = None
    data_end: datetime | None = None

    def bad(self, line: int, reason: str, *, file: str | None = None) -> None:
        self.rows_bad += 1
        if len(self.errors) < MAX_STORED_ERRORS:
            self.errors.append({"line": line, "error": reason} | ({"file": file} if file else {}))


# --- Selectors ------------------------------------------------------------------------------


def latest_data_end() -> datetime | None:
    """The latest `data_end` of the succeeded imports, or None when nothing was imported.

    Segmentation uses it to compute tiers "as of the data's last day" for imported history.
    """
    return DataImport.objects.filter(status=JobStatus.SUCCEEDED).aggregate(end=Max("data_end"))["end"]


# --- Event ids --------------------------------------------------------------------------------


class _EventIds:
    """Deterministic event ids: prefix + hash(normalised row, occurrence number).

    The k-th identical row of a file always gets the same id, so a re-import stores nothing
    and a file with rows appended stores only those rows (an appended exact copy of an
    earlier row is a new occurrence, hence a new event).
    """

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.seen: dict[str, int] = {}

    def __call__(self, normalised: str) -> str:
        k = self.seen.get(normalised, 0) + 1
        self.seen[normalised] = k
        digest = hashlib.blake2b(f"{self.prefix}|{normalised}|#{k}".encode(), digest_size=20).hexdigest()
        return f"{self.prefix}-{digest}"


# --- File checks --------------------------------------------------------------------------------


@dataclass
class _FileInfo:
    path: Path
    sha256: str
    lines: int


def _scan(path: Path, *, encoding: str | None) -> _FileInfo:
    """Hash the file and count its lines in one pass; check it decodes when `encoding` is set."""
    sha = hashlib.sha256()
    lines = 0
    last = b""
    decoder = codecs.getincrementaldecoder(encoding)() if encoding else None
    offset = 0
    try:
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                sha.update(block)
                if decoder is not None:
                    try:
                        decoder.decode(block)
                    except UnicodeDecodeError as exc:
                        line = lines + block[: exc.start].count(b"\n") + 1
                        raise ImportFileError(
                            f"{path} is not {encoding} text: undecodable byte at line {line} "
                            f"(byte offset {offset + exc.start})."
                        ) from None
                lines += block.count(b"\n")
                offset += len(block)
                last = block[-1:]
    except OSError as exc:
        raise ImportFileError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    if last and last != b"\n":
        lines += 1
    if lines == 0:
        raise ImportFileError(f"{path} is empty.")
    return _FileInfo(path=path, sha256=sha.hexdigest(), lines=lines)


def _first_line(path: Path, encoding: str) -> tuple[int, str]:
    """(line number, text) of the first non-blank line."""
    with path.open(encoding=encoding, errors="replace", newline="") as fh:
        for n, line in enumerate(fh, start=1):
            if line.strip():
                return n, line.rstrip("\r\n")
    raise ImportFileError(f"{path} has no data (only blank lines).")


def _existing_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise ImportFileError(f"{what} {path} does not exist.")
    if not path.is_file():
        raise ImportFileError(f"{what} {path} is not a file.")
    return path


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- CDNOW --------------------------------------------------------------------------------------

CDNOW_HEADER = ["customer_id", "date", "number_of_cds", "dollar_value"]
# A purchase date becomes noon UTC of that day: CDNOW is a US shop, and noon keeps the
# calendar date the same when shown in any US (or European) time zone.
CDNOW_TIME_OF_DAY = dtime(12, 0, tzinfo=UTC)


def _cdnow_row(fields: list[str], ids: _EventIds | None) -> EventRow:
    if len(fields) != 4:
        raise BadRow(f"expected 4 columns (customer_id date number_of_cds dollar_value), found {len(fields)}")
    raw_customer, raw_date, raw_qty, raw_amount = fields
    if not raw_customer.isdigit():
        raise BadRow(f"customer_id '{_short(raw_customer)}' is not a number")
    try:
        day = datetime.strptime(raw_date, "%Y%m%d").date()
    except ValueError:
        raise BadRow(f"date '{_short(raw_date)}' is not a date in YYYYMMDD form") from None
    try:
        quantity = int(raw_qty)
    except ValueError:
        raise BadRow(f"number_of_cds '{_short(raw_qty)}' is not a whole number") from None
    if quantity < 0:
        raise BadRow(f"number_of_cds {quantity} is negative")
    try:
        amount = to_money(raw_amount)
    except ValueError as exc:
        raise BadRow(f"dollar_value: {exc}") from None
    if amount < 0:
        raise BadRow(f"dollar_value {amount} is negative")
    customer = f"cdnow-{int(raw_customer):05d}"
    occurred_at = datetime.combine(day, CDNOW_TIME_OF_DAY)
    event_id = ids(f"{customer}|{day.isoformat()}|{quantity}|{amount}") if ids else ""
    return EventRow(event_id=event_id, customer=customer, type=EventType.PURCHASE, occurred_at=occurred_at,
                    amount=amount, quantity=quantity, platform=Platform.IMPORT)


def _cdnow_check(path: Path) -> None:
    n, line = _first_line(path, "ascii")
    fields = line.split()
    if [f.lower() for f in fields] == CDNOW_HEADER:
        return
    try:
        _cdnow_row(fields, None)
    except BadRow as exc:
        raise ImportFileError(
            f"{path} does not look like a CDNOW log: expected the header "
            f"'{' '.join(CDNOW_HEADER)}' or whitespace-separated rows like '00001 19970101 1 11.77'; "
            f"line {n} is '{_short(line)}' ({exc})."
        ) from None


def _cdnow_rows(path: Path, stats: _Stats) -> Iterator[EventRow]:
    ids = _EventIds("cdnow")
    with path.open(encoding="ascii", errors="replace", newline="") as fh:
        header_done = False
        for n, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                continue
            if not header_done:
                header_done = True
                if [f.lower() for f in fields] == CDNOW_HEADER:
                    continue
            stats.rows_total += 1
            try:
                yield _cdnow_row(fields, ids)
            except BadRow as exc:
                stats.bad(n, str(exc))


# --- MovieLens 100k --------------------------------------------------------------------------

ML_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
             "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
             "War", "Western")
ML_ENCODING = "latin-1"  # u.item has ISO-8859-1 titles; the other files are ASCII.


def _ml_id(raw: str) -> str:
    if not raw.isdigit():
        raise BadRow(f"id '{_short(raw)}' is not a number")
    return f"ml-{int(raw)}"


def _age_band(age: int) -> str:
    for top, band in ((17, "under 18"), (24, "18-24"), (34, "25-34"), (44, "35-44"), (54, "45-54"), (64, "55-64")):
        if age <= top:
            return band
    return "65+"


def _ml_rating(fields: list[str], ids: _EventIds | None) -> EventRow:
    if len(fields) != 4:
        raise BadRow(f"expected 4 tab-separated columns (user, item, rating, timestamp), found {len(fields)}")
    raw_user, raw_item, raw_rating, raw_ts = fields
    if not (raw_user.isdigit() and raw_item.isdigit() and raw_ts.isdigit()):  # fast path: plain digits
        raw_user, raw_item, raw_ts = raw_user.strip(), raw_item.strip(), raw_ts.strip()
    raw_rating = raw_rating.strip()
    customer, item = _ml_id(raw_user), _ml_id(raw_item)
    if raw_rating not in {"1", "2", "3", "4", "5"}:
        raise BadRow(f"rating '{_short(raw_rating)}' is not a whole number from 1 to 5")
    if not raw_ts.isdigit():
        raise BadRow(f"timestamp '{_short(raw_ts)}' is not a Unix time in seconds")
    try:
        occurred_at = datetime.fromtimestamp(int(raw_ts), tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise BadRow(f"timestamp '{_short(raw_ts)}' is out of range") from None
    rating = int(raw_rating)
    event_id = ids(f"{customer}|{item}|{rating}|{int(raw_ts)}") if ids else ""
    return EventRow(event_id=event_id, customer=customer, type=EventType.RATE, occurred_at=occurred_at, item=item,
                    platform=Platform.IMPORT, properties={"rating": rating})


def _ml_side_files(path: Path) -> tuple[Path, Path, Path | None]:
    folder = path.parent
    users = _existing_file(folder / "u.user", "MovieLens user file")
    items = _existing_file(folder / "u.item", "MovieLens item file")
    genres = folder / "u.genre"
    return users, items, (genres if genres.is_file() else None)


def _ml_check(path: Path) -> None:
    n, line = _first_line(path, ML_ENCODING)
    try:
        _ml_rating(line.split("\t"), None)
    except BadRow as exc:
        raise ImportFileError(
            f"{path} does not look like MovieLens u.data: expected tab-separated rows "
            f"'user item rating timestamp' like '196\\t242\\t3\\t881250949'; line {n} is "
            f"'{_short(line)}' ({exc})."
        ) from None
    users, items, _ = _ml_side_files(path)
    for side, columns in ((users, 5), (items, 5 + len(ML_GENRES))):
        n, line = _first_line(side, ML_ENCODING)
        if len(line.split("|")) != columns:
            raise ImportFileError(
                f"{side} does not look like a MovieLens {side.name} file: expected {columns} '|'-separated "
                f"columns, line {n} has {len(line.split('|'))}."
            )


def _ml_genres(path: Path | None) -> tuple[str, ...]:
    if path is None:
        return ML_GENRES
    names: dict[int, str] = {}
    with path.open(encoding=ML_ENCODING, newline="") as fh:
        for line in fh:
            name, _, index = line.strip().rpartition("|")
            if name and index.isdigit():
                names[int(index)] = name
    if sorted(names) != list(range(len(ML_GENRES))):
        return ML_GENRES
    return tuple(names[i] for i in range(len(ML_GENRES)))


def _ml_users(path: Path, stats: _Stats) -> dict[str, dict]:
    users: dict[str, dict] = {}
    with path.open(encoding=ML_ENCODING, newline="") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split("|")
            try:
                if len(fields) != 5:
                    raise BadRow(f"expected 5 '|'-separated columns (user|age|gender|occupation|zip), found {len(fields)}")
                customer = _ml_id(fields[0])
                if not fields[1].isdigit():
                    raise BadRow(f"age '{_short(fields[1])}' is not a whole number")
                age = int(fields[1])
                users[customer] = {"age": age, "age_band": _age_band(age), "gender": fields[2].strip(),
                                   "occupation": fields[3].strip(), "zip": fields[4].strip()}
            except BadRow as exc:
                stats.bad(n, str(exc), file=path.name)
    return users


def _ml_items(path: Path, genres: tuple[str, ...], stats: _Stats) -> dict[str, dict]:
    items: dict[str, dict] = {}
    with path.open(encoding=ML_ENCODING, newline="") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split("|")
            try:
                if len(fields) != 5 + len(genres):
                    raise BadRow(f"expected {5 + len(genres)} '|'-separated columns, found {len(fields)}")
                item = _ml_id(fields[0])
                flags = fields[5:]
                if any(f not in {"0", "1"} for f in flags):
                    raise BadRow("genre flags must be 0 or 1")
                tags = [g for g, f in zip(genres, flags, strict=True) if f == "1"]
                attributes: dict = {"source": "movielens-100k"}
                if fields[2].strip():
                    try:
                        attributes["release_date"] = datetime.strptime(fields[2].strip(), "%d-%b-%Y").date().isoformat()
                    except ValueError:
                        raise BadRow(f"release date '{_short(fields[2])}' is not like 01-Jan-1995") from None
                if fields[4].strip():
                    attributes["imdb_url"] = fields[4].strip()
                items[item] = {"title": fields[1].strip()[:300], "category": (tags[0] if tags else "")[:100],
                               "tags": tags, "attributes": attributes}
            except BadRow as exc:
                stats.bad(n, str(exc), file=path.name)
    return items


def _ml_rows(path: Path, stats: _Stats) -> Iterator[EventRow]:
    ids = _EventIds("ml")
    with path.open(encoding=ML_ENCODING, newline="") as fh:
        for n, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            stats.rows_total += 1
            try:
                yield _ml_rating(line.split("\t"), ids)
            except BadRow as exc:
                stats.bad(n, str(exc))


def _customers_upsert(wanted: dict[str, dict]) -> int:
    """Create the customers in `wanted` (external id -> attributes) and merge the attributes of
    those that exist already (imported keys win). Returns how many were created. Rows whose
    attributes would not change are not written, so a re-import writes nothing."""
    if not wanted:
        return 0
    existing = {ext: (pk, attrs) for pk, ext, attrs in
                Customer.objects.filter(external_id__in=list(wanted)).values_list("id", "external_id", "attributes")}
    now = timezone.now()
    new = [Customer(external_id=ext, attributes=attrs, source_platform=Platform.IMPORT)
           for ext, attrs in wanted.items() if ext not in existing]
    Customer.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
    changed = []
    for ext, (pk, attrs) in existing.items():
        merged = {**(attrs or {}), **wanted[ext]}
        if merged != attrs:
            changed.append(Customer(id=pk, attributes=merged, updated_at=now))
    Customer.objects.bulk_update(changed, ["attributes", "updated_at"], batch_size=500)
    return len(new)


def _items_upsert(wanted: dict[str, dict]) -> int:
    """Create the catalog items in `wanted` (active, with titles) and fill in / activate the
    existing ones (e.g. created inactive by an earlier event). Returns how many were created."""
    if not wanted:
        return 0
    fields = ("title", "category", "tags", "attributes", "active")
    existing = {row["external_id"]: row for row in
                Item.objects.filter(external_id__in=list(wanted)).values("id", "external_id", *fields)}
    now = timezone.now()
    new = [Item(external_id=ext, active=True, **values) for ext, values in wanted.items() if ext not in existing]
    Item.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
    changed = []
    for ext, row in existing.items():
        target = {**wanted[ext], "attributes": {**(row["attributes"] or {}), **wanted[ext]["attributes"]}, "active": True}
        if any(row[f] != target[f] for f in fields):
            changed.append(Item(id=row["id"], updated_at=now, **target))
    Item.objects.bulk_update(changed, [*fields, "updated_at"], batch_size=500)
    return len(new)


# --- Generic CSV ----------------------------------------------------------------------------------

CSV_REQUIRED = ("customer", "occurred_at", "type")
CSV_OPTIONAL = ("item", "quantity", "amount", "event_id", "platform", "properties")
CSV_COLUMNS = CSV_REQUIRED + CSV_OPTIONAL
CSV_ENCODING = "utf-8-sig"  # UTF-8; a byte-order mark (Excel) is accepted.


def _csv_header(path: Path) -> tuple[int, list[str]]:
    with path.open(encoding=CSV_ENCODING, newline="") as fh:
        reader = csv.reader(fh)
        for header in reader:
            if any(h.strip() for h in header):
                return reader.line_num, [h.strip().lower() for h in header]
    raise ImportFileError(f"{path} has no header line.")


def _csv_check(path: Path) -> None:
    n, header = _csv_header(path)
    missing = [c for c in CSV_REQUIRED if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if missing or unknown or repeated:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown column(s) {', '.join(repr(c) for c in unknown)}")
        if repeated:
            problems.append(f"repeated column(s) {', '.join(repeated)}")
        if len(header) == 1:
            problems.append("only one column: the file does not seem to be comma-separated")
        raise ImportFileError(
            f"{path} does not look like a Stratum CSV: the header (line {n}) has {'; '.join(problems)}. "
            f"Required columns: {', '.join(CSV_REQUIRED)}; optional: {', '.join(CSV_OPTIONAL)} "
            "(see docs/import-csv.md)."
        )


def _parse_instant(raw: str) -> datetime:
    """ISO 8601; a date alone is midnight UTC; a time without offset is UTC."""
    text = raw.strip()
    try:
        if len(text) == 10:
            value = datetime.combine(date.fromisoformat(text), dtime(0, 0))
        else:
            value = datetime.fromisoformat(text)
    except ValueError:
        raise BadRow(f"occurred_at '{_short(raw)}' is not an ISO 8601 date or date-time") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _external_id(raw: str, column: str, *, required: bool) -> str | None:
    value = raw.strip()
    if not value:
        if required:
            raise BadRow(f"{column} is empty")
        return None
    if len(value) > EXTERNAL_ID_MAX:
        raise BadRow(f"{column} is longer than {EXTERNAL_ID_MAX} characters")
    return value


def _csv_row(values: dict[str, str], ids: _EventIds) -> EventRow:
    customer = _external_id(values["customer"], "customer", required=True)
    occurred_at = _parse_instant(values["occurred_at"])
    type_ = values["type"].strip().lower()
    if type_ not in EventType.values:
        raise BadRow(f"type '{_short(values['type'])}' is not one of {', '.join(EventType.values)}")
    item = _external_id(values.get("item", ""), "item", required=False)
    quantity = None
    if raw := values.get("quantity", "").strip():
        try:
            quantity = int(raw)
        except ValueError:
            raise BadRow(f"quantity '{_short(raw)}' is not a whole number") from None
        if quantity < 0:
            raise BadRow(f"quantity {quantity} is negative")
    amount = None
    if raw := values.get("amount", "").strip():
        try:
            amount = to_money(raw)
        except ValueError as exc:
            raise BadRow(f"amount: {exc}") from None
        if amount < 0 and type_ != EventType.REFUND:
            raise BadRow(f"amount {amount} is negative, which only a refund may be")
    platform = values.get("platform", "").strip().lower() or Platform.IMPORT
    if platform not in Platform.values:
        raise BadRow(f"platform '{_short(platform)}' is not one of {', '.join(Platform.values)}")
    properties: dict = {}
    if raw := values.get("properties", "").strip():
        try:
            properties = json.loads(raw)
        except ValueError:
            raise BadRow("properties is not valid JSON") from None
        if not isinstance(properties, dict):
            raise BadRow("properties must be a JSON object")
        if len(raw.encode()) > PROPERTIES_MAX_BYTES:
            raise BadRow(f"properties is larger than {PROPERTIES_MAX_BYTES} bytes")
    event_id = values.get("event_id", "").strip()
    if len(event_id) > EVENT_ID_MAX:
        raise BadRow(f"event_id is longer than {EVENT_ID_MAX} characters")
    if not event_id:
        normalised = "|".join((
            customer, occurred_at.isoformat(), type_, item or "", "" if quantity is None else str(quantity),
            "" if amount is None else str(amount), platform,
            json.dumps(properties, sort_keys=True, separators=(",", ":")) if properties else "",
        ))
        event_id = ids(normalised)
    return EventRow(event_id=event_id, customer=customer, type=type_, occurred_at=occurred_at, item=item,
                    amount=amount, quantity=quantity, platform=platform, properties=properties)


def _csv_rows(path: Path, stats: _Stats) -> Iterator[EventRow]:
    ids = _EventIds("csv")
    with path.open(encoding=CSV_ENCODING, newline="") as fh:
        reader = csv.reader(fh)
        header: list[str] | None = None
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue
            if header is None:
                header = [h.strip().lower() for h in fields]
                continue
            n = reader.line_num
            stats.rows_total += 1
            try:
                if len(fields) != len(header):
                    raise BadRow(f"expected {len(header)} columns as in the header, found {len(fields)}")
                yield _csv_row(dict(zip(header, fields, strict=True)), ids)
            except BadRow as exc:
                stats.bad(n, str(exc))


# --- The service ------------------------------------------------------------------------------------


def _prepare(path: Path, fmt: str) -> tuple[Path, _FileInfo]:
    """Check everything that can be checked before writing; raise ImportFileError if it fails."""
    if fmt == ImportFormat.MOVIELENS and path.is_dir():
        path = path / "u.data"
    _existing_file(path, "Import file")
    if fmt == ImportFormat.CDNOW:
        info = _scan(path, encoding=None)
        _cdnow_check(path)
    elif fmt == ImportFormat.MOVIELENS:
        info = _scan(path, encoding=None)
        _ml_check(path)
    else:
        info = _scan(path, encoding=CSV_ENCODING)
        _csv_check(path)
    return path, info


def _store(rows: Iterator[EventRow], stats: _Stats, *, total: int, received_at: datetime,
           progress: ProgressCallback | None) -> None:
    chunk: list[EventRow] = []
    done = 0

    def flush() -> None:
        nonlocal done
        result = events_store(chunk, received_at=received_at, source_platform=Platform.IMPORT)
        stats.events_created += len(result.accepted)
        stats.events_duplicate += result.duplicates
        stats.customers_created += result.customers_created
        stats.items_created += result.items_created
        done += len(chunk)
        chunk.clear()
        if progress:
            progress(min(done + stats.rows_bad, total), total)

    for row in rows:
        chunk.append(row)
        at = row.occurred_at
        if stats.data_start is None or at < stats.data_start:
            stats.data_start = at
        if stats.data_end is None or at > stats.data_end:
            stats.data_end = at
        if len(chunk) >= CHUNK_ROWS:
            flush()
    if chunk:
        flush()
    if progress:
        progress(total, total)


def transactions_import(*, path: str | Path, format: str, progress: ProgressCallback | None = None) -> DataImport:
    """Import a history file (CDNOW log, MovieLens 100k u.data, or Stratum CSV).

    Raises ImportFileError, writing nothing, when the file is missing or not in `format`.
    Otherwise commits a running DataImport row, then stores everything in one transaction and
    marks the row succeeded with its counts; if anything fails (or the process is
    interrupted) the transaction rolls back and the row is marked failed. `progress(done,
    total)` is called as rows are stored.
    """
    if format not in FILE_FORMATS:
        raise ImportFileError(f"Unknown import format '{format}'; use one of {', '.join(FILE_FORMATS)}.")
    fmt = ImportFormat(format)
    source, info = _prepare(Path(path).expanduser().resolve(), fmt)
    started = time.monotonic()
    record = DataImport.objects.create(format=fmt, source=str(source)[:500], sha256=info.sha256,
                                       status=JobStatus.RUNNING, started_at=timezone.now())
    stats = _Stats()
    try:
        with transaction.atomic():
            if fmt == ImportFormat.MOVIELENS:
                users_file, items_file, genres_file = _ml_side_files(source)
                stats.customers_created += _customers_upsert(_ml_users(users_file, stats))
                stats.items_created += _items_upsert(_ml_items(items_file, _ml_genres(genres_file), stats))
                rows = _ml_rows(source, stats)
            elif fmt == ImportFormat.CDNOW:
                rows = _cdnow_rows(source, stats)
            else:
                rows = _csv_rows(source, stats)
            _store(rows, stats, total=info.lines, received_at=record.started_at, progress=progress)
            record.status = JobStatus.SUCCEEDED
            record.finished_at = timezone.now()
            for name in ("rows_total", "rows_bad", "customers_created", "items_created", "events_created",
                         "events_duplicate", "errors", "data_start", "data_end"):
                setattr(record, name, getattr(stats, name))
            record.save()
    except BaseException as exc:  # noqa: BLE001 - record any failure, Ctrl-C included, then re-raise
        DataImport.objects.filter(pk=record.pk).update(
            status=JobStatus.FAILED, finished_at=timezone.now(),
            error=(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)[:10_000],
        )
        raise
    logger.info(
        "transactions_import_done id=%s format=%s rows=%s bad=%s customers_created=%s items_created=%s "
        "events_created=%s duplicates=%s seconds=%.1f",
        record.pk, fmt, stats.rows_total, stats.rows_bad, stats.customers_created, stats.items_created,
        stats.events_created, stats.events_duplicate, time.monotonic() - started,
    )
    return record
