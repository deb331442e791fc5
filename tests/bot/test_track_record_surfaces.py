"""The forecast's track record on every surface (issue 14): real score runs made 13, 8 and 4
weeks before a quarter's end are compared, once it is over, with the revenue its exports say was
won in it; `/forecast accuracy` over the loopback Slack, `revbot forecast --accuracy` and the
digest's footer give the same figures, and a manager's call is checked beside the model."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bot import calls
from bot.cli import main
from bot.morning import compose
from bot.settings import Scope
from bot.track_text import headline
from forecasting.periods import current_quarter, quarter_name
from forecasting.track_record import quarter_end
from tests.bot.slackenv import MANAGER
from tests.bot.test_commands import ask


def won_in(crm_folder, start: pd.Timestamp, end: pd.Timestamp) -> float:
    """Revenue won from `start` to `end`, read straight from the newest export (not through
    revbot's database)."""
    newest = sorted((crm_folder / "exports").iterdir())[-1]
    rows = pd.read_csv(newest, parse_dates=["close_date"])
    won = rows[(rows["deal_stage"] == "Won") & rows["close_date"].between(start, end)]
    return float(won["close_value"].fillna(0).sum())


@pytest.fixture
def past_runs(served):
    """Runs as of the days 13, 8 and 4 weeks before the last closed quarter's end, then the
    newest again (so the latest run is today's); a manager's calls made along the way."""
    reader, refresher = served.services.reader, served.services.refresher
    today = pd.Timestamp(reader.latest().as_of)
    quarter = quarter_name((current_quarter(today) - 1).start_time)
    end = quarter_end(quarter)
    for weeks in (13, 8, 4):
        refresher.refresh(lambda _: None, as_of=(end - pd.Timedelta(weeks=weeks)).date())
    refresher.refresh(lambda _: None, as_of=today.date(), force=True)
    manager = served.data["who"]["manager"]
    db = reader.db()
    for weeks, amount in ((10, 4e5), (5, 5e5)):
        calls.record(db, quarter=quarter, scope=f"manager:{manager}", amount=amount,
                     user_id=MANAGER, caller=manager,
                     as_of=(end - pd.Timedelta(weeks=weeks)).date().isoformat())  # fmt: skip
    return quarter, today


def test_a_closed_quarter_is_checked_the_same_on_every_surface(served, past_runs, capsys):
    quarter, today = past_runs
    reader = served.services.reader
    period = pd.Period(quarter, freq="Q")
    actual = won_in(served.data["crm"], period.start_time, period.end_time.normalize())
    assert actual > 0
    record = reader.track_record(Scope("all"), today.date().isoformat())
    assert record.actuals == {quarter: pytest.approx(actual)}
    assert sorted(c.weeks for c in record.checked) == [4, 8, 13]
    for c in record.checked:  # each is the forecast the run of that day saved
        assert c.as_of == quarter_end(quarter) - pd.Timedelta(weeks=c.weeks)

    # Slack: the leader's answer, with the company's record first
    _, answer = ask(served, "/forecast", "accuracy")
    text = answer["text"]
    assert answer.get("response_type") == "ephemeral"
    assert text.startswith(f"*Forecast track record, all teams* (1 closed quarter: {quarter})")
    c13 = next(c for c in record.checked if c.weeks == 13)
    assert f"13 weeks out: the P50 was off by {abs(c13.error):.0%} on average" in text
    assert f"• {quarter}: won " in text

    # the CLI: the same figures
    args = ["--db", str(served.db_path), "--artifacts", str(served.data["artifacts"])]
    assert main(["forecast", "--accuracy", "--json", *args]) == 0
    cli = json.loads(capsys.readouterr().out)["track_record"]["all"]
    assert cli["actuals"][quarter] == pytest.approx(actual)
    assert {f["weeks"]: f["p50"] for f in cli["forecasts"]} == {
        c.weeks: c.p50 for c in record.checked
    }

    # the digest's footer carries the headline
    saved = reader.latest()
    digest = compose(reader, saved, scope=Scope("all"), top=5, min_risk=0, previous_run=None)
    assert digest.track == headline(record) and "held" in digest.track

    # the manager: their team's record, with their calls beside the model's
    manager = served.data["who"]["manager"]
    _, mine = ask(served, "/forecast", "accuracy", user=MANAGER)
    team = reader.track_record(Scope("manager", manager), today.date().isoformat())
    s13, s8, s4 = team.summaries()
    assert s13.calls == 0 and s8.calls == 1 and s4.calls == 1  # 10 weeks out, then 5
    err = abs(5e5 - team.actuals[quarter]) / team.actuals[quarter]
    assert s4.call_error == pytest.approx(err)
    assert f"managers' calls off by {err:.0%} (1 call)" in mine["text"]
    assert mine["text"].startswith(f"*Forecast track record, {manager}'s team*")
    assert "Other teams" not in mine["text"]  # a manager sees their own team only


def test_before_any_quarter_closes_the_answer_says_when_the_first_record_comes(served):
    _, answer = ask(served, "/forecast", "accuracy")
    assert (
        "no quarter forecast here 13, 8 or 4 weeks before its end has closed yet" in answer["text"]
    )
    saved = served.services.reader.latest()
    digest = compose(served.services.reader, saved, scope=Scope("all"), top=5, min_risk=0,
                     previous_run=None)  # fmt: skip
    assert digest.track is None


def test_a_database_saved_before_the_track_record_gets_its_quarters_back(db_copy):
    """Schema 3 kept forecasts only whole: opening such a database fills the track record's
    table from them (targets were not saved then, so they stay empty)."""
    from dataset import database, score_runs

    db = database.connect(db_copy)
    before = score_runs.saved_quarters(db)
    assert len(before) and set(before["scope"]) == set(
        r[0] for r in db.execute("SELECT scope FROM run_forecasts")
    )
    with db.atomic():
        db.execute("DELETE FROM forecast_quarters")
        db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    db.close()
    db = database.connect(db_copy)
    after = score_runs.saved_quarters(db)
    pd.testing.assert_frame_equal(after.drop(columns="target"), before.drop(columns="target"))
    version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    assert version == str(database.SCHEMA_VERSION)
    db.close()
