"""A file imported before is known by its streamed content hash and never parsed again (issue
"Bad input never stops the morning", item 14: re-importing a 2M-row export took 12 s and 2.6 GB).
Real files, real SQLite, the real import."""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

from dataset import database
from dataset.ingest import file_sha256, ingest_files
from tests.dataset.test_bad_cells import MAVENTECH


def export(folder: Path, rows: int, name: str = "pipeline.csv") -> Path:
    path = folder / name
    lines = [f"D{i},Ann Lee,GTX Pro,Acme,Won,2017-01-05,2017-02-01,{i + 1}" for i in range(rows)]
    path.write_text("\n".join([MAVENTECH, *lines]) + "\n", encoding="utf-8")
    return path


def test_the_streamed_hash_is_the_files_sha256(tmp_path):
    path = export(tmp_path, 3000)
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_imported_before_is_not_parsed_again(db, tmp_path):
    path = export(tmp_path, 20_000)
    (first,) = ingest_files(db, [path])
    assert (first.status, first.rows_accepted) == ("imported", 20_000)
    counts = database.table_counts(db)
    # parsing would refuse it: the HubSpot preset's columns are not in this file
    (again,) = ingest_files(db, [path], preset="hubspot")
    assert again.status == "already imported"
    assert again.notes == [f"same content as import #{first.import_id} (pipeline.csv); nothing changed"]  # fmt: skip
    tracemalloc.start()
    try:
        (again,) = ingest_files(db, [path])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert again.status == "already imported"
    # parsing holds the file's bytes, its text and every field; the streamed hash a block
    assert peak < path.stat().st_size / 4, (peak, path.stat().st_size)
    assert database.table_counts(db) == counts


def test_the_same_file_twice_in_one_batch_is_imported_once_and_said_so(db, tmp_path):
    path = export(tmp_path, 5)
    copy = tmp_path / "copy.csv"
    copy.write_bytes(path.read_bytes())
    results = ingest_files(db, [path, copy])
    assert sorted((r.path.name, r.status) for r in results) == [
        ("copy.csv", "already imported"),
        ("pipeline.csv", "imported"),
    ]
    (copied,) = [r for r in results if r.path == copy]
    assert copied.notes == ["same content as pipeline.csv, earlier in this batch; nothing changed"]
    assert db["imports"].count == 1
