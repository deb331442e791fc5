"""Shared fixtures: real SQLite files under tmp_path, the real MavenTech files beside the repo."""

from __future__ import annotations

import contextlib
import io
import os
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dataset import database, deal_history
from dataset.demo import DemoConfig, generate, true_probability, write_demo
from dataset.ingest import ingest_files
from scoring.features import prepare
from scoring.train import train

ROOT = Path(__file__).resolve().parents[1]

# The README's test command runs the tests on two workers (pytest-xdist, `--dist loadgroup`).
# A session fixture is built once per worker that uses it, so every test that uses one of the
# expensive ones below goes to the same worker (the first one it uses, in this order), and the
# other tests go with their file (module fixtures are built once too). The groups are queued
# most expensive first, so that the last group to start is a short one. Each group's seconds
# on its worker, in one run on two workers (2-core machine), are a guide to that order.
HEAVY_GROUPS = (
    "generated",  # 115 s: the 15,000-deal CRM and its training, and the tests that use them
    "tests/scoring/test_trust.py",  # 84 s
    "maventech_digest",  # 59 s
    "main_job",  # 44 s
    "small_world",  # 51 s: the Dask tests, mostly waiting for the cluster's worker processes
)
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One LightGBM thread per worker: two workers of two threads on two cores spin against
    # each other (measured: a 5 s training took 30 s).
    from scoring import model as _model

    _model.PARAMS["num_threads"] = 1


def _group(item: pytest.Item) -> str:
    heavy = next((f for f in HEAVY_GROUPS if f in item.fixturenames), None)
    return heavy or item.nodeid.split("::")[0]


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(HEAVY_GROUPS)}
    group = {item.nodeid: _group(item) for item in items}
    for item in items:
        item.add_marker(pytest.mark.xdist_group(group[item.nodeid]))
    # stable: the files keep their order
    items.sort(key=lambda item: rank.get(group[item.nodeid], len(rank)))


def maventech_dir() -> Path:
    return Path(os.environ.get("REVBOT_MAVENTECH", ROOT.parent / "shared/datasets/maventech"))


@pytest.fixture(scope="session")
def maventech() -> Path:
    path = maventech_dir()
    if not (path / "sales_pipeline.csv").exists():
        pytest.skip(f"MavenTech data set not found at {path} (set REVBOT_MAVENTECH)")
    return path


@pytest.fixture
def db(tmp_path: Path):
    conn = database.connect(tmp_path / "revbot.db")
    yield conn
    conn.close()


# A generated CRM whose true win probabilities are known, ingested into a real SQLite file and
# trained on once per test session (the expensive part of the scoring and forecast tests).
GENERATED = DemoConfig(deals=15000, daily_exports=0, seed=21)


@pytest.fixture(scope="session")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generated")
    write_demo(folder / "crm", GENERATED)
    db = database.connect(folder / "gen.db")
    ingest_files(db, [folder / "crm", folder / "crm" / "exports"])
    crm = prepare(deal_history.load_crm(db))
    return {"db": db, "crm": crm, "world": generate(GENERATED), "folder": folder}


# A smaller one for the Dask tests: 3,000 deals, nine months of weekly exports and three daily
# ones (about 13 s to write and ingest), shared by the scoring and the command-line tests.
SMALL_WORLD = DemoConfig(deals=3000, seed=5, start=date(2024, 5, 1), daily_exports=3)


@pytest.fixture(scope="session")
def small_world(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("small-world")
    write_demo(folder / "crm", SMALL_WORLD)
    db = database.connect(folder / "small.db")
    ingest_files(db, [folder / "crm", folder / "crm" / "exports"])
    crm = prepare(deal_history.load_crm(db))
    db.close()
    return {"db_path": folder / "small.db", "crm": crm, "folder": folder}


@pytest.fixture(scope="module")
def dask_client():
    """A real local Dask cluster, once per module: two worker processes of one thread each
    (processes, because LightGBM's network is one per process: two workers in threads of one
    process cannot train together)."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="session")
def generated_training(generated):
    return train(generated["crm"])


def point_in_time_truth(world, rows: pd.DataFrame) -> np.ndarray:
    """The generator's best achievable probability for each (deal, snapshot) row."""
    out = pd.Series(np.nan, index=range(len(rows)))
    for snap in rows["snapshot"].unique():
        day = (pd.Timestamp(snap).date() - world.config.start).days
        truth = true_probability(world, day)
        at = np.flatnonzero((rows["snapshot"] == snap).to_numpy())
        out.iloc[at] = truth.reindex(rows.index[at]).to_numpy()
    return out.to_numpy()


def run_cli(args: list[str], cwd: Path | None = None) -> tuple[int, str]:
    """`revbot ARGS` in-process, as a newcomer types it in `cwd`; returns the exit code and what
    it printed (for session fixtures, where capsys is not available)."""
    from bot.cli import main

    out, old, env = io.StringIO(), os.getcwd(), os.environ.pop("REVBOT_DB", None)
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(args)
    finally:
        os.chdir(old)
        if env is not None:
            os.environ["REVBOT_DB"] = env
    return code, out.getvalue()


# The two expensive end-to-end runs, once a session each; their tests read what they wrote (the
# digest, the model's report, the forecast backtest) as a user would.
@pytest.fixture(scope="session")
def main_job(tmp_path_factory) -> dict:
    """The README's main job: `revbot digest` in an empty folder (loads the demo, trains the
    model, backtests the forecast, scores and writes the digest)."""
    folder = tmp_path_factory.mktemp("main-job")
    code, out = run_cli(["digest"], cwd=folder)
    return {"folder": folder, "code": code, "out": out, "artifacts": folder / "artifacts"}


@pytest.fixture(scope="session")
def maventech_digest(maventech, tmp_path_factory) -> dict:
    """MavenTech as published, imported and digested (top 25) into a fresh database."""
    folder = tmp_path_factory.mktemp("maventech-digest")
    db, art, out = folder / "m.db", folder / "art", folder / "out"
    code, text = run_cli(["ingest", str(maventech), "--db", str(db)])
    assert code == 0, text
    args = ["--db", str(db), "--artifacts", str(art), "--out", str(out), "--top", "25"]
    code, text = run_cli(["digest", *args])
    return {"code": code, "out": text, "db": db, "artifacts": art, "digest": out}
