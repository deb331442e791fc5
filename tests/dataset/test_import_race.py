"""The same file imported by two processes at once is imported once; the other says "already
imported" and exits 0 (issue "Bad input never stops the morning", item 11: the loser crashed on
UNIQUE(imports.sha256), and two morning runs sharing an exports folder logged a traceback)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dataset import database
from dataset.ingest import FileResult, ingest_files
from tests.dataset.test_reimport import export

ROOT = Path(__file__).resolve().parents[2]
RACE_NOTE = "which another run imported while this one was reading the file; nothing changed"


def _import_when_told(db_path: Path, path: Path, waiting: threading.Event, out: list) -> None:
    """Import on a connection of its own; `waiting` is set when it asks for the write lock
    (SQLite's trace hook reports the statement as it starts)."""
    db = database.connect(db_path)
    db.conn.set_trace_callback(lambda sql: sql.startswith("BEGIN IMMEDIATE") and waiting.set())
    try:
        out.extend(ingest_files(db, [path]))
    except BaseException as exc:  # the test reports it
        out.append(exc)
    finally:
        db.close()


def test_two_imports_that_both_checked_before_either_wrote_import_once(tmp_path):
    path = export(tmp_path, 2000)
    db_path = tmp_path / "race.db"
    database.connect(db_path).close()
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer: neither import can write yet
    waiting = [threading.Event(), threading.Event()]
    outs: list[list] = [[], []]
    threads = [
        threading.Thread(target=_import_when_told, args=(db_path, path, waiting[k], outs[k]))
        for k in (0, 1)
    ]
    for t in threads:
        t.start()
    try:
        # both have found the file not imported, parsed it, and now wait for the write lock
        assert all(w.wait(20) for w in waiting)
    finally:
        blocker.execute("ROLLBACK")
        for t in threads:
            t.join(120)
    results = [out[0] for out in outs]
    assert all(isinstance(r, FileResult) for r in results), results
    winner, loser = sorted(results, key=lambda r: r.status != "imported")
    assert (winner.status, loser.status) == ("imported", "already imported")
    assert loser.notes == [
        f"same content as import #{winner.import_id} (pipeline.csv), {RACE_NOTE}"
    ]
    db = database.connect(db_path)
    assert db["imports"].count == 1 and db["deals"].count == 2000
    assert db.execute("SELECT COUNT(*) FROM deal_history").fetchone()[0] == 2000


@pytest.mark.parametrize("attempt", range(2))
def test_two_processes_importing_one_file_at_once(tmp_path, attempt):
    path = export(tmp_path, 5000)
    argv = [sys.executable, "-m", "bot.cli", "ingest", str(path), "--db", str(tmp_path / "r.db")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("REVBOT_DB", None)
    procs = [
        subprocess.Popen(
            argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )  # fmt: skip
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert not any("Traceback" in err or "Error" in err for _, err in outs), outs
    firsts = sorted(out.splitlines()[0] for out, _ in outs)
    assert firsts[0].startswith("pipeline.csv: already imported (same content as import #1 ")
    assert firsts[1].startswith("pipeline.csv: deals via preset maventech: 5000 read = 5000 ")
    db = database.connect(tmp_path / "r.db")
    assert db["imports"].count == 1 and db["deals"].count == 5000


def test_opening_a_new_database_while_another_process_creates_it_waits_its_turn(tmp_path):
    """The CI failure behind this test: two `revbot ingest` on one new --db; the second opened
    the file while the first was creating its tables, and SQLite refused the switch to WAL mode
    at once ("database is locked", without waiting), so the second said the file "is not a
    revbot database". Here a writer holds a new file's lock for a moment; connect must wait."""
    path = tmp_path / "new.db"
    creator = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    creator.execute("BEGIN IMMEDIATE")
    creator.execute("CREATE TABLE early (x)")  # the file is still in rollback-journal mode
    release = threading.Timer(0.5, lambda: creator.execute("COMMIT"))
    release.start()
    try:
        db = database.connect(path)
    finally:
        release.join()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert "meta" in db.table_names() and "early" in db.table_names()


def test_a_database_locked_past_the_wait_is_reported_as_busy_not_as_a_wrong_file(
    tmp_path, monkeypatch
):
    from bot.preflight import PreflightError, open_db

    monkeypatch.setattr(database, "WAL_WAIT_SECONDS", 0.2)
    path = tmp_path / "new.db"
    creator = sqlite3.connect(path, isolation_level=None)
    creator.execute("BEGIN IMMEDIATE")
    creator.execute("CREATE TABLE early (x)")
    with pytest.raises(PreflightError) as refused:
        open_db(path, create=True)
    creator.execute("ROLLBACK")
    assert str(refused.value) == (
        f"{path} is busy: another revbot run kept it locked for 0.2 seconds while opening it; "
        "nothing was done, try again"
    )
