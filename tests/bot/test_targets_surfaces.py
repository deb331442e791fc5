"""Targets on every surface (issue 14): the chance of making the quarter's target, the gap and the
coverage are the same in `revbot forecast`, the digest and `/forecast` over the loopback Slack,
and the target's line is drawn for its own quarter only."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bot.cli import main
from bot.morning import compose
from bot.settings import Scope
from bot.target_text import categories_text, chance_text, odds_text
from forecasting.targets import Target, chance
from tests.bot.slackenv import LEADER, command_body, post


def _comment(served, text: str, user: str = LEADER) -> str:
    before = len(served.slack.calls_to("files.completeUploadExternal"))
    url = served.slack.response_url("fc")
    assert post(served.url, command_body("/forecast", text, user, url)).status == 200
    done = served.slack.wait_for("files.completeUploadExternal", before + 1, timeout=15)[-1]
    return done.params["initial_comment"]


def test_the_same_chance_of_the_target_on_every_surface(served, capsys, tmp_path):
    reader = served.services.reader
    saved = reader.latest()
    region = served.data["who"]["region"]
    whole, part = saved.forecast(Scope("all")), saved.forecast(Scope("region", region))
    this, following = whole.table.loc[whole.table["kind"] == "quarter", "period"].tolist()[:2]
    p50 = float(whole.quarter(this)["p50"])
    targets = (Target(this, "all", round(p50 * 1.2, -3)),
               Target(following, f"region:{region}", round(float(part.quarter(following)["p50"]) * 0.8, -3)))  # fmt: skip
    reader.settings = replace(reader.settings, targets=targets)
    config = tmp_path / "revbot.toml"
    config.write_text("".join(f'[[targets]]\nquarter = "{t.quarter}"\nscope = "{t.scope}"\n'
                              f"amount = {t.amount}\n" for t in targets))  # fmt: skip

    expected = chance(whole.grids[this], targets[0].amount)
    assert 0 < expected < 0.5  # 20% above the P50: possible, not likely
    args = ["--db", str(served.db_path), "--artifacts", str(served.data["artifacts"]),
            "--config", str(config)]  # fmt: skip
    assert main(["forecast", "--by", "region", "--json", *args]) == 0
    cli = json.loads(capsys.readouterr().out)["scopes"]
    got = cli["all"]["targets"][this]
    assert got["chance"] == round(expected, 4) and got["target"] == targets[0].amount
    assert got["gap"] == targets[0].amount - got["p50"] and following not in cli["all"]["targets"]
    assert cli[f"region:{region}"]["targets"][following]["chance"] > 0.5  # 20% below the P50

    digest = compose(reader, saved, scope=Scope("all"), top=5, min_risk=0, previous_run=None)
    assert digest.odds.chance == expected and digest.odds.target == targets[0].amount
    comment = _comment(served, "")
    sentence = odds_text(digest.odds, this)
    assert sentence in comment and f"*Chance of making {this}: {chance_text(expected)}*" in comment
    assert "short" in sentence and f"coverage {digest.odds.coverage:.1f}x" in sentence
    assert f"Chance of making {following}" in _comment(served, f"next {region}")
    assert "Chance of making" not in _comment(served, "next")  # no company target next quarter

    split, basis = saved.categories(Scope("all"), this)
    lines = categories_text(split, this, basis)
    assert lines in comment and sum(r["deals"] for r in split.rows) > 0
    out = tmp_path / "out"
    assert main(["forecast", *args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert sentence.replace("*", "") in printed
    assert lines.splitlines()[0].replace("*", "") in printed


def test_the_target_line_is_drawn_for_its_quarter_only(served, monkeypatch):
    import bot.listeners.commands as commands

    drawn: list = []
    real = commands.fan_chart

    def spy(table, won, as_of, target=None, **kw):
        drawn.append(target)
        return real(table, won, as_of, target, **kw)

    monkeypatch.setattr(commands, "fan_chart", spy)
    reader = served.services.reader
    whole = reader.latest().forecast(Scope("all"))
    this, following = whole.table.loc[whole.table["kind"] == "quarter", "period"].tolist()[:2]
    reader.settings = replace(reader.settings, targets=(
        Target(this, "all", 1e6), Target(following, "all", 2e6)))  # fmt: skip
    _comment(served, "")
    _comment(served, "next")
    assert drawn == [1e6, None]  # the chart shows this quarter; next quarter's target is not it


def test_a_call_is_recorded_shown_and_kept(served, capsys):
    from bot import calls
    from tests.bot.slackenv import MANAGER, REP
    from tests.bot.test_commands import ask

    manager = served.data["who"]["manager"]
    _, answer = ask(served, "/forecast", "call 1.2M", user=MANAGER)
    text = answer["text"]
    saved = served.services.reader.latest()
    fc = saved.forecast(Scope("manager", manager))
    this = str(fc.quarter()["period"])
    assert text.startswith(f"Recorded your call for {this}, {manager}'s team: *$1.2M*. The model's P50 is ")  # fmt: skip
    assert f"chance of reaching it: {chance_text(chance(fc.grids[this], 1.2e6))}" in text
    assert answer.get("response_type") == "ephemeral"
    comment = _comment(served, "", user=MANAGER)
    assert f"*Calls*: {manager} $1.2M (" in comment

    ask(served, "/forecast", "call 950k", user=MANAGER)  # a new call replaces it in view...
    comment = _comment(served, "", user=MANAGER)
    assert f"*Calls*: {manager} $950k (" in comment and "$1.2M (" not in comment
    kept = [
        (c["caller"], c["amount"], c["scope"]) for c in calls.history(served.services.reader.db())
    ]
    assert kept == [(manager, 1.2e6, f"manager:{manager}"), (manager, 9.5e5, f"manager:{manager}")]

    _, refused = ask(
        served, "/forecast", "call lots", user=MANAGER
    )  # ...and a bad one is explained
    assert refused["text"].startswith("Give your number first: `/forecast call 1.2M`")
    other = next(r for r in saved.names("region") if r != served.data["who"]["region"])
    _, outside = ask(served, "/forecast", f"call 1M {other}", user=REP)
    assert (
        "Recorded" not in outside["text"] and len(calls.history(served.services.reader.db())) == 2
    )


def test_forecast_movement_posts_the_waterfall_and_lines_that_add_up(served, capsys):
    import pandas as pd

    from bot.target_text import movement_text

    reader = served.services.reader
    saved = reader.latest()
    fc = saved.forecast(Scope("all"))
    this = str(fc.quarter()["period"])
    comment = _comment(served, "movement")
    assert comment.startswith(f"*What moved in {this}, all teams* (as of {saved.as_of})")
    until = pd.Timestamp(saved.as_of)
    week = saved.movement(Scope("all"), until - pd.Timedelta(days=7))
    assert movement_text(week, this) in comment
    assert week.before + week.parts["value"].sum() == pytest.approx(week.after)
    assert len(week.deals) > 0  # the demo's pipeline moves every week
    png = list(served.slack.uploads.values())[-1]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    args = ["--db", str(served.db_path), "--artifacts", str(served.data["artifacts"])]
    assert main(["forecast", "--movement", *args, "--out", str(served.db_path.parent / "m")]) == 0
    assert movement_text(week, this).replace("*", "") in capsys.readouterr().out


def test_the_monday_digest_says_what_moved_since_last_week(served):
    from bot.blocks import digest_message
    from bot.target_text import movement_text

    reader = served.services.reader
    saved = reader.latest()
    this = str(saved.forecast(Scope("all")).quarter()["period"])
    week, _ = saved.movements(Scope("all"))
    monday = compose(reader, saved, scope=Scope("all"), top=5, min_risk=0, previous_run=None,
                     weekly=True)  # fmt: skip
    assert monday.movement == movement_text(week, this)
    texts = json.dumps(digest_message(monday)["blocks"], ensure_ascii=False)
    assert json.dumps(monday.movement, ensure_ascii=False)[1:-1] in texts
    other = compose(reader, saved, scope=Scope("all"), top=5, min_risk=0, previous_run=None,
                    weekly=False)  # fmt: skip
    assert other.movement is None
