"""A consistent copy of the database while revbot runs: SQLite's online backup API.

Why not `cp`: with the write-ahead log, the file alone can miss committed pages (they may still
be in `-wal`) and a copy taken during a write can be torn. The backup API copies pages through
SQLite itself; taken in steps, it lets the bot's readers and its one writer go on between them
(a step restarts the copy if a write changes a page already copied, so a busy writer makes it
take longer, never makes it wrong). The copy is written beside the target, checked, then moved
into place, so PATH is either the old file or a complete new one.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

PAGES_PER_STEP = 4096  # 16 MB of 4 KB pages between pauses
PAUSE = 0.005  # seconds between steps: room for the bot's writes


class BackupError(Exception):
    """The backup could not be made; the message says why and what to do."""


@dataclass(frozen=True)
class Backup:
    path: Path
    size: int  # bytes
    seconds: float


def backup(source: Path, target: Path) -> Backup:
    """Copy the database at `source` to `target` (replaced if it exists) and check the copy."""
    source, target = Path(source), Path(target)
    if not source.exists():
        raise BackupError(f"no database at {source}: nothing to back up (see --db)")
    if target.resolve() == source.resolve():
        raise BackupError(f"{target} is the database itself: back it up to another file")
    if target.is_dir():
        target = target / source.name
    if not target.parent.exists():
        raise BackupError(f"no folder {target.parent}: create it first")
    partial = target.with_name(target.name + ".partial")
    started = time.monotonic()
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst, pages=PAGES_PER_STEP, sleep=PAUSE)
            ok = dst.execute("PRAGMA integrity_check").fetchone()[0]
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal
        finally:
            dst.close()
    except sqlite3.DatabaseError as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"could not back up {source}: {exc}") from None
    finally:
        src.close()
    if ok != "ok":
        partial.unlink(missing_ok=True)
        raise BackupError(f"the copy of {source} failed SQLite's integrity check ({ok}); "
                          "the database may be damaged: keep your older backups")  # fmt: skip
    os.replace(partial, target)
    return Backup(target, target.stat().st_size, time.monotonic() - started)
