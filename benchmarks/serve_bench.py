"""`revbot serve` under a burst: concurrent signed slash commands over loopback HTTP.

Run: python benchmarks/serve_bench.py [--deals 200] [--forecasts 60] [--compare-with main~1]

- A small demo CRM (--crm-deals) is imported, trained and scored once, outside any timing.
- The real server is started as Slack would meet it: `python -m bot.cli serve` in its own
  process (HTTP mode, no scheduler), pointed at a fake Slack (tests/fakeslack.py) that runs in
  this process and collects the answers. The bench waits until /readyz (or, for a server without
  it, /healthz) says ready.
- Burst 1: --deals `/deal` requests at once (one connection each, opened together by one asyncio
  loop). Burst 2, after the first has been answered: --forecasts `/forecast` at once.
- Per burst: connections lost (reset, refused, closed or timed out with no HTTP answer), ack
  times (request sent to HTTP answer) p50/p95/max and how many took 3 s or more (Slack's limit),
  and the time from the burst until every deferred answer reached the fake Slack (`/deal`: the
  response_url post; `/forecast`: the chart's files.completeUploadExternal or a response_url
  post).
- --compare-with REV also runs the same bursts against the code of git revision REV (extracted
  with `git archive` into a temporary folder) and prints both side by side.
The client, the fake Slack and the server share the machine: on 2 cores the figures include
that contention. Prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.refresh import Refresher  # noqa: E402
from bot.settings import Settings  # noqa: E402
from dataset import database, score_runs  # noqa: E402
from dataset.demo import DemoConfig, write_demo  # noqa: E402
from dataset.ingest import ingest_files  # noqa: E402
from tests.bot.slackenv import LEADER, SECRET, TOKEN, command_body, sign  # noqa: E402
from tests.fakeslack import FakeSlack  # noqa: E402

SLACK_LIMIT = 3.0  # seconds Slack waits for an ack


def prepare(folder: Path, deals: int) -> tuple[Path, Path, list[str]]:
    """A scored database and its artifacts; returns them and the open deals' ids."""
    crm = folder / "crm"
    write_demo(crm, DemoConfig(deals=deals, daily_exports=2, seed=11))
    db_path, artifacts = folder / "revbot.db", folder / "artifacts"
    db = database.connect(db_path)
    ingest_files(db, [crm, crm / "exports"])
    db.close()
    refresher = Refresher(db_path, artifacts, Settings())
    refresher.train(n_cutoffs=2, say=lambda _: None)
    # the forecast's shock is normally fitted by a backtest; its value does not matter here
    (artifacts / "forecast.json").write_text(json.dumps({"sigma": 0.4}), encoding="utf-8")
    run_id = refresher.refresh(lambda _: None).run_id
    ids = score_runs.run_scores(refresher.db(), run_id)["deal_id"].tolist()
    refresher.close()
    return db_path, artifacts, ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


class Server:
    """`python -m bot.cli serve` from the source tree `root`, in its own process."""

    def __init__(self, root: Path, work: Path, db: Path, artifacts: Path, slack: FakeSlack):
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        (work / "revbot.toml").write_text("", encoding="utf-8")  # no roster: all are leaders
        env = os.environ | {
            "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.base_url, "PYTHONPATH": str(root), "MPLBACKEND": "Agg",
        }  # fmt: skip
        env.pop("SLACK_APP_TOKEN", None)
        self.log = (work / f"serve-{self.port}.log").open("w")
        argv = [sys.executable, "-m", "bot.cli", "serve", "--db", str(db), "--artifacts",
                str(artifacts), "--config", str(work / "revbot.toml"), "--port", str(self.port),
                "--no-scheduler"]  # fmt: skip
        self.started = time.perf_counter()
        self.process = subprocess.Popen(argv, cwd=root, env=env, stdout=self.log, stderr=self.log)

    def wait_ready(self, timeout: float = 300) -> tuple[float, float]:
        """(seconds until /healthz answered, seconds until ready)."""
        deadline = self.started + timeout
        listening = None
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"revbot serve exited: see {self.log.name}")
            health = get(self.root + "/healthz")
            if health and listening is None:
                listening = time.perf_counter() - self.started
            if health == 200 and get(self.root + "/readyz") in (200, 404):  # 404: no /readyz
                return listening, time.perf_counter() - self.started
            time.sleep(0.05)
        raise TimeoutError("revbot serve did not get ready")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@dataclass
class Burst:
    label: str
    acks: list[float] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    not_ok: int = 0
    answered_after: float | None = None  # seconds from the burst to the last deferred answer
    answered: int = 0

    def line(self) -> str:
        ms = sorted(t * 1000 for t in self.acks) or [float("nan")]
        p95 = ms[min(len(ms) - 1, max(0, round(0.95 * len(ms)) - 1))]
        slow = sum(t >= SLACK_LIMIT for t in self.acks)
        done = (f"{self.answered_after:.1f} s" if self.answered_after is not None
                else f"only {self.answered} arrived")  # fmt: skip
        return (f"{self.label}: lost {len(self.lost)}, non-200 {self.not_ok}, ack p50 "
                f"{statistics.median(ms):.0f} ms, p95 {p95:.0f} ms, max {ms[-1]:.0f} ms, "
                f">= 3 s: {slow}; every deferred answer in: {done}")  # fmt: skip


async def _one(port: int, body: bytes, result: Burst) -> None:
    """One signed request on its own connection; the ack's time, or the connection lost."""
    ts = str(int(time.time()))
    head = (f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"X-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: {sign(body, ts)}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")  # fmt: skip
    start = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head.encode() + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=30)  # until the server closes
        took = time.perf_counter() - start
        writer.close()
    except (OSError, TimeoutError) as exc:
        result.lost.append(type(exc).__name__)
        return
    if not answer:  # closed without an answer
        result.lost.append("closed")
        return
    result.acks.append(took)
    result.not_ok += not answer.startswith(b"HTTP/1.1 200")


def burst(server: Server, slack: FakeSlack, command: str, texts: list[str], *,
          answered, wait: float) -> Burst:  # fmt: skip
    """Send one signed request per text, all at once (one asyncio loop: the client's own
    overhead stays small), and wait for their deferred answers."""
    result = Burst(f"{len(texts)} x {command}")
    urls = [slack.response_url("bench") for _ in texts]
    bodies = [command_body(command, t, LEADER, u) for t, u in zip(texts, urls, strict=True)]
    before = len(slack.calls)

    async def fire() -> None:
        await asyncio.gather(*(_one(server.port, b, result) for b in bodies))

    t0 = time.perf_counter()
    asyncio.run(fire())
    expected = len(result.acks)
    deadline = time.perf_counter() + wait
    while time.perf_counter() < deadline:
        result.answered = answered(slack.calls[before:], set(urls))
        if result.answered >= expected:
            result.answered_after = time.perf_counter() - t0
            break
        time.sleep(0.02)
    return result


def _response_path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def deal_answers(calls, urls: set[str]) -> int:
    paths = {_response_path(u) for u in urls}
    return len({c.path for c in calls if c.method == "response_url" and c.path in paths})


def forecast_answers(calls, urls: set[str]) -> int:
    charts = sum(c.method == "files.completeUploadExternal" and c.ok for c in calls)
    return charts + deal_answers(calls, urls)


def run(root: Path, label: str, work: Path, db: Path, artifacts: Path, ids: list[str],
        args: argparse.Namespace) -> list[str]:  # fmt: skip
    with FakeSlack() as slack:
        server = Server(root, work, db, artifacts, slack)
        try:
            listening, ready = server.wait_ready()
            lines = [f"[{label}] /healthz after {listening:.1f} s, ready after {ready:.1f} s"]
            deals = [ids[(i * 37) % len(ids)] for i in range(args.deals)]
            b = burst(server, slack, "/deal", deals, answered=deal_answers, wait=args.wait)
            lines.append(f"[{label}] {b.line()}")
            texts = ["", "next"] * (args.forecasts // 2) + [""] * (args.forecasts % 2)
            b = burst(server, slack, "/forecast", texts, answered=forecast_answers, wait=args.wait)
            lines.append(f"[{label}] {b.line()}")
        finally:
            server.stop()
    return lines


def extract(rev: str, into: Path) -> Path:
    """The source tree of git revision `rev`, for running the old server side by side."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True,
                          capture_output=True).stdout  # fmt: skip
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=200, help="concurrent /deal requests")
    parser.add_argument("--forecasts", type=int, default=60, help="concurrent /forecast requests")
    parser.add_argument("--crm-deals", type=int, default=600, help="deals in the demo CRM")
    parser.add_argument("--wait", type=float, default=180, help="seconds to wait for answers")
    parser.add_argument("--compare-with", metavar="REV", help="also run git revision REV")
    parser.add_argument("--keep", type=Path, help="prepare the CRM in this folder once, reuse it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        if args.keep and (args.keep / "revbot.db").exists():
            db, artifacts = args.keep / "revbot.db", args.keep / "artifacts"
            ids = score_runs.run_scores(database.connect(db), 1)["deal_id"].tolist()
        else:
            db, artifacts, ids = prepare(args.keep or work, args.crm_deals)
        print(f"setup (demo CRM of {args.crm_deals} deals, train, score; not timed): "
              f"{time.perf_counter() - t0:.1f} s, {len(ids)} open deals")  # fmt: skip
        lines = run(ROOT, "this tree", work, db, artifacts, ids, args)
        if args.compare_with:
            old = extract(args.compare_with, work / "old")
            lines += run(old, args.compare_with, work, db, artifacts, ids, args)
        print("\n".join(lines))


if __name__ == "__main__":
    main()
