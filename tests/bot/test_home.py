"""The App Home dashboard and the deal modal, pure: who sees which deals, in which order, the
filters and pages, Block Kit's limits, the state a view carries back, and the modal's chart."""

from __future__ import annotations

import json
import random

import pandas as pd

from bot.home import (
    ANY,
    PAGE,
    Forecast,
    HomeState,
    check_view,
    filtered,
    home_view,
    option_value,
    read_state,
    resolve,
)
from bot.listeners import ACTION_DETAILS, ACTION_HOME_PAGE, ACTION_HOME_REGION
from bot.modal import LEVELS, deal_modal, level, sparkline, trend_text
from bot.settings import Scope
from dataset.money import chance

REGIONS = ("West", "East", "Central")


def scores(n: int = 50, seed: int = 1) -> pd.DataFrame:
    """A run of `n` deals over three regions, two managers each, two reps each, by rank."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        region = REGIONS[i % 3]
        manager = f"{region} boss {i % 2}"
        rows.append({
            "deal_id": f"D{i:03d}", "rank": i + 1, "account": f"Acct {i}", "product": "GTX",
            "owner": f"{manager} rep {i % 4 // 2}", "manager": manager, "region": region,
            "stage": rng.choice(["Prospecting", "Engaging"]), "value": 1000.0 + i,
            "win_prob": rng.random(), "risk": float(rng.randrange(0, 100)),
            "value_at_risk": 500.0, "expected_close": "2025-03-01",
            "drivers": json.dumps([{"text": "no activity for 20 days", "points": -5.0,
                                    "risk": 12.0, "money": 100.0}]),
        })  # fmt: skip
    return pd.DataFrame(rows)


def listed(view: dict) -> list[str]:
    """The deal ids of a Home view, in order (from the Details buttons)."""
    return [b["accessory"]["value"].split(":", 1)[1] for b in view["blocks"]
            if b.get("accessory", {}).get("action_id") == ACTION_DETAILS]  # fmt: skip


ALL = Scope("all")
START = HomeState()


def view(frame, scope=ALL, state=START, forecast=None) -> dict:
    v = home_view(7, "2025-02-14", frame, scope, state, forecast)
    assert check_view(v) == []
    return v


def test_each_role_sees_only_its_deals_ranked_by_value_at_risk():
    frame = scores(60).sample(frac=1, random_state=3)  # any order in: rank order out
    rep = frame["owner"].iloc[0]
    manager = frame["manager"].iloc[0]
    for scope, column, name in [(Scope("rep", rep), "owner", rep),
                                (Scope("manager", manager), "manager", manager)]:  # fmt: skip
        ids = listed(view(frame, scope))
        expected = frame[frame[column] == name].sort_values("rank")["deal_id"].head(PAGE)
        assert ids == expected.tolist() and ids
    everything = listed(view(frame))
    assert everything == frame.sort_values("rank")["deal_id"].head(PAGE).tolist()


def test_pages_cover_every_deal_once_and_the_pager_shows_only_real_pages():
    frame = scores(45)
    seen, pagers = [], []
    for page in range(3):
        v = view(frame, state=HomeState(page=page))
        seen += listed(v)
        buttons = [
            e for b in v["blocks"] if b.get("block_id") == "home_pages" for e in b["elements"]
        ]
        assert all(e["action_id"] == ACTION_HOME_PAGE for e in buttons)
        pagers.append([e["value"] for e in buttons])
    assert seen == frame["deal_id"].tolist()
    assert pagers == [["1"], ["0", "2"], ["1"]]
    last = view(frame, state=HomeState(page=99))  # a page past the end: the last one
    assert listed(last) == frame["deal_id"].tolist()[40:]
    assert "Deals 41-45 of 45" in json.dumps(last)


def test_filters_keep_exactly_the_matching_deals_and_survive_a_round_trip():
    frame = scores(90)
    state = HomeState().choose("region", "East").choose("risk", "60")
    back = read_state(view(frame, state=state)["private_metadata"])
    assert back == state
    deals, _ = filtered(frame, Scope("all"), back)
    expected = frame[(frame["region"] == "East") & (frame["risk"] >= 60)]
    assert deals["deal_id"].tolist() == expected["deal_id"].tolist()
    assert listed(view(frame, state=back)) == expected["deal_id"].head(PAGE).tolist()
    # picking "all regions" clears the filter and goes back to the first page
    cleared = HomeState(region="East", page=2).choose("region", ANY)
    assert cleared == HomeState()


def test_a_filter_naming_nothing_any_more_is_cleared_not_applied():
    frame = scores(30)
    deals, state = filtered(frame, Scope("all"), HomeState(region="Atlantis"))
    assert state.region is None and len(deals) == 30


def test_long_names_fit_the_options_and_are_matched_back():
    long = "R" * 400 + " <!channel> *x*"
    frame = scores(30)
    frame.loc[frame["region"] == "West", "region"] = long
    v = view(frame)
    region = next(e for b in v["blocks"] if b.get("block_id") == "home_filters"
                  for e in b["elements"] if e["action_id"] == ACTION_HOME_REGION)  # fmt: skip
    values = [o["value"] for o in region["options"]]
    assert option_value(long) in values and all(len(x) <= 150 for x in values)
    assert resolve(option_value(long), sorted(set(frame["region"]))) == long
    chosen = HomeState().choose("region", option_value(long))
    assert set(filtered(frame, Scope("all"), chosen)[0]["region"]) == {long}
    assert "<!channel>" not in json.dumps(v)


def test_a_hundred_and_fifty_regions_stay_within_the_select_limit():
    frame = scores(300)
    frame["region"] = [f"Region {i}" for i in range(300)]
    assert check_view(view(frame)) == []


def test_reps_and_managers_get_no_region_or_team_filter():
    frame = scores(30)
    rep = frame["owner"].iloc[0]
    ids = [e["action_id"] for b in view(frame, Scope("rep", rep))["blocks"]
           if b.get("block_id") == "home_filters" for e in b["elements"]]  # fmt: skip
    assert ACTION_HOME_REGION not in ids and len(ids) == 2


def test_the_forecast_and_glance_add_up():
    frame = scores(30)
    fc = Forecast("2025-Q1", 1e5, 2.5e5, 4e5)
    text = json.dumps(view(frame, forecast=fc))
    assert "2025-Q1 forecast" in text and "$250k" in text
    assert f"*Open deals*\\n{len(frame)}" in text
    assert f"*At risk (60+)*\\n{int((frame['risk'] >= 60).sum())}" in text


def test_nothing_to_show_says_so():
    frame = scores(10)
    v = view(frame, state=HomeState(min_risk=80).choose("region", "Nowhere"))
    assert listed(v) == frame.loc[frame["risk"] >= 80, "deal_id"].tolist()  # region cleared
    none = view(frame, state=HomeState(min_risk=80, stage="Prospecting", region="West"))
    kept = frame[
        (frame["risk"] >= 80) & (frame["stage"] == "Prospecting") & (frame["region"] == "West")
    ]
    assert listed(none) == kept["deal_id"].tolist()
    calm = view(frame.assign(risk=10.0), state=HomeState(min_risk=80))
    assert listed(calm) == [] and "No open deal matches these filters." in json.dumps(calm)
    empty = view(frame.iloc[0:0], Scope("rep", "Nobody"))
    assert "No open deal in Nobody" in json.dumps(empty)


def test_unreadable_state_is_the_default():
    for junk in (None, "", "{", "[]", '{"page": -1}', '{"page": true}', '{"region": 5}',
                 '{"min_risk": 55}', json.dumps({"region": "x" * 151}), '"text"'):  # fmt: skip
        state = read_state(junk)
        assert state.page == 0 and state.min_risk == 0 and state.region is None, junk


def test_sparkline_is_monotone_on_its_fixed_scale():
    rng = random.Random(11)
    for _ in range(2000):
        a, b = sorted(rng.uniform(-20, 120) for _ in range(2))
        assert level(a, 0, 100) <= level(b, 0, 100)
    assert sparkline([0, 100], 0, 100) == LEVELS[0] + LEVELS[-1]


def test_the_trend_text_states_the_first_and_last_runs():
    rng = random.Random(5)
    for n in range(2, 12):
        risk = [float(rng.randrange(0, 101)) for _ in range(n)]
        win = [rng.random() for _ in range(n)]
        days = [f"2025-01-{d + 1:02d}" for d in range(n)]
        text = trend_text(pd.DataFrame({"run_id": range(n), "as_of": days, "risk": risk,
                                        "win_prob": win}))  # fmt: skip
        assert f"Over the last {n} runs* ({days[0]} to {days[-1]})" in text
        assert f"{risk[0]:.0f} → {risk[-1]:.0f} (of 100)" in text
        assert f"{chance(win[0])} → {chance(win[-1])}" in text
    assert "First scored in this run" in trend_text(pd.DataFrame(columns=["risk", "win_prob"]))


def test_the_modal_keeps_the_answer_and_adds_the_chart():
    reply = {"text": "x", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "a"}},
                                     {"type": "context", "elements": []}]}  # fmt: skip
    history = pd.DataFrame({"as_of": ["2025-01-01", "2025-01-02"], "risk": [10.0, 90.0],
                            "win_prob": [0.9, 0.1]})  # fmt: skip
    modal = deal_modal(reply, history)
    assert modal["type"] == "modal" and len(modal["title"]["text"]) <= 24
    assert [b["type"] for b in modal["blocks"]] == ["section", "section", "context"]
    assert "10 → 90" in modal["blocks"][1]["text"]["text"]
    assert check_view(modal) == []


def test_with_a_crm_template_each_deal_links_to_the_crm_and_nothing_else_links():
    import re

    from bot.crm_links import template_default

    frame = scores(30)
    frame.loc[0, "deal_id"] = "D<!channel>|x"
    with template_default("https://crm.example.com/deals/{id}"):
        v = view(frame)
    links = re.findall(r"<([^<>|]+)\|", json.dumps(v))
    assert len(links) == PAGE and all(u.startswith("https://crm.example.com/deals/") for u in links)
    assert "https://crm.example.com/deals/D%3C%21channel%3E%7Cx" in links
    assert not re.findall(r"<([^<>|]+)\|", json.dumps(view(frame)))  # no template: no link
