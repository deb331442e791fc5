"""The Home tab lists a set of identical deals once, as the digest does (MavenTech has hundreds of
open rows that differ only by id): read from a run saved in a real SQLite file by the reader the
bot uses, so the run's sets are the ones `SavedRun.twins` works out."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd

from bot.home import PAGE, HomeState, collapse_twins
from bot.home_tabs import scope_view
from bot.listeners import ACTION_DETAILS
from bot.reader import Reader
from bot.settings import Scope, Settings
from dataset import database, score_runs

WHY = json.dumps([{"key": "activity", "text": "no activity for 40 days", "points": -6.0,
                   "risk": 14.0, "money": 900.0}])  # fmt: skip


def _row(deal_id: str, account: str, value: float, win: float, **more) -> dict:
    return {"deal_id": deal_id, "owner": "Ann", "manager": "Mo", "region": "East",
            "product": "GTK 500", "account": account, "stage": "Engaging", "value": value,
            "win_prob": win, "risk": round(100 * (1 - win), 1), "expected_close": "2018-01-15",
            "value_known": False, "drivers": WHY, "actions": None, **more}  # fmt: skip


def saved_run(tmp_path, rows: list[dict]):
    scores = pd.DataFrame(rows).set_index("deal_id")
    scores["value_at_risk"] = scores["value"] * (1 - scores["win_prob"])
    scores = scores.sort_values("value_at_risk", ascending=False, kind="stable")
    scores["rank"] = np.arange(1, len(scores) + 1)
    for part in score_runs.SCORE_PARTS:
        scores[part[0]] = scores["risk"] / 4
    db = database.connect(tmp_path / "revbot.db")
    score_runs.write_score_run(db, as_of=date(2017, 12, 31), scores=scores, model_hash="m",
                               confidence="low", base_rate=0.6)  # fmt: skip
    db.close()
    reader = Reader(tmp_path / "revbot.db", Settings())
    return reader, reader.latest()


def listed(view: dict) -> list[tuple[str, str]]:
    """(deal id, the section's text) of each deal on the page, in order."""
    return [(b["accessory"]["value"].split(":", 1)[1], b["text"]["text"]) for b in view["blocks"]
            if b.get("accessory", {}).get("action_id") == ACTION_DETAILS]  # fmt: skip


def test_a_set_of_identical_deals_is_listed_once_with_the_others_ids(tmp_path):
    twins = [_row(f"T{i}", "Acme", 26_768.0, 0.63) for i in range(10)]
    # alike in everything but the account: not twins
    near = _row("N1", "Acme Corp", 26_768.0, 0.63)
    others = [_row(f"D{i}", f"Account {i}", 5_000.0 + 100 * i, 0.4) for i in range(5)]
    reader, saved = saved_run(tmp_path, [*twins, near, *others])
    view = scope_view(reader, saved, Scope("all"), HomeState())
    ids = [i for i, _ in listed(view)]
    assert len(ids) == len(set(ids)) == 1 + 1 + 5  # one line for the ten, the near one, the rest
    first = next(text for i, text in listed(view) if i.startswith("T"))
    shown = [i for i, _ in listed(view) if i.startswith("T")][0]
    rest = sorted(f"T{i}" for i in range(10) if f"T{i}" != shown)
    assert "9 more open deals with exactly these details" in first
    assert all(t in first for t in rest[:5]) and "and 4 more" in first
    near_text = next(text for i, text in listed(view) if i == "N1")
    assert "also:" not in near_text
    # the glance still counts every open deal the CRM has; the pages count what is listed
    assert view["blocks"][1]["fields"][0]["text"] == "*Open deals*\n16"
    assert any("of 7, by value at risk" in json.dumps(b) for b in view["blocks"])


def test_pages_of_collapsed_deals_cover_each_set_once(tmp_path):
    rows = []
    for s in range(30):  # thirty sets of three twins, and thirty single deals
        rows += [_row(f"S{s}-{k}", f"Set {s}", 10_000.0 + s, 0.5) for k in range(3)]
        rows.append(_row(f"U{s}", f"Single {s}", 10_000.0 + s, 0.5))
    reader, saved = saved_run(tmp_path, rows)
    seen = []
    for page in range(3):
        view = scope_view(reader, saved, Scope("all"), HomeState(page=page))
        seen += [i for i, _ in listed(view)]
    sets = [i.split("-")[0] for i in seen]
    assert len(seen) == 60 == 3 * PAGE and len(set(sets)) == 60  # every set and single deal once
    assert "Next" not in json.dumps(view["blocks"])  # three pages, not four


def test_collapse_keeps_order_and_names_the_others_among_the_rows_given():
    deals = pd.DataFrame({"deal_id": ["a", "b", "c", "d", "e"]}, index=[10, 11, 12, 13, 14])
    sets = pd.Series([0, 1, 0, 2, 0], index=[10, 11, 12, 13, 14])
    kept, others = collapse_twins(deals, sets)
    assert kept["deal_id"].tolist() == ["a", "b", "d"]
    assert others.to_dict() == {0: ("c", "e")}
    # a filter that leaves one of a set shows it alone
    kept, others = collapse_twins(deals.loc[[11, 12, 13]], sets)
    assert kept["deal_id"].tolist() == ["b", "c", "d"] and others.empty
    assert collapse_twins(deals, None)[0] is deals


def test_a_page_past_the_end_gets_the_reasons_of_the_page_shown(tmp_path):
    """A view saved on a longer list (before its deals were collapsed, or a filter shrank it)
    names a page past the end: the last page is shown, and its deals are the ones given their
    reasons."""
    rows = []
    for s in range(10):  # thirty deals, three pages as listed before; one page collapsed
        rows += [_row(f"S{s}-{k}", f"Set {s}", 10_000.0 + s, 0.5, drivers=None) for k in range(3)]
    asked: list[str] = []
    _, saved = saved_run(tmp_path, rows)
    reader = Reader(tmp_path / "revbot.db", Settings(),
                    add_reasons=lambda _run, ids: asked.extend(ids))  # fmt: skip
    view = scope_view(reader, reader.latest(), Scope("all"), HomeState(page=2))
    shown = [i for i, _ in listed(view)]
    assert len(shown) == 10 and sorted(asked) == sorted(shown)
