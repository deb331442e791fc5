"""`revbot train --dask` and `revbot score --dask` against a real local Dask cluster, in-process
as a user types them: the run saved is the plain run's, and a cluster that cannot be used is one
line and a non-zero exit, quickly."""

from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from dataset import database, score_runs
from tests.bot.slackenv import fixed_shock
from tests.conftest import run_cli

pytest.importorskip("distributed")


def dead_address() -> str:
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture(scope="module")
def trained(small_world, dask_client, tmp_path_factory) -> dict:
    """`revbot train --dask` on a copy of the small world: the model every score run here uses."""
    folder = tmp_path_factory.mktemp("cli-dask")
    artifacts = folder / "artifacts"
    artifacts.mkdir()
    db = folder / "train.db"
    shutil.copy(small_world["db_path"], db)
    address = dask_client.scheduler.address
    args = ["train", "--dask", address, "--cutoffs", "1", "--db", str(db), "--artifacts", str(artifacts)]  # fmt: skip
    code, out = run_cli(args, cwd=folder)
    fixed_shock(artifacts)
    return {"folder": folder, "artifacts": artifacts, "code": code, "out": out, "address": address}


def scored(folder: Path, name: str, source: Path, artifacts: Path, *extra: str):
    db = folder / name
    shutil.copy(source, db)
    code, out = run_cli(
        ["score", "--db", str(db), "--artifacts", str(artifacts), *extra], cwd=folder
    )
    assert code == 0, out
    conn = database.connect(db)
    scores = score_runs.run_scores(conn, score_runs.latest_run(conn)["run_id"])
    conn.close()
    return scores.set_index("deal_id"), out


def test_train_on_dask_saves_an_ordinary_model(trained):
    assert trained["code"] == 0, trained["out"]
    out = trained["out"]
    assert f"connected to the Dask cluster at {trained['address']} (2 workers, 2 threads)" in out
    assert "building the training rows on the Dask cluster" in out and "win model trained" in out
    meta = json.loads((trained["artifacts"] / "win_model.json").read_text(encoding="utf-8"))
    assert meta["info"]["fitted_on"] == "dask (2 workers)"
    assert meta["evaluation"]["cutoffs"] and 0 <= meta["blend"] <= 1


def test_score_on_dask_saves_the_same_run_as_plain_score(trained, small_world):
    """A plain `revbot score`, then `revbot score --dask ADDRESS` with revbot.toml naming an
    address where nothing listens (the flag overrides it): the saved scores are the same."""
    folder, artifacts, source = trained["folder"], trained["artifacts"], small_world["db_path"]
    plain, out = scored(folder, "plain.db", source, artifacts)
    assert "connected to" not in out
    config = folder / "dead-dask.toml"
    config.write_text(f'[dask]\naddress = "{dead_address()}"\nconnect_timeout = 1\n')
    dask, out = scored(folder, "dask.db", source, artifacts, "--config", str(config),
                       "--dask", trained["address"])  # fmt: skip
    assert f"connected to the Dask cluster at {trained['address']}" in out
    assert "training" not in out  # the model trained on Dask is used as it is
    assert len(plain) > 300 and list(dask.index) == list(plain.index)  # the same ranking
    numbers = plain.select_dtypes("number").columns
    assert {"win_prob", "risk", "value_at_risk", "rank"} <= set(numbers)
    assert np.abs(dask[numbers].to_numpy() - plain[numbers].to_numpy()).max() <= 1e-9
    assert dask["drivers"].equals(plain["drivers"]) and dask["actions"].equals(plain["actions"])


def one_line_error(args: list[str], cwd: Path, limit: float) -> str:
    start = time.monotonic()
    code, out = run_cli(args, cwd=cwd)
    assert time.monotonic() - start < limit, out
    assert code == 2 and "Traceback" not in out, out
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"revbot {args[0]}: error: "), out
    return lines[0]


def test_an_unreachable_cluster_is_one_line_and_a_quick_exit(trained, small_world):
    folder, address = trained["folder"], dead_address()
    db = folder / "unreachable.db"
    shutil.copy(small_world["db_path"], db)
    where = ["--db", str(db), "--artifacts", str(trained["artifacts"])]
    # the default connect timeout (5 s) is what a user waits
    line = one_line_error(["score", "--dask", address, *where], folder, limit=12)
    assert f"cannot reach the Dask scheduler at {address} within 5 s" in line
    assert "[dask] address in revbot.toml, or --dask" in line
    # from revbot.toml alone, with its own timeout
    config = folder / "unreachable.toml"
    config.write_text(f'[dask]\naddress = "{address}"\nconnect_timeout = 1\n')
    line = one_line_error(["train", "--config", str(config), *where], folder, limit=6)
    assert f"cannot reach the Dask scheduler at {address} within 1 s" in line


def test_a_malformed_address_is_refused_before_anything_runs(trained, small_world):
    folder = trained["folder"]
    db = folder / "malformed.db"
    shutil.copy(small_world["db_path"], db)
    where = ["--db", str(db), "--artifacts", str(trained["artifacts"])]
    line = one_line_error(["score", "--dask", "8786", *where], folder, limit=3)
    assert "--dask: '8786' is not a Dask scheduler address" in line
    assert 'e.g. "tcp://10.0.0.5:8786"' in line
    config = folder / "typo.toml"
    config.write_text('[dask]\nadress = "tcp://10.0.0.5:8786"\n')
    line = one_line_error(["score", "--config", str(config), *where], folder, limit=3)
    assert "[dask]: unknown keys ['adress']" in line
