"""Import CRM export files into SQLite: read, check, store atomically, log, keep history.

The edge between files and the pure parsing/validation core. One file = one transaction: its import
log row, its quarantined rows and its data land together or not at all. A file already imported
(same content hash) changes nothing, and is known as such before it is parsed: the hash is taken
by streaming the file, and checked again under the write lock, so two processes importing the
same file at once import it once.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import sqlite_utils

from dataset import asof, database, deal_history, history, import_log
from dataset.csvfile import CsvFileError, RawTable, Rejected, check_encoding, read_table
from dataset.limits import DEFAULT_LIMITS, Limits, latest_created
from dataset.presets import BUILTIN, Preset, PresetError, detect
from dataset.validate import (
    KEYS,
    AsOfError,
    Parsed,
    parse_table,
    resolve_names,
    set_aside_beyond,
)

REFERENCE_ORDER = ("products", "sales_teams", "accounts")
REASONS_SHOWN = 3  # the commonest reasons a refused file's message names


class IngestError(Exception):
    """A file was refused as a whole; the message says which file, why, and how to fix it."""


@dataclass
class FileResult:
    """What importing one file did."""

    path: Path
    status: str  # imported | already imported | skipped
    table: str = ""
    preset: str = ""
    rows_read: int = 0
    rows_accepted: int = 0
    rows_set_aside: int = 0
    as_of: str | None = None
    as_of_source: str | None = None  # dataset.asof: given | footer | file name | events
    import_id: int | None = None
    deals_new: int = 0
    deals_changed: int = 0
    notes: list[str] = field(default_factory=list)
    set_aside: list[Rejected] = field(default_factory=list)

    def summary(self) -> str:
        """One line, the balance first: read = accepted + set aside."""
        if self.status != "imported":
            return f"{self.path.name}: {self.status}" + (
                f" ({'; '.join(self.notes)})" if self.notes else ""
            )
        text = (
            f"{self.path.name}: {self.table} via preset {self.preset}: {self.rows_read} read = "
            f"{self.rows_accepted} accepted + {self.rows_set_aside} set aside"
        )
        if self.table == "deals":
            source = asof.SOURCE_TEXT.get(self.as_of_source or "")
            text += f"; as of {self.as_of}" + (f" ({source})" if source else "")
            text += f": {self.deals_new} new deals, {self.deals_changed} changed"
        return text


@dataclass
class _Loaded:
    path: Path
    sha256: str
    raw: RawTable
    preset: Preset
    found: dict[str, int]
    footer_date: asof.Stated | None = None
    name_date: asof.Stated | None = None
    given_as_of: date | None = None  # a source's own export date


def expand(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; a folder stands for the .csv files in it (sorted by name)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.suffix.lower() == ".csv"))
        elif p.exists():
            out.append(p)
        else:
            raise IngestError(f"{p}: no such file or folder")
    return out


def file_sha256(path: Path) -> str:
    """The file's content hash, read in blocks: a file imported before is known without holding
    it in memory or parsing it."""
    try:
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError as exc:
        raise IngestError(f"{path}: cannot read it: {exc.strerror or exc}") from exc


def _already(path: Path, previous: import_log.ImportRecord, meanwhile: bool = False) -> FileResult:
    when = ", which another run imported while this one was reading the file" if meanwhile else ""
    note = f"same content as import #{previous.id} ({previous.file_name}){when}; nothing changed"
    return FileResult(path, "already imported", notes=[note])


def _load(path: Path, encoding: str, presets: tuple[Preset, ...], forced: str | None) -> _Loaded:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
    return _load_bytes(path, data, encoding, presets, forced)


def _load_bytes(
    path: Path, data: bytes, encoding: str, presets: tuple[Preset, ...], forced: str | None
) -> _Loaded:
    try:
        raw = read_table(data, encoding)
        preset, found = detect(raw.header, presets, forced)
    except (CsvFileError, PresetError) as exc:
        raise IngestError(f"{path.name}: {exc}") from exc
    loaded = _Loaded(path, hashlib.sha256(data).hexdigest(), raw, preset, found)
    if preset.table == "deals":  # the day the export says it was taken, if it says
        loaded.footer_date = asof.footer_date((r.raw for r in raw.footer), preset.date_order)
        loaded.name_date = asof.name_date(path.name)
    return loaded


@dataclass(frozen=True)
class Source:
    """An export held in memory rather than in a file (one day's snapshot from a CRM sync): it
    goes through the same checks, set-aside rules, import log and history as a CSV file."""

    name: str  # how the import log and the balance line name it, e.g. "salesforce 2025-02-14.csv"
    data: bytes  # the CSV's bytes, in `encoding`
    as_of: date | None = None  # the day it speaks for (None: decided as for a file)

    def sha256(self) -> str:
        """Its identity in the import log: the bytes, and the day they are said to be of (a
        sync's snapshot that did not change since yesterday still says the pipeline stood so
        today)."""
        h = hashlib.sha256(self.data)
        if self.as_of is not None:
            h.update(f"\nas of {self.as_of.isoformat()}".encode())
        return h.hexdigest()


def ingest_files(
    db: sqlite_utils.Database,
    paths: Sequence[str | Path],
    *,
    as_of: date | None = None,
    encoding: str = "utf-8",
    presets: tuple[Preset, ...] = BUILTIN,
    preset: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    today: date | None = None,
) -> list[FileResult]:
    """Import files (or folders of them). Reference tables go first so that deals can resolve
    product spellings; deals exports go in order of their as-of date so history runs forward.

    Every file is checked before anything is written: one refused file refuses the batch.
    `today` (default: the UTC date now) bounds what can already have happened: no export can
    speak for a later day, whatever a row in it says.
    """
    today = _start(today, encoding)
    _check_as_of(as_of, today, limits, "the as-of date", ": give the day the export was taken")
    results: list[FileResult] = []
    todo: list[_Loaded] = []
    seen: dict[str, Path] = {}
    for path in expand(paths):
        if _is_new(db, path, file_sha256(path), seen, results):
            _keep(_load(path, encoding, presets, preset), todo, results)

    return _import(db, todo, results, as_of, encoding, today, limits)


def ingest_sources(
    db: sqlite_utils.Database,
    sources: Sequence[Source],
    *,
    encoding: str = "utf-8",
    presets: tuple[Preset, ...] = BUILTIN,
    preset: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    today: date | None = None,
) -> list[FileResult]:
    """Import exports held in memory, exactly as `ingest_files` imports files: the same content
    twice changes nothing, every row is accepted or set aside with its reason, history runs
    forward by as-of date. Each source's own `as_of` is its export date."""
    today = _start(today, encoding)
    results: list[FileResult] = []
    todo: list[_Loaded] = []
    seen: dict[str, Path] = {}
    for source in sources:
        path = Path(source.name)
        if not _is_new(db, path, source.sha256(), seen, results):
            continue
        item = _load_bytes(path, source.data, encoding, presets, preset)
        _check_as_of(source.as_of, today, limits, f"{source.name}: its date")
        item.given_as_of, item.sha256 = source.as_of, source.sha256()
        _keep(item, todo, results)
    return _import(db, todo, results, None, encoding, today, limits)


def _check_as_of(
    as_of: date | None, today: date, limits: Limits, what: str, hint: str = ""
) -> None:
    """An export's stated date must lie between the earliest accepted and today."""
    if as_of is not None and not limits.earliest <= as_of <= latest_created(today):
        raise IngestError(
            f"{what} {as_of} is not between {limits.earliest} and today ({today}){hint}"
        )


def _start(today: date | None, encoding: str) -> date:
    """Today (default: the UTC date now), once the encoding is known to exist."""
    try:
        check_encoding(encoding)
    except CsvFileError as exc:
        raise IngestError(str(exc)) from exc
    return today or datetime.now(UTC).date()


def _is_new(
    db: sqlite_utils.Database, path: Path, sha256: str, seen: dict[str, Path], results: list
) -> bool:
    """False (with its result noted) for content imported before or earlier in this batch."""
    previous = import_log.find_import(db, sha256)
    if previous is not None:
        results.append(_already(path, previous))
        return False
    if sha256 in seen:
        note = f"same content as {seen[sha256].name}, earlier in this batch; nothing changed"
        results.append(FileResult(path, "already imported", notes=[note]))
        return False
    seen[sha256] = path
    return True


def _keep(item: _Loaded, todo: list[_Loaded], results: list[FileResult]) -> None:
    if item.preset.table == "dictionary":
        results.append(FileResult(item.path, "skipped", notes=["a data dictionary, not data"]))
    else:
        todo.append(item)


def _import(
    db: sqlite_utils.Database,
    todo: list[_Loaded],
    results: list[FileResult],
    as_of: date | None,
    encoding: str,
    today: date,
    limits: Limits,
) -> list[FileResult]:
    """Check every loaded export, then write them: reference tables first, deals by as-of date."""
    for table in REFERENCE_ORDER:
        for item in (t for t in todo if t.preset.table == table):
            parsed = parse_table(item.raw, item.preset, item.found, today=today, limits=limits)
            results.append(_store(db, item, parsed, encoding))
    deals = [t for t in todo if t.preset.table == "deals"]
    parsed_deals = []
    # every deal id imported so far: read only when there is a deals file to check against them
    known_products = deal_history.product_names(db) if deals else []
    known_ids = deal_history.deal_ids(db) if deals else []
    for item in deals:
        try:
            given = item.given_as_of or as_of
            parsed = parse_table(
                item.raw, item.preset, item.found, known_products, given,
                today=today, limits=limits, known_ids=known_ids,
            )  # fmt: skip
        except AsOfError as exc:
            raise IngestError(f"{item.path.name}: {exc}") from exc
        _refuse_if_nothing_accepted(item.path, parsed)
        # parse_table has refused a given as_of earlier than the deals' creation; without one,
        # its as_of is the latest event.
        chosen = asof.decide(
            given, item.footer_date, item.name_date, parsed.as_of, certain=parsed.certain
        )
        if chosen.as_of is None:
            raise IngestError(
                f"{item.path.name}: no date in the file to take as its as-of date (no events, "
                "no report footer date, no date in its name); give --as-of"
            )
        parsed.as_of = chosen.as_of
        notes = chosen.notes
        if item.given_as_of:  # an in-memory export's own day, not a user's --as-of
            given, own = asof.SOURCE_TEXT[asof.GIVEN], asof.SOURCE_TEXT[asof.SOURCE]
            notes = [n.replace(given, own) for n in notes]
        parsed.notes[:0] = notes
        set_aside_beyond(parsed, item.raw, limits)
        _refuse_if_nothing_accepted(item.path, parsed)
        parsed_deals.append((chosen, item, parsed))
    for chosen, item, parsed in sorted(parsed_deals, key=lambda t: t[0].as_of):
        result = _store(db, item, parsed, encoding)
        result.as_of_source = asof.SOURCE if item.given_as_of else chosen.source
        results.append(result)
    return results


def _refuse_if_nothing_accepted(path: Path, parsed: Parsed) -> None:
    """A deals export none of whose rows could be taken is the wrong file, preset or encoding,
    not an empty pipeline: refuse it, with the reasons, rather than record a day with no deals
    (or complain that it has no date, when its rows had them)."""
    if parsed.rows_read == 0 or parsed.rows_accepted:
        return
    counts = Counter(r.reason for r in parsed.rejected).most_common(REASONS_SHOWN)
    reasons = "; ".join(f"{_one_line(why)} ({n} row{'s' * (n > 1)})" for why, n in counts)
    n = parsed.rows_read
    raise IngestError(
        f"{path.name}: every row was set aside ({n} read = 0 accepted + {n} set aside), so "
        f"nothing was imported; commonest reasons: {reasons}"
    )


def _one_line(text: str, limit: int = 160) -> str:
    """A reason fit for a one-line message (a cell it quotes may hold a line break)."""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _store(db: sqlite_utils.Database, item: _Loaded, parsed: Parsed, encoding: str) -> FileResult:
    """Write one file's import in one transaction, taken as a write lock first: if another
    process imported the same file since it was checked, this one changes nothing."""
    try:
        with database.write_lock(db):
            previous = import_log.find_import(db, item.sha256)
            if previous is not None:
                return _already(item.path, previous, meanwhile=True)
            return _write(db, item, parsed, encoding)
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
        raise IngestError(
            f"{item.path.name}: the database stayed locked by another writer for "
            f"{database.WRITE_WAIT_SECONDS // 60} minutes; nothing was imported, try again"
        ) from exc


def _write(db: sqlite_utils.Database, item: _Loaded, parsed: Parsed, encoding: str) -> FileResult:
    result = FileResult(
        item.path,
        "imported",
        table=parsed.table,
        preset=parsed.preset,
        rows_read=parsed.rows_read,
        rows_accepted=parsed.rows_accepted,
        rows_set_aside=parsed.rows_set_aside,
        as_of=parsed.as_of.isoformat() if parsed.as_of else None,
        notes=list(parsed.notes),
        set_aside=parsed.rejected,
    )
    with db.atomic():
        import_id = import_log.add_import(
            db,
            file_name=item.path.name,
            path=str(item.path),
            sha256=item.sha256,
            table_name=parsed.table,
            preset=parsed.preset,
            encoding=encoding,
            rows_read=parsed.rows_read,
            rows_accepted=parsed.rows_accepted,
            rows_set_aside=parsed.rows_set_aside,
            as_of=parsed.as_of,
            notes="\n".join(parsed.notes),
        )
        import_log.add_quarantine(db, import_id, parsed.rejected)
        if parsed.table == "deals":
            _store_deals(db, import_id, parsed, result)
            import_log.upsert_stages(
                db, _stages(item.preset, parsed.frame), parsed.preset, import_id
            )
            import_log.set_import_fields(db, import_id, item.found)
        else:
            import_log.upsert_reference(
                db, parsed.table, KEYS[parsed.table], parsed.frame, import_id
            )
            if parsed.table == "products":
                _, aliases = resolve_names(
                    pd.Series(deal_history.distinct_deal_products(db), dtype="object"),
                    parsed.frame["product"],
                )
                deal_history.rename_products(db, aliases)
                result.notes += [
                    f"deals' product {k!r} now read as {v!r}" for k, v in aliases.items()
                ]
    result.import_id = import_id
    return result


def _stages(preset: Preset, frame: pd.DataFrame) -> list[dict]:
    """The preset's stages, with the median probability the export gave each open stage where
    the preset does not know its default."""
    open_deals = frame.loc[frame["status"] == "open", ["stage", "probability"]]
    observed = open_deals.groupby("stage")["probability"].median().dropna().to_dict()
    return preset.stage_table(observed)


def _store_deals(db: sqlite_utils.Database, import_id: int, parsed: Parsed, result: FileResult):
    snapshot = parsed.frame
    as_of = parsed.as_of
    previous = deal_history.states_before(db, as_of)
    changed, new, modified = history.changes(snapshot, previous)
    redundant = history.redundant_next(snapshot, deal_history.states_after(db, as_of))
    deal_history.write_deal_snapshot(db, import_id, as_of, snapshot, changed, redundant)
    import_log.set_import_counts(db, import_id, new, modified)
    result.deals_new, result.deals_changed = new, modified
