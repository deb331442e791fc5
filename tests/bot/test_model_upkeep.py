"""The model's upkeep: the main job says plain sentences, the tables only with `verbose` or when
asked (`revbot train`), and only the writer keeps the model.

The training and the backtest themselves are the session's (`generated_training`) and a small
made-up one: these tests are about what is said, not about the models (see tests/scoring and
tests/forecasting)."""

from __future__ import annotations

import re
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from bot.model_upkeep import BACKTEST_TABLE, TRAIN_TABLE, took
from bot.services import build
from bot.settings import Settings
from forecasting import stage_timing_file
from forecasting.backtest import Backtest, summarise
from forecasting.bands import Bands
from forecasting.stage_timing import StageTiming
from scoring.evaluate import SHIPPED
from scoring.features import CATEGORICAL, FEATURES
from scoring.model import Calibrator, WinModel

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("log_loss", "brier", "ece", "p50_mape", "sigma", SHIPPED, "exponential baseline")


def _backtest() -> Backtest:
    """Three past dates: the range held the actual twice at 13 weeks; P50 errors 10/20/40%."""
    rows = []
    for method in ("ours", "exponential baseline"):
        for i, (actual, covered, error) in enumerate(
            ((100.0, True, 0.1), (200.0, False, 0.2), (300.0, True, 0.4))
        ):
            for weeks in (4, 8, 13):
                rows.append({"method": method, "cutoff": f"2024-0{i + 1}-01", "weeks": weeks,
                             "actual": actual, "p10": 0.5 * actual, "p50": actual,
                             "p90": 2 * actual, "covered": covered, "p50_abs_pct_error": error,
                             "interval_score": 1.0, "p50_above": False,
                             "crps": 1.0})  # fmt: skip
    rows = pd.DataFrame(rows)
    return Backtest(rows=rows, summary=summarise(rows), bands=Bands(0.35, slip=5.0))


@pytest.fixture
def stubbed(generated, generated_training, monkeypatch):
    """The core trainings replaced by the session's and the made-up backtest (each still
    reporting one progress line, as the real ones do), and no stage models (tests/forecasting
    has them)."""
    import forecasting.backtest
    import forecasting.stage_timing
    import scoring.train

    def train(crm, n_cutoffs, truth, progress):
        progress("testing it on past date 1 of 1 (2024-01-01)…")
        return generated_training

    def backtest(crm, progress):
        progress("forecasting from past date 1 of 3 (2024-01-01)…")
        return _backtest()

    monkeypatch.setattr(scoring.train, "train", train)
    monkeypatch.setattr(forecasting.backtest, "backtest", backtest)
    monkeypatch.setattr(forecasting.stage_timing, "fit", lambda *args: None)
    return generated


def _writer(generated, tmp_path, verbose: bool):
    return build(generated["folder"] / "gen.db", tmp_path / "art", Settings(), verbose=verbose)


@pytest.mark.parametrize("verbose", [False, True], ids=["main job", "--verbose"])
def test_the_refresh_trains_in_plain_words_and_tables_only_when_verbose(
    stubbed, generated_training, tmp_path, verbose
):
    """The refresh's path: no model yet, so it trains; no shock yet, so it backtests."""
    refresher = _writer(stubbed, tmp_path, verbose).refresher
    said: list[str] = []
    db = refresher.db()
    refresher.upkeep.current_model(db, stubbed["crm"], said.append)
    refresher.upkeep.bands(stubbed["crm"], said.append)
    out = "\n".join(said)
    closed = int(stubbed["crm"].deals["status"].isin(["won", "lost"]).sum())
    auc = generated_training.summary.loc[SHIPPED, "auc"]
    assert said[:2] == [
        f"training the win model (none yet) on the history of {closed:,} closed deals…",
        "  testing it on past date 1 of 1 (2024-01-01)…",
    ]
    assert re.search(
        rf"^win model trained in \d+\.\d s on \d+ months of pipeline history \(from "
        rf"{stubbed['crm'].history['as_of'].min().date()}\): tested on the weeks after "
        rf"{len(generated_training.cutoffs)} past dates, it ranked a deal that went on to be won "
        rf"above one that was lost {auc:.0%} of the time \(a coin flip: 50%\); report: "
        rf"{re.escape(str(tmp_path / 'art' / 'report.md'))}$",
        out,
        re.MULTILINE,
    ), out
    assert re.search(
        r"^forecast tested in \d+\.\d s: from 3 past dates, its P10-P90 range for the next 13 "
        r"weeks held the revenue actually won 2 times out of 3, and its P50 missed by 20% "
        r"\(median\); report: ",
        out,
        re.MULTILINE,
    ), out
    assert "no forecast test yet: testing the forecast from past dates" in out
    assert "  forecasting from past date 1 of 3 (2024-01-01)…" in said
    tables = [name for name in TABLES if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", out)]
    if verbose:
        assert tables == list(TABLES), out
        assert TRAIN_TABLE.format(n=len(generated_training.cutoffs)) in said
        assert BACKTEST_TABLE.format(n=3) in said
    else:
        assert tables == [], out
        assert len(said) == 6, said  # two steps: a start, a progress and a result line each


def test_revbot_train_says_the_table_under_a_plain_header(stubbed, generated_training, tmp_path):
    """Asked for (`revbot train`, `--backtest`): the tables, each under one line saying what it
    shows, even without --verbose."""
    refresher = _writer(stubbed, tmp_path, verbose=False).refresher
    said: list[str] = []
    refresher.train(crm=stubbed["crm"], say=said.append)
    header = said.index(TRAIN_TABLE.format(n=len(generated_training.cutoffs)))
    assert said[header - 1].startswith("win model trained in ")
    table = said[header + 1].splitlines()  # the table, said at once
    assert table[0].split() == ["auc", "log_loss", "brier", "ece"]
    assert [line[: len(SHIPPED)] for line in table[1:]] == [
        name.ljust(len(SHIPPED))[: len(SHIPPED)] for name in generated_training.summary.index
    ]
    refresher.backtest(crm=stubbed["crm"], say=said.append)
    assert said[-1] == (
        f"forecast backtest written to {tmp_path / 'art' / 'forecast_test.md'} "
        "(shared shock sigma 0.35, slip 5 days)"
    )
    assert said[-3] == BACKTEST_TABLE.format(n=3) and "p50_mape" in said[-2]


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.42, "0.4 s"), (9.94, "9.9 s"), (23.4, "23 s"), (185, "3 min 5 s")]
)
def test_durations_read_as_people_say_them(monkeypatch, seconds, text):
    import bot.model_upkeep

    monkeypatch.setattr(bot.model_upkeep.time, "monotonic", lambda: 1000.0 + seconds)
    assert took(1000.0) == text


def test_only_the_writer_keeps_the_model():
    """One writer: `bot.refresh` is the only module that imports the model's upkeep (a reader,
    a listener or a CLI command that trained would bypass its lock)."""
    importers = sorted(
        str(path.relative_to(ROOT))
        for folder in ("bot", "scoring", "forecasting", "dataset")
        for path in (ROOT / folder).rglob("*.py")
        if re.search(r"\bmodel_upkeep\b", path.read_text(encoding="utf-8"))
        and path.name != "model_upkeep.py"
    )
    assert importers == ["bot/refresh.py"]


def test_the_range_is_sized_again_when_the_wins_come_to_be_timed_by_stage(stubbed, tmp_path):
    """The shock is sized on backtests of the forecast as it is made: when a training adds the
    stage models (or drops them), the next refresh tests the forecast again, once."""
    upkeep = _writer(stubbed, tmp_path, verbose=False).refresher.upkeep
    said: list[str] = []
    upkeep.bands(stubbed["crm"], said.append)
    assert said[0].startswith("no forecast test yet: testing the forecast from past dates")
    said.clear()
    upkeep.bands(stubbed["crm"], said.append)
    assert said == []  # saved: not again
    rng = np.random.default_rng(0)
    booster = lgb.train({"objective": "binary", "verbose": -1},
                        lgb.Dataset(rng.random((200, len(FEATURES))), label=rng.random(200) < 0.3),
                        num_boost_round=2)  # fmt: skip
    stub = WinModel(None, Calibrator(), 1.0, 0.5, {c: [] for c in CATEGORICAL}, 0.0)
    stage_timing_file.save(StageTiming([(booster, stub), None]), tmp_path / "art")
    upkeep.bands(stubbed["crm"], said.append)
    assert said[0].startswith(
        "the wins are now timed differently: testing the forecast from past dates"
    ), said
    said.clear()
    upkeep.bands(stubbed["crm"], said.append)
    assert said == []
    stage_timing_file.save(None, tmp_path / "art")  # a training that found no stage history
    upkeep.bands(stubbed["crm"], said.append)
    assert said[0].startswith("the wins are now timed differently"), said
