"""`/deal`'s lookups on a run too big for difflib: suggestions one typo away, within the asker's
scope, the same as difflib's on one-typo queries; and the per-run work a request reuses (a
scope's rows, a quarter's deals and categories) giving what a fresh computation gives."""

from __future__ import annotations

import difflib
import random
from datetime import date

import numpy as np
import pandas as pd
import pytest

from bot import reader as reader_module
from bot.digest import in_scope
from bot.near import one_typo
from bot.reader import Reader
from bot.settings import Scope, Settings
from dataset import database, score_runs


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance (adjacent swaps count one), for checking one_typo."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))  # fmt: skip
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


@pytest.mark.parametrize("seed", range(20))
def test_one_typo_is_exactly_the_strings_one_edit_away(seed):
    rng = random.Random(seed)
    word = "".join(rng.choice("ab1 ") for _ in range(rng.randint(0, 6)))
    near = one_typo(word, alphabet="ab1 ")
    assert word not in near and all(_edits(word, w) == 1 for w in near)
    # and every string of the alphabet one edit away is there (checked by brute force)
    everything = {""}
    for _ in range(len(word) + 1):
        everything |= {w + c for w in everything for c in "ab1 "}
    assert {w for w in everything if _edits(word, w) == 1} == near


IDS = [
    "006" + "".join(random.Random(i).choices("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", k=9))
    for i in range(600)
]  # as sparse as a CRM's ids: a typo has one neighbour


@pytest.fixture(scope="module")
def run_db(tmp_path_factory):
    rng = np.random.default_rng(4)
    n = 600
    scores = pd.DataFrame(
        {
            "owner": rng.choice(["Ann", "Bob", "Cy"], n), "manager": rng.choice(["Mo", "Flo"], n),
            "region": rng.choice(["East", "West"], n), "product": "GTX",
            "account": [f"Account {i % 150}" for i in range(n)], "stage": "Engaging",
            "value": rng.lognormal(8, 1, n).round(0), "win_prob": rng.uniform(0.05, 0.95, n),
            "expected_close": [str(date(2024, 1, 1) + pd.Timedelta(days=int(d)).to_pytimedelta())
                               for d in rng.integers(0, 250, n)],
            "value_known": True,
            "forecast_category": rng.choice(["Pipeline", "Commit", None], n),
        },
        index=pd.Index(IDS, name="deal_id"),
    )  # fmt: skip
    scores.loc[scores.index[::40], "expected_close"] = None
    scores["risk"] = (100 * (1 - scores["win_prob"])).round(1)
    scores["value_at_risk"] = scores["value"] * (1 - scores["win_prob"])
    scores = scores.sort_values("value_at_risk", ascending=False)
    scores["rank"] = np.arange(1, n + 1)
    scores["drivers"], scores["actions"] = None, None
    for part in score_runs.SCORE_PARTS:
        scores[part[0]] = scores["risk"] / 4
    path = tmp_path_factory.mktemp("lookup") / "revbot.db"
    db = database.connect(path)
    score_runs.write_score_run(db, as_of=date(2024, 3, 1), scores=scores, model_hash="m",
                               confidence="high", base_rate=0.4)  # fmt: skip
    db.close()
    return path


def _suggested(path, query: str, scope: Scope, pool: int, monkeypatch) -> list[str]:
    monkeypatch.setattr(reader_module, "DIFFLIB_POOL", pool)
    reader = Reader(path, Settings())
    try:
        found = reader.latest().lookup(query, scope)
        assert found.deal is None and found.several is None
        return found.suggestions
    finally:
        reader.close()


TYPOS = {
    "a character changed": lambda d: d[:5] + ("X" if d[5] != "X" else "Y") + d[6:],
    "one left out": lambda d: d[:4] + d[5:],
    "one too many": lambda d: d[:7] + "Q" + d[7:],
    "two swapped": lambda d: d[:3] + d[4] + d[3] + d[5:] if d[3] != d[4] else d[:3] + "Z" + d[4:],
    "in lower case, one changed": lambda d: (d[:-1] + ("x" if d[-1] != "X" else "y")).lower(),
}


@pytest.mark.parametrize("typo", TYPOS)
def test_a_big_run_suggests_the_id_one_typo_away(run_db, monkeypatch, typo):
    deal_id = IDS[17]
    query = TYPOS[typo](deal_id)
    big = _suggested(run_db, query, Scope("all"), 0, monkeypatch)
    assert big[0] == deal_id  # as difflib finds it (checked here), without comparing every id
    assert deal_id in difflib.get_close_matches(query.upper(), IDS, n=3, cutoff=0.6)
    assert all(_edits(query.lower(), s.lower()) == 1 for s in big)


def test_a_big_run_suggests_the_account_one_typo_away(run_db, monkeypatch):
    big = _suggested(run_db, "Acount 42", Scope("all"), 0, monkeypatch)
    assert big[0] == "Account 42"
    accounts = [f"Account {i}" for i in range(150)]
    assert "Account 42" in difflib.get_close_matches("Acount 42", accounts, n=3, cutoff=0.6)
    # two typos: not one typo away, so only difflib finds it, where the run is small enough
    assert "Account 42" in _suggested(run_db, "Acont 442", Scope("all"), 10**9, monkeypatch)
    assert "Account 42" not in _suggested(run_db, "Acont 442", Scope("all"), 0, monkeypatch)


def test_a_big_runs_suggestions_stay_within_the_scope(run_db, monkeypatch):
    reader = Reader(run_db, Settings())
    scores = reader.latest().scores
    reader.close()
    theirs = scores[scores["region"] == "West"].iloc[0]["deal_id"]
    typo = theirs[:-1] + ("X" if theirs[-1] != "X" else "Y")
    assert theirs in _suggested(run_db, typo, Scope("region", "West"), 0, monkeypatch)
    assert theirs not in _suggested(run_db, typo, Scope("region", "East"), 0, monkeypatch)


@pytest.mark.parametrize("scope", [Scope("all"), Scope("region", "East"), Scope("manager", "Mo"), Scope("rep", "Cy")])  # fmt: skip
def test_a_scopes_kept_rows_are_what_in_scope_gives(run_db, scope):
    reader = Reader(run_db, Settings())
    saved = reader.latest()
    for _ in range(2):  # the second time from what the run kept
        rows = saved.scores.iloc[saved.rows_of(scope)]
        pd.testing.assert_frame_equal(rows, in_scope(saved.scores, scope))
        q = pd.Series({"start": "2024-04-01", "end": "2024-06-30 23:59:59"})
        deals, basis = saved.quarter_deals(scope, q)
        close = pd.to_datetime(rows["expected_close"])
        expected = rows[close.between(pd.Timestamp(q["start"]), pd.Timestamp(q["end"]))]
        assert basis == "quarter" and deals["deal_id"].tolist() == expected["deal_id"].tolist()
        assert len(deals) > 0
    reader.close()


def test_an_account_search_finds_the_same_deals_as_a_scan(run_db):
    reader = Reader(run_db, Settings())
    saved = reader.latest()
    found = saved.lookup("ccount 1", Scope("region", "East"))
    east = in_scope(saved.scores, Scope("region", "East"))
    scan = east[east["account"].str.contains("ccount 1", case=False, regex=False)]
    assert found.several["deal_id"].tolist() == scan["deal_id"].tolist()
    reader.close()


def test_a_pasted_paragraph_is_answered_without_gigabytes(run_db, monkeypatch):
    """A query longer than any name has no name one typo away; its one-typo variants are not
    made (4,000 characters: 328,000 strings of 4,000 characters, 1.3 GB and seconds)."""
    import tracemalloc

    monkeypatch.setattr(reader_module, "DIFFLIB_POOL", 10**9)
    reader = Reader(run_db, Settings())
    try:
        saved = reader.latest()
        saved.lookup("Acount 42", Scope("all"))  # the run's lookups worked out beforehand
        tracemalloc.start()
        found = saved.lookup("x" * 4000, Scope("all"))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        reader.close()
    assert found.deal is None and found.several is None and found.suggestions == []
    assert peak < 50 * 2**20, f"{peak / 2**20:.0f} MB"
