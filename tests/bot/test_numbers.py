"""One set of numbers, said plainly: a deal's value and its reasons' amounts read the same in the
Slack digest, the terminal digest and the `/deal` reply; the configured currency is the one shown;
counts have their plurals; points say what they are points of."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest

from bot.blocks import digest_message, top_reasons
from bot.cli import main
from bot.digest import build
from bot.digest_text import render
from bot.morning import compose, run_channel
from bot.replies import deal_reply, forecast_summary
from bot.settings import Scope
from dataset.money import default_currency, money
from tests.bot.slackenv import channel
from tests.bot.test_blocks import NO_CLOSED, NO_MARKS, RUN, scores
from tests.bot.test_commands import ask, deal_text

DIGEST = channel("C0DIGEST", top=5)
AMOUNT = r"-?(?:[$€£¥]|[A-Z]{3} )[\d,.]+[kMBT]?"


def _digest(frame: pd.DataFrame, top: int = 10, min_risk: float = 0):
    return build(run=RUN, scores=frame, scope=Scope("all"), top=top, min_risk=min_risk,
                 marks=NO_MARKS, previous=None, closed=NO_CLOSED,
                 quarter=("2018-Q1", 1.04e6, 1.31e6, 1.63e6))  # fmt: skip


def _slack_text(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False)


@pytest.mark.bot(channels=[DIGEST])
def test_one_deal_reads_the_same_in_slack_the_terminal_and_deal(served):
    assert run_channel(served.services, served.client, DIGEST, "2025-02-17").status == "posted"  # fmt: skip
    (call,) = served.slack.calls_to("chat.postMessage")
    sections = [b["text"]["text"] for b in call.params["blocks"]
                if b["type"] == "section" and "text" in b and "\nvalue " in b["text"]["text"]]  # fmt: skip
    reader = served.services.reader
    snap = reader.latest()
    text = render(compose(reader, snap, scope=Scope("all"), top=5, min_risk=0, previous_run=None))
    compared = 0
    for section in sections:
        deal_id = re.search(r"`([^`]+)`", section)[1]
        deal = snap.scores.set_index("deal_id").loc[deal_id]
        shown = money(deal["value"])
        assert re.fullmatch(AMOUNT, shown) and shown.startswith("$"), shown
        assert f"\nvalue {shown}" in section, section
        (line,) = [ln for ln in text.splitlines() if f" {deal_id} " in ln]
        assert f": value {shown}" in line, line
        _, answer = ask(served, "/deal", deal_id)
        reply = deal_text(answer)
        assert f"*Value*\\n{shown}" in reply, reply
        # each reason the digest gives, with its risk points and amount at risk, is in all three
        why_slack = section.split("\n_why:_ ", 1)[1].split("\n")[0]
        why_text = next(ln for ln in text.splitlines()[text.splitlines().index(line) + 1:]
                        if ln.startswith("       why: ")).removeprefix("       why: ")  # fmt: skip
        said = re.findall(r" — (risk [+-]\d+ \(of 100\)(?:, " + AMOUNT + " at risk)?)", why_text)
        assert said and said == re.findall(r" — (risk [+-]\d+ \(of 100\)(?:, " + AMOUNT + " at risk)?)", why_slack)  # fmt: skip
        for part in said:
            assert part in reply, (part, reply)
        compared += 1
    assert compared == 5
    everything = "\n".join([_slack_text(call.params), text])
    bare = re.search(r"\bpts\b|\(s\)|\b(?:value|deal size|median open deal \(|is) \d", everything)
    assert bare is None, f"a bare figure: {bare[0] if bare else ''!r}"


def test_a_given_currency_is_used_by_every_renderer():
    d = _digest(scores(3))
    for code, sign in (("EUR", "€"), ("GBP", "£"), ("CHF", "CHF ")):
        slack, text = _slack_text(digest_message(d, currency=code)), render(d, currency=code)
        row = d.deals.iloc[0]
        reply = _slack_text(deal_reply(row.to_dict(), top_reasons(row["drivers"]), [],
                                       pd.DataFrame({"risk": [75.0]}), "", "2017-12-31",
                                       currency=code))  # fmt: skip
        for shown in (slack, text, reply):
            assert f"{sign}4.82k" in shown and "$" not in shown, shown
        assert f"P50 {sign}1.31M (P10 {sign}1.04M - P90 {sign}1.63M)" in slack
        assert f"P50 {sign}1.31M, P10 {sign}1.04M - P90 {sign}1.63M" in text
        assert f"{sign}1.28k at risk" in slack and f"{sign}1.28k at risk" in text
    table = pd.DataFrame([{"kind": "quarter", "period": "2018-Q1", "p10": 1.04e6, "p50": 1.31e6,
                           "p90": 1.63e6, "won_to_date": 45_789.0}])  # fmt: skip
    summary = forecast_summary(table, "2018-Q1", Scope("all"), "2017-12-31", currency="JPY")
    assert "P50 *¥1.31M*, P10 ¥1.04M, P90 ¥1.63M (won so far ¥45.8k)" in summary


def test_counts_have_their_plurals():
    one = _digest(scores(1), min_risk=50)
    slack, text = _slack_text(digest_message(one)), render(one)
    assert "1 open deal in scope at risk 50 or more" in slack
    assert "1 open deal in scope at risk 50 or more" in text
    assert "Top 1 deal by value at risk:" in text and "1 open deal," in slack
    many = _digest(scores(3))
    assert "Top 3 deals by value at risk:" in render(many)
    assert "3 open deals in scope" in _slack_text(digest_message(many))
    twins = scores(2)
    twins.loc[1, "value"] = twins.loc[0, "value"]  # D1: the same deal as D0 but for its id
    assert "1 more open deal with exactly these details (D1)" in render(_digest(twins))
    none = _digest(scores(2), min_risk=90)
    assert "No deal in scope is at or above this risk level." in render(none)
    for shown in (slack, text, render(many), render(none)):
        assert "(s)" not in shown and "Top 0" not in shown


def test_points_say_what_they_are_points_of():
    d = _digest(scores(1))
    for shown in (_slack_text(digest_message(d)), render(d)):
        assert "risk 75/100" in shown
        assert "no activity for 23 days — risk +27 (of 100), $1.28k at risk" in shown
        assert "pts" not in shown


def _copy(small_crm, folder):
    folder.mkdir()
    db, art = folder / "revbot.db", folder / "artifacts"
    shutil.copy(small_crm["db_path"], db)
    shutil.copytree(small_crm["artifacts"], art)
    return ["--db", str(db), "--artifacts", str(art)]


def test_the_configured_currency_reaches_the_digest_its_reasons_and_the_chart(
    small_crm, tmp_path, capsys
):
    config = tmp_path / "revbot.toml"
    config.write_text('[exports]\ncurrency = "eur"\n', encoding="utf-8")
    paths = [*_copy(small_crm, tmp_path / "eur"), "--config", str(config)]
    out = tmp_path / "out"
    assert main(["score", *paths]) == 0  # the reasons are worded when the run is scored
    assert main(["digest", *paths, "--out", str(out)]) == 0
    assert main(["forecast", *paths, "--out", str(out), "--target", "1e6"]) == 0
    assert default_currency() == "USD"  # the command's currency ended with it
    text = (out / "digest.txt").read_text(encoding="utf-8")
    slack = (out / "digest.json").read_text(encoding="utf-8")
    for shown in (
        text,
        json.loads(slack)["text"],
        json.dumps(json.loads(slack), ensure_ascii=False),
    ):
        assert "€" in shown and "$" not in shown, shown
    assert re.search(r"value €[\d.]+k", text) and "deal size €" in text
    table = capsys.readouterr().out.split("forecast of score run", 1)[1]
    assert re.search(r"\d{4}-Q\d\s+€\S+\s+€\S+\s+€\S+\s+€\S+", table), table
    assert (out / "forecast.png").stat().st_size > 20_000


def test_a_currency_that_is_not_a_code_is_refused(small_crm, tmp_path, capsys):
    config = tmp_path / "revbot.toml"
    config.write_text('[exports]\ncurrency = "€"\n', encoding="utf-8")
    paths = [*_copy(small_crm, tmp_path / "bad"), "--config", str(config)]
    assert main(["forecast", *paths, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "[exports] currency: '€' is not a currency code" in err, err
