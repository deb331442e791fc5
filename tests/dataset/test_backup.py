"""`revbot backup`: a consistent, checked copy of the database while another connection keeps
writing to it (real SQLite files, a real writer thread)."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from bot.cli import main
from dataset import database
from dataset.backup import BackupError, backup


def _fill(path, rows: int) -> None:
    db = database.connect(path)
    db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, pad TEXT)")
    with db.atomic():
        db.conn.executemany("INSERT INTO t (pad) VALUES (?)", [("x" * 500,)] * rows)
    db.close()


def test_a_backup_taken_during_writes_is_complete_and_consistent(tmp_path):
    source = tmp_path / "revbot.db"
    _fill(source, 20_000)  # ~10 MB: several backup steps
    stop = threading.Event()
    written = []

    def writer():
        db = database.connect(source)
        while not stop.is_set():
            with db.atomic():  # each commit adds 100 rows: a copy must hold whole commits only
                db.conn.executemany("INSERT INTO t (pad) VALUES (?)", [("y" * 500,)] * 100)
            written.append(100)
        db.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        done = backup(source, tmp_path / "copy.db")
    finally:
        stop.set()
        thread.join()
    assert written, "the writer never wrote during the backup: the test proved nothing"
    copy = sqlite3.connect(done.path)
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = copy.execute("SELECT COUNT(*) FROM t").fetchone()[0]
    assert rows >= 20_000 and (rows - 20_000) % 100 == 0  # whole transactions only
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one file
    assert not (tmp_path / "copy.db.partial").exists()


def test_the_cli_backs_up_into_a_folder_and_refuses_what_it_cannot(tmp_path, capsys):
    source = tmp_path / "revbot.db"
    _fill(source, 10)
    out = tmp_path / "backups"
    out.mkdir()
    assert main(["backup", str(out), "--db", str(source)]) == 0
    assert "integrity checked" in capsys.readouterr().out
    assert sqlite3.connect(out / "revbot.db").execute("SELECT COUNT(*) FROM t").fetchone()[0] == 10
    assert main(["backup", str(source), "--db", str(source)]) == 2
    assert "is the database itself" in capsys.readouterr().err
    assert main(["backup", str(tmp_path / "nowhere" / "x.db"), "--db", str(source)]) == 2
    assert "no folder" in capsys.readouterr().err
    with pytest.raises(BackupError, match="no database"):
        backup(tmp_path / "missing.db", tmp_path / "y.db")
