"""The bot's latency, end to end over loopback HTTP, and the morning run's duration, on MavenTech.

Run: python benchmarks/bot_bench.py [--requests 200] [--maventech ../shared/datasets/maventech]
     python benchmarks/bot_bench.py --deals 1000000   # the same requests against a big run

- /deal: signed slash-command requests to the served app (the real Bolt app behind the WSGI
  server), timed from sending the request to the answer arriving at the fake Slack's
  response_url. Ids and account names alternate.
- /forecast: the same, to the chart's `files.completeUploadExternal` (the last Slack call),
  over all, each region and each manager, this quarter and next. The first request per scope
  simulates it (10,000 scenarios); later ones reuse it, as the bot does within a score run.
- Morning run: a fresh database with MavenTech's reference tables; the run ingests the pipeline
  export from the exports folder, scores every open deal, simulates the channel's forecast and
  posts the digest. The model is trained (and the forecast's shock fitted) beforehand, as in
  production, where the morning run never trains.
With `--deals N`: instead of MavenTech, one generated export of about N open deals (the demo
generator, its span the last 60 days, as in scoring_bench.py) is ingested, a model trained on
the default demo is saved with a fixed forecast shock, and the real refresh (the one writer:
score every open deal, forecast every scope, save the run) makes the run the requests read; its
time and peak memory are printed (setup, not part of the latency figures).
Requests are sent one at a time; prints figures only.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.app import create_app  # noqa: E402
from bot.morning import run_channel  # noqa: E402
from bot.refresh import Refresher  # noqa: E402
from bot.services import build  # noqa: E402
from bot.settings import Secrets, Settings  # noqa: E402
from bot.wsgi import serve_background, wsgi_app  # noqa: E402
from dataset import database, score_runs  # noqa: E402
from dataset.ingest import ingest_files  # noqa: E402
from tests.bot.slackenv import LEADER, SECRET, TOKEN, channel, command_body, post  # noqa: E402
from tests.fakeslack import FakeSlack  # noqa: E402

REFERENCE = ("accounts.csv", "products.csv", "sales_teams.csv")


def percentiles(label: str, times: list[float]) -> None:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * len(ms))) - 1)]
    print(f"{label}: {len(ms)} requests, p50 {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, "
          f"max {ms[-1]:.1f} ms")  # fmt: skip


def wait_until(check, timeout: float = 30.0):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.0005)
    raise TimeoutError("no answer")


def last_calls(slack: FakeSlack, n: int = 6) -> list[str]:
    return [
        f"{c.method} {c.status} {c.error or ''} {str(c.params)[:300]}" for c in slack.calls[-n:]
    ]


def prepare_model(maventech: Path, work: Path) -> Path:
    db = database.connect(work / "train.db")
    ingest_files(db, [maventech])
    db.close()
    artifacts = work / "artifacts"
    refresher = Refresher(work / "train.db", artifacts, Settings())
    refresher.train(say=lambda _: None)
    refresher.backtest(say=lambda _: None)
    return artifacts


def morning(maventech: Path, work: Path, artifacts: Path, slack: FakeSlack) -> None:
    db_path = work / "morning.db"
    db = database.connect(db_path)
    ingest_files(db, [maventech / name for name in REFERENCE])
    db.close()
    exports = work / "exports"
    exports.mkdir()
    shutil.copy(maventech / "sales_pipeline.csv", exports)
    digest = channel("C0BENCH", top=10)
    settings = Settings(channels=(digest,), exports_folder=exports,
                        secrets=Secrets(bot_token=TOKEN, api_url=slack.base_url))  # fmt: skip
    from bot.slack_api import make_client

    services = build(db_path, artifacts, settings)
    t0 = time.perf_counter()
    outcome = run_channel(services, make_client(settings.secrets), digest, "2018-01-02")
    took = time.perf_counter() - t0
    deals = score_runs.latest_run(services.reader.db())["deals"]
    print(f"morning run on MavenTech (ingest {(maventech / 'sales_pipeline.csv').stat().st_size / 1e6:.1f} MB, "
          f"score {deals:,} open deals, forecast, post): {took:.2f} s, digest {outcome.status}")  # fmt: skip


def big_run(deals: int, work: Path) -> tuple[Path, Path]:
    """A saved run of about `deals` open deals made by the real refresh (see the docstring)."""
    import json
    import resource

    from benchmarks.scoring_bench import open_pipeline
    from dataset.demo import DemoConfig, write_demo

    artifacts = work / "artifacts"
    small = work / "small.db"
    write_demo(work / "small", DemoConfig())
    db = database.connect(small)
    ingest_files(db, [work / "small", work / "small" / "exports"])
    db.close()
    refresher = Refresher(small, artifacts, Settings())
    refresher.train(n_cutoffs=1, say=lambda _: None)
    refresher.close()
    # the forecast's shock is normally fitted by a backtest: its value is not under test here
    (artifacts / "forecast.json").write_text(json.dumps({"sigma": 0.4}), encoding="utf-8")
    write_demo(work / "big", open_pipeline(deals))
    big = work / "big.db"
    db = database.connect(big)
    ingest_files(db, [work / "big"])  # the export and its reference tables (teams: scopes)
    db.close()
    refresher = Refresher(big, artifacts, Settings())
    said: list[str] = []
    t0 = time.perf_counter()
    run_id = refresher.refresh(said.append, force=True).run_id
    took = time.perf_counter() - t0
    run = score_runs.run_of(refresher.db(), run_id)
    refresher.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"setup: the refresh (score {run['deals']:,} open deals, forecast every scope, save) "
          f"{took:.1f} s; peak RSS of the process so far {peak:,.0f} MB")  # fmt: skip
    for line in said:
        print(f"  refresh said: {line}")
    return big, artifacts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--maventech", type=Path, default=ROOT.parent / "shared/datasets/maventech")
    parser.add_argument("--deals", type=int, default=0, help="a generated run of N open deals")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as slack:
        work = Path(tmp)
        t0 = time.perf_counter()
        if args.deals:
            db_path, artifacts = big_run(args.deals, work)
        else:
            artifacts = prepare_model(args.maventech, work)
            print(f"setup (train + backtest, not part of any timing): {time.perf_counter() - t0:.1f} s")  # fmt: skip
            morning(args.maventech, work, artifacts, slack)
            db_path = work / "morning.db"
        settings = Settings(secrets=Secrets(bot_token=TOKEN, signing_secret=SECRET,
                                            api_url=slack.base_url))  # fmt: skip
        app, services = create_app(settings, db_path, artifacts)
        server, _ = serve_background(wsgi_app(app, services.reader), "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.server_port}/slack/events"
        t0 = time.perf_counter()
        saved = services.reader.latest()
        print(f"saved run read at start-up (once per score run): {time.perf_counter() - t0:.2f} s")
        scores = saved.scores
        queries = []
        for i in range(args.requests):
            row = scores.iloc[(i * 37) % len(scores)]
            has_account = isinstance(row["account"], str) and row["account"]
            queries.append(row["account"] if i % 2 and has_account else row["deal_id"])

        def timed(command: str, text: str, done) -> float:
            response_url = slack.response_url("bench")
            body = command_body(command, text, LEADER, response_url)
            before = len(slack.calls)
            start = time.perf_counter()
            reply = post(url, body)
            assert reply.status == 200, reply
            try:
                wait_until(lambda: done(response_url, before))
            except TimeoutError:
                raise TimeoutError(f"{command} {text!r}: {last_calls(slack)}") from None
            return time.perf_counter() - start

        def answered(response_url, _before):
            path = "/" + response_url.split("/", 3)[3]
            return any(c.path == path and c.status for c in slack.calls_to("response_url"))

        def uploaded(_url, before):
            return any(c.method == "files.completeUploadExternal" and c.status
                       for c in slack.calls[before:])  # fmt: skip

        for q in queries[:5]:  # warm-up: imports, first connection per thread
            timed("/deal", q, answered)
        percentiles("/deal (request to response_url)", [timed("/deal", q, answered) for q in queries])  # fmt: skip
        scopes = ["", *saved.names("region"), *saved.names("manager")]
        texts = [f"{q} {s}".strip() for s in scopes for q in ("", "next")]
        first = [timed("/forecast", t, uploaded) for t in texts[::2]]
        percentiles("/forecast, first request per scope (reads its saved forecast)", first)
        times = [timed("/forecast", texts[i % len(texts)], uploaded) for i in range(args.requests)]
        percentiles("/forecast (request to the chart's completeUploadExternal)", times)
        print(f"forecast scopes: {len(scopes)} ({', '.join(s or 'all' for s in scopes)})")
        server.shutdown()


if __name__ == "__main__":
    main()
