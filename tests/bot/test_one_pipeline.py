"""One writer, readers everywhere: the same forecast on every surface, readers that never train,
score or simulate, and a morning run that loads and prepares the CRM once."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace

import pandas as pd
import pytest

from bot.cli import main
from bot.morning import compose, run_channel
from bot.services import build
from bot.settings import Scope
from dataset.money import chance, money
from tests.bot.slackenv import LEADER, MANAGER, REP, channel, command_body, post
from tests.bot.test_commands import ask, deal_text

FIGURES = re.compile(r"P50 \*([^*]+)\*, P10 (\S+), P90 ([^\s(]+)")


def _cli_json(served, *args: str, capsys) -> dict:
    db = ["--db", str(served.db_path), "--artifacts", str(served.data["artifacts"])]
    assert main([*args, *db, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _slack_comment(served, text: str, user: str) -> str:
    """The chart's comment as `/forecast <text>` posts it."""
    before = len(served.slack.calls_to("files.completeUploadExternal"))
    url = served.slack.response_url("fc")
    assert post(served.url, command_body("/forecast", text, user, url)).status == 200
    done = served.slack.wait_for("files.completeUploadExternal", before + 1, timeout=15)[-1]
    return done.params["initial_comment"]


def _slack_figures(served, text: str, user: str) -> tuple[str, ...]:
    """(P50, P10, P90) as `/forecast <text>` gives them in the chart's comment."""
    return FIGURES.search(_slack_comment(served, text, user)).groups()


def _quarter(part: dict) -> dict:
    return next(p for p in part["periods"] if p["kind"] == "quarter")


def test_the_same_forecast_on_every_surface(served, capsys):
    """Whole, region, manager's team and rep: the CLI's --json, the digest and /forecast over the
    loopback Slack give the same P10/P50/P90 for the same run."""
    who = served.data["who"]
    region, manager, rep = Scope("region", who["region"]), Scope("manager", who["manager"]), Scope("rep", who["rep"])  # fmt: skip
    cli = {}
    for by in ("region", "manager", "rep"):
        cli |= _cli_json(served, "forecast", "--by", by, capsys=capsys)["scopes"]
    reader = served.services.reader
    saved = reader.latest()
    asks = {Scope("all"): ("", LEADER), region: (who["region"], LEADER), manager: ("", MANAGER),
            rep: ("", REP)}  # fmt: skip
    for scope, (text, user) in asks.items():
        q = _quarter(cli[str(scope)])
        digest = compose(reader, saved, scope=scope, top=5, min_risk=0, previous_run=None)
        assert (digest.glance.p10, digest.glance.p50, digest.glance.p90) == pytest.approx(
            (q["p10"], q["p50"], q["p90"]), abs=0.01
        ), scope
        shown = _slack_figures(served, text, user)
        assert shown == (money(q["p50"]), money(q["p10"]), money(q["p90"])), scope


def test_what_is_still_to_come_is_the_same_on_every_surface_and_true_of_the_run(served, capsys):
    """The quarter's revenue still to come from today's open deals and from new ones, and the
    pace of new deals that assumes: its amounts are the saved forecast's means (with the won so
    far they make its mean), the pace is the scope's new deals of the last 13 weeks counted
    again from the CRM, and the CLI and the leader's Home tab say the sentence /forecast posts."""
    from bot.home import HomeState
    from bot.home_tabs import scope_view
    from bot.refresh import owners_of
    from bot.target_text import sources_text
    from dataset import database, deal_history
    from forecasting import inputs
    from scoring.features import prepare

    saved = served.services.reader.latest()
    crm = prepare(deal_history.load_crm(database.connect(served.db_path)))
    who = served.data["who"]
    cli = {}
    for by in ("region", "rep"):
        cli |= _cli_json(served, "forecast", "--by", by, capsys=capsys)["scopes"]
    # the company and a region drawn together (`forecast_scopes`), a rep alone when asked for
    for scope in (Scope("all"), Scope("region", who["region"]), Scope("rep", who["rep"])):
        owners = owners_of(scope, saved.teams, saved.scores)
        fc = saved.forecast(scope)
        pace = inputs.arrivals(crm, pd.Timestamp(saved.as_of), owners=owners).per_week
        assert fc.new_per_week == pytest.approx(pace) and pace > 0, scope
        assert cli[str(scope)]["new_deals_per_week"] == pytest.approx(pace), scope
        row = fc.quarter()
        parts = row["won_to_date"] + row["from_pipeline"] + row["from_new"]
        assert parts == pytest.approx(row["mean"], rel=1e-9), scope
        q = _quarter(cli[str(scope)])
        assert (q["expected_from_open_deals"], q["expected_from_new_deals"]) == pytest.approx(
            (row["from_pipeline"], row["from_new"]), abs=0.01
        ), scope
    whole = saved.forecast(Scope("all"))
    row = whole.quarter()
    line = sources_text(row, whole.open_deals, whole.new_per_week, str(row["period"]), saved.as_of)
    opened = (
        f"{money(row['from_pipeline'])} from the {whole.open_deals:,} deals open on {saved.as_of}"
    )
    assert opened in line and f"{money(row['from_new'])} from deals not yet in the pipeline" in line
    assert f"expecting {whole.new_per_week:,.0f} new deals a week" in line
    assert line in _slack_comment(served, "", LEADER)
    home = json.dumps(scope_view(served.services.reader, saved, Scope("all"), HomeState()))
    assert json.dumps(line)[1:-1] in home  # the leader's dashboard says it too
    db = ["--db", str(served.db_path), "--artifacts", str(served.data["artifacts"])]
    assert main(["forecast", *db, "--out", str(served.db_path.parent / "out")]) == 0
    assert line.replace("*", "") in capsys.readouterr().out.splitlines()
    # the next quarter's reply says the next quarter's own figures
    after = whole.table[whole.table["kind"] == "quarter"].iloc[1]
    later = sources_text(after, whole.open_deals, whole.new_per_week, str(after["period"]),
                         saved.as_of)  # fmt: skip
    assert later != line and later in _slack_comment(served, "next", LEADER)


def test_the_chart_s_won_so_far_is_the_quarter_s_won_to_date_day_by_day(served):
    """The saved forecast keeps what the quarter has won as one total a day (what the fan
    chart draws), and they add up to the won-to-date beside its P50, in every scope."""
    from dataset import score_runs

    db, run = served.services.reader.db(), served.services.reader.latest()
    for scope in score_runs.forecast_scopes(db, run.run_id):
        saved = score_runs.run_forecast(db, run.run_id, scope)
        days = [d for d, _ in saved["won"]]
        assert days == sorted(set(days)), scope
        this = next(r for r in saved["table"] if r["kind"] == "quarter")
        assert sum(v for _, v in saved["won"]) == pytest.approx(this["won_to_date"]), scope
        assert this["won_to_date"] > 0 or scope != "all"  # the demo has won this quarter


def test_readers_never_train_score_or_simulate(served, capsys, monkeypatch, tmp_path):
    """With no model file and the model, the feature builder and the Monte Carlo made to fail,
    /deal, /forecast, the digest and the CLI's reports still answer from the saved run."""
    import forecasting.forecast
    import scoring.features
    import scoring.model

    def forbidden(*_, **__):
        raise AssertionError("a reader trained, scored or simulated")

    for module, name in ((forecasting.forecast, "simulate"), (scoring.features, "features_at"),
                         (scoring.features, "prepare"), (scoring.model.WinModel, "predict"),
                         (scoring.model, "fit")):  # fmt: skip
        monkeypatch.setattr(module, name, forbidden)
    empty = tmp_path / "no-artifacts"  # readers get no model: they never need one
    deal = served.data["scores"].iloc[0]
    _, answer = ask(served, "/deal", deal["deal_id"])
    assert f"{chance(deal['win_prob'])}" in deal_text(answer) and "*Why*" in deal_text(answer)
    for text, user in (("", LEADER), (served.data["who"]["region"], LEADER), ("", MANAGER), ("", REP)):  # fmt: skip
        assert len(_slack_figures(served, text, user)) == 3
    reader = build(served.db_path, empty, served.settings).reader
    saved = reader.latest()
    digest = compose(reader, saved, scope=Scope("all"), top=5, min_risk=0, previous_run=None)
    assert len(digest.deals) == 5 and digest.glance.p50 > 0
    db = ["--db", str(served.db_path), "--artifacts", str(empty)]
    assert main(["forecast", "--by", "manager", *db, "--out", str(tmp_path / "out")]) == 0
    assert main(["export", "scores", "--db", str(served.db_path), "--out", str(tmp_path / "s.csv")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "P50s of parts do not add up" in out and "Traceback" not in out
    assert not empty.exists()  # nothing was trained into it


@pytest.mark.bot(channels=[channel("C0DIGEST", top=5)])
def test_the_morning_run_loads_and_prepares_the_crm_once(served, monkeypatch, tmp_path):
    """A morning on a new export: ingest, (re)train if due, score, forecast every scope, from one
    load and one preparation of the CRM."""
    import scoring.features
    from dataset import deal_history

    calls = {"load": 0, "prepare": 0}
    load, prepare = deal_history.load_crm, scoring.features.prepare

    def counted(name, real):
        def wrapper(*a, **kw):
            calls[name] += 1
            return real(*a, **kw)

        return wrapper

    monkeypatch.setattr(deal_history, "load_crm", counted("load", load))
    monkeypatch.setattr(scoring.features, "prepare", counted("prepare", prepare))
    newest = sorted((served.data["crm"] / "exports").iterdir())[-1]
    lines = newest.read_text(encoding="utf-8").splitlines()
    newcomer = ",".join(["DMORNING01", *lines[-1].split(",")[1:]])  # one new deal
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "pipeline_2025-02-17.csv").write_text("\n".join([*lines, newcomer]) + "\n")
    settings = replace(served.settings, exports_folder=exports)
    services = build(served.db_path, tmp_path / "artifacts", settings)
    shutil.copytree(served.data["artifacts"], tmp_path / "artifacts")
    outcome = run_channel(services, served.client, settings.channels[0], "2025-02-18")
    assert outcome.status == "posted", outcome
    assert calls == {"load": 1, "prepare": 1}
    assert services.reader.latest().as_of == "2025-02-17"


def test_a_digest_says_how_many_deals_did_not_fit_and_when_nothing_is_new(served):
    """Block Kit holds fewer deals than asked: the footer counts the rest. The same data again:
    'no new CRM data', nothing new, no deal called new."""
    from bot.blocks import digest_message
    from bot.digest_text import render

    reader = served.services.reader
    saved = reader.latest()
    digest = compose(reader, saved, scope=Scope("all"), top=40, min_risk=0, previous_run=None,
                     repeat=True)  # fmt: skip
    message = digest_message(digest)
    shown = sum(1 for b in message["blocks"] if b.get("block_id", "").startswith("deal:"))
    footer = message["blocks"][-1]["elements"][0]["text"]
    assert shown < 40 and f"+{40 - shown} more did not fit here" in footer
    text = json.dumps(message) + render(digest)
    assert f"no new CRM data since {saved.as_of}" in text
    assert "(new)" not in text and "first digest" not in text.lower()


def test_revbot_deal_prints_what_slash_deal_answers(served, capsys):
    from bot.terminal import plain

    deal = served.data["scores"].iloc[3]
    _, answer = ask(served, "/deal", deal["deal_id"])
    db = ["--db", str(served.db_path), "--artifacts", str(served.data["artifacts"])]
    capsys.readouterr()
    assert main(["deal", deal["deal_id"].lower(), *db]) == 0
    out = capsys.readouterr().out
    assert out == plain(answer) + "\n"
    assert f"Win probability: {chance(deal['win_prob'])}" in out and "Suggested next steps" in out
    assert main(["deal", "no such deal anywhere", *db]) == 1
    assert "I found no open deal" in capsys.readouterr().out


def test_the_regions_forecasts_add_up_to_the_company_s(served):
    """The morning run draws every scope in one simulation: where the regions share out the
    company's open deals, their mean revenue adds up to the company's in every period (ten
    separate simulations would each carry their own Monte Carlo noise)."""
    from dataset import score_runs

    db, run = served.services.reader.db(), served.services.reader.latest()
    saved = {s: score_runs.run_forecast(db, run.run_id, s) for s in score_runs.forecast_scopes(db, run.run_id)}  # fmt: skip
    regions = [s for s in saved if s.startswith("region:")]
    assert len(regions) >= 2
    assert sum(saved[r]["open_deals"] for r in regions) == saved["all"]["open_deals"]
    for k, whole in enumerate(saved["all"]["table"]):
        parts = sum(saved[r]["table"][k]["mean"] for r in regions)
        assert parts == pytest.approx(whole["mean"], rel=1e-9), whole["period"]


def test_a_scope_added_later_has_the_run_s_bands_and_no_backtest(served, tmp_path):
    """A scope nobody forecast with the run (a rep not yet in the roster when it ran) is drawn by
    the writer when first asked for, in the serving process: with the bands the run's other
    forecasts were drawn with, saved with them, though a training elsewhere has since changed
    the saved shock and the stage models it was sized for (that used to start a backtest inside
    the request, and give the scope other bands than the others); a run saved before its
    forecasts kept their bands takes the saved ones as they are, still without a backtest."""
    from dataset import score_runs

    art = tmp_path / "art"
    shutil.copytree(served.data["artifacts"], art)
    config = json.loads((art / "forecast.json").read_text(encoding="utf-8"))
    retrained = {**config, "sigma": 1.5, "stage_models": not config.get("stage_models", False)}
    (art / "forecast.json").write_text(json.dumps(retrained), encoding="utf-8")
    before = (art / "forecast.json").read_bytes()
    reader = build(served.db_path, art, served.settings).reader
    saved = reader.latest()
    db = reader.db()
    company = score_runs.run_forecast(db, saved.run_id, "all")
    assert company["bands"]["sigma"] == company["sigma"] != 1.5
    unasked = [r for r in saved.scores["owner"].dropna().unique()
               if score_runs.run_forecast(db, saved.run_id, str(Scope("rep", r))) is None]  # fmt: skip
    first, second = unasked[:2]
    reader.forecast(saved.run_id, Scope("rep", first))
    added = score_runs.run_forecast(db, saved.run_id, str(Scope("rep", first)))
    assert added["bands"] == company["bands"] and added["sigma"] == company["sigma"]
    assert (art / "forecast.json").read_bytes() == before  # no backtest wrote its bands
    # a run whose forecasts did not keep their bands: the saved ones, as they are
    payload = {k: v for k, v in company.items() if k != "bands"}
    db.execute("UPDATE run_forecasts SET payload = ? WHERE run_id = ? AND scope = 'all'",
               [json.dumps(payload), saved.run_id])  # fmt: skip
    db.conn.commit()
    fresh = build(served.db_path, art, served.settings).reader
    fresh.forecast(saved.run_id, Scope("rep", second))
    assert score_runs.run_forecast(db, saved.run_id, str(Scope("rep", second)))["sigma"] == 1.5
    assert (art / "forecast.json").read_bytes() == before
