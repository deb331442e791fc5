"""A first Salesforce sync with backfill, through the loopback fake of its REST API: 100,000
opportunities with about 1,000,000 OpportunityHistory rows (issue 13).

Run: python benchmarks/sync_bench.py [--deals 100000] [--lose 0.035]
The fake runs in its own process (its data and threads are not the sync's); the floor (reading
every page with the real client and doing nothing with it) and the sync each run in their own
process so that each peak RSS is its own. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _serve(deals: int, lose: float, folder: str) -> None:
    from datetime import UTC, date, datetime

    from tests.fakes.salesforce_api import FakeOrg, FakeSalesforce

    start = time.perf_counter()
    org = FakeOrg.generate(n=deals, seed=1, start=date(2023, 1, 2),
                           now=datetime(2024, 12, 16, 12, tzinfo=UTC), advance=0.2, lose=lose)  # fmt: skip
    rows = sum(len(h) for h in org.history.values())
    with FakeSalesforce(org, Path(folder), page_size=2000) as fake:
        print(json.dumps({"url": fake.base_url, "ca": str(fake.ca), "token": fake.issue_token(),
                          "rows": rows, "seconds": time.perf_counter() - start}), flush=True)  # fmt: skip
        sys.stdin.read()  # until the benchmark closes it


def _env(info: dict) -> dict:
    return {**os.environ, "SALESFORCE_INSTANCE_URL": info["url"],
            "SALESFORCE_ACCESS_TOKEN": info["token"], "REQUESTS_CA_BUNDLE": info["ca"]}  # fmt: skip


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _floor() -> None:
    from dataset.salesforce_reader import SalesforceReader

    reader = SalesforceReader.from_env(os.environ)
    start = time.perf_counter()
    records = changes = 0
    for page in reader.pages(None):
        records, changes = records + len(page.records), changes + len(page.changes)
    seconds = time.perf_counter() - start
    print(f"floor: read {records:,} opportunities and {changes:,} history rows with the client, "
          f"kept nothing: {seconds:.1f} s; peak RSS {_peak_mb():,.0f} MB")  # fmt: skip


def _sync(db_path: str) -> None:
    from dataset import database
    from dataset.crm_sync import sync
    from dataset.salesforce_reader import SalesforceReader

    db = database.connect(db_path)
    reader = SalesforceReader.from_env(os.environ)
    result = sync(db, reader, say=lambda _: None)
    print(f"first sync: {result.seconds:.1f} s (read into the mirror {result.read_seconds:.1f} s, "
          f"replay and import of {len(result.days)} weekly days "
          f"{result.seconds - result.read_seconds:.1f} s); peak RSS {_peak_mb():,.0f} MB")  # fmt: skip
    print("  " + result.summary())
    again = sync(db, reader, say=lambda _: None)
    print(f"next sync, nothing changed: {again.seconds:.1f} s ({again.records} records read)")
    history = db.execute("SELECT COUNT(*) FROM deal_history").fetchone()[0]
    size = Path(db_path).stat().st_size / 2**20
    print(f"database: {history:,} deal_history rows, {size:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--lose", type=float, default=0.035, help="odds a change is a loss")
    parser.add_argument("--case", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        {"serve": lambda: _serve(int(args.case[1]), float(args.case[2]), args.case[3]),
         "floor": _floor, "sync": lambda: _sync(args.case[1])}[args.case[0]]()  # fmt: skip
        return
    me = [sys.executable, __file__, "--case"]
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen([*me, "serve", str(args.deals), str(args.lose), tmp],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
        info = json.loads(server.stdout.readline())
        print(f"fake org: {args.deals:,} opportunities, {info['rows']:,} history rows "
              f"(generated in {info['seconds']:.0f} s)")  # fmt: skip
        try:
            subprocess.run([*me, "floor"], env=_env(info), check=True)
            subprocess.run([*me, "sync", str(Path(tmp) / "sync.db")], env=_env(info), check=True)
        finally:
            server.stdin.close()
            server.wait()


if __name__ == "__main__":
    main()
