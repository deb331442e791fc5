"""New deals are timed by the deals whose whole life the CRM has seen (born in view), not by
deals that were already under way when its history began."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from forecasting import forecast, inputs
from forecasting.bands import Bands
from forecasting.montecarlo import Arrivals, Periods, simulate
from forecasting.periods import calendar
from forecasting.quarter_pace import QuarterPace
from forecasting.timing import KaplanMeier, won_by_age
from scoring.crm import Crm

START = pd.Timestamp("2024-01-08")
TODAY = START + pd.Timedelta(days=400)
VALUE = 1000.0


def _crm(rng: np.random.Generator, imported: int, born: int, born_win_days: tuple,
         imported_win_days: tuple = (5, 40), born_wins: float = 0.5) -> Crm:  # fmt: skip
    """`imported` deals all engaged on START (the day the CRM was set up, whatever their real
    start), under way: 60% won `imported_win_days` (5-40) after START, the rest lost within
    5-30 (nothing closes before START + 5 days, when the CRM's history begins). `born` deals
    engaged from START + 5 days to TODAY: `born_wins` (50%) won `born_win_days` after
    engagement, the rest lost within 30 days. Closes after TODAY are still open on it."""
    won = np.r_[rng.random(imported) < 0.6, rng.random(born) < born_wins]
    took = np.r_[rng.uniform(*imported_win_days, imported), rng.uniform(*born_win_days, born)]
    lost = np.r_[rng.uniform(5, 30, imported), rng.uniform(0, 30, born)]
    took = np.where(won, took, lost).astype(int)
    engage = np.r_[
        np.full(imported, START), START + pd.to_timedelta(rng.integers(5, 400, born), "D")
    ]
    engage = pd.to_datetime(engage)
    closed = engage + pd.to_timedelta(took, unit="D")
    n = imported + born
    deals = pd.DataFrame(
        {
            "deal_id": [f"d{i}" for i in range(n)],
            "engage_date": engage,
            "closed_on": closed.where(closed <= TODAY),
            "status": np.where(closed > TODAY, "open", np.where(won, "won", "lost")),
            "product": "a",
            "owner": "rep",
            "value": VALUE,
        }
    )
    products = pd.DataFrame({"product": ["a"], "sales_price": [VALUE]})
    empty = pd.DataFrame()
    return Crm(deals, empty, empty, products, empty, empty, data_end=TODAY)


def _new_revenue(arrivals) -> np.ndarray:
    """The mean revenue of new deals within 60 and 200 days, with no deal open."""
    nobody = pd.DataFrame({"value": [0.0], "win_prob": [0.0], "age": [1.0], "timing_group": ["a"]})
    periods = Periods(names=("60 days", "200 days"), kind=("horizon", "horizon"),
                      start=np.zeros(2, np.int64), end=np.array([60, 200]))  # fmt: skip
    timing = inputs.fit_timing(CRM, TODAY)
    fc = simulate(nobody, timing, periods, scenarios=2000, seed=1, arrivals=arrivals)
    return fc.table["from_new"].to_numpy()


CRM = _crm(np.random.default_rng(4), imported=1500, born=1200, born_win_days=(100, 140))


def test_won_by_age_matches_a_hand_computation():
    # days 1 (won), 2 (lost), 3 (censored), 3 (won), 4 (lost): each win 0.2 (Aalen-Johansen, as
    # time_to_win's hand case), not divided by all wins; under watch: 5, 5, 4, 3, 1, 0
    cif, at_risk = won_by_age(np.array([1, 2, 3, 3, 4]), np.array([True, True, False, True, True]),
                              np.array([True, False, False, True, False]), max_days=5)  # fmt: skip
    assert np.allclose(cif, [0.0, 0.2, 0.2, 0.4, 0.4, 0.4])
    assert at_risk.tolist() == [5, 5, 4, 3, 1, 0]


def test_new_deals_win_as_the_deals_born_in_view_do_not_as_the_imported_ones():
    """The imported deals' quick wins make the pooled curve say most wins come within 40 days;
    no deal born in view is won before 100 days. New deals are born in view: none is won in the
    next 60 days, and over 200 days they win what the born deals' law says (each deal born on
    a day of the horizon, won with chance 0.5 after 100-140 days)."""
    arrivals = inputs.arrivals(CRM, TODAY)
    assert arrivals.won_scale is not None and arrivals.per_week > 0
    within_60, within_200 = _new_revenue(arrivals)
    assert within_60 < 0.01 * VALUE
    per_day = arrivals.per_week / 7.0
    ages = 200 - np.arange(200)  # the age on day 200 of a deal born on each day
    by_hand = per_day * 0.5 * VALUE * np.clip((ages - 100) / 40.0, 0.0, 1.0).sum()
    assert abs(within_200 - by_hand) < 0.15 * by_hand, (within_200, by_hand)
    # the curve alone (the forecast before): a new deal's wins mostly within 60 days
    plain_60, _ = _new_revenue(replace(arrivals, won_scale=None))
    assert plain_60 > 0.1 * by_hand


def _born_wins_by_hand(crm: Crm) -> tuple[np.ndarray, int]:
    """The born deals' chance of a win by each age (Aalen-Johansen, counted day by day: of the
    deals still open at the start of a day, the share won that day, times the share of all
    still open), and the oldest age 20 of them were still open at, straight from the deals."""
    d = crm.deals
    first = d["closed_on"].min()
    born = d[(d["engage_date"] >= first) & (d["engage_date"] <= TODAY)]
    end = born["closed_on"].fillna(TODAY)
    days = (end - born["engage_date"]).dt.days.to_numpy()
    won = born["status"].eq("won").to_numpy()
    closed = born["closed_on"].notna().to_numpy()
    open_share, total, wins, oldest = 1.0, 0.0, [], -1
    for age in range(731):
        at_risk = int((days >= age).sum())
        if at_risk >= 20:
            oldest = age
        if at_risk:
            ends_today = days == age
            total += open_share * (ends_today & won).sum() / at_risk
            open_share *= 1 - (ends_today & closed).sum() / at_risk
        wins.append(total)
    return np.array(wins), oldest


def _young_crm(seeds: tuple[int, int], born_within: int, born_win_days: tuple,
               imported_win_days: tuple = (5, 40), born_wins: float = 0.5) -> Crm:  # fmt: skip
    """1,500 deals imported on START (`_crm`) and deals born in view engaged only in the last
    `born_within` days before TODAY."""
    crm = _crm(np.random.default_rng(seeds[0]), imported=1500, born=0, born_win_days=born_win_days,
               imported_win_days=imported_win_days)  # fmt: skip
    young = _crm(np.random.default_rng(seeds[1]), imported=0, born=1200,
                 born_win_days=born_win_days, born_wins=born_wins).deals  # fmt: skip
    young = young[young["engage_date"] >= TODAY - pd.Timedelta(days=born_within)]
    deals = pd.concat([crm.deals, young.assign(deal_id="y" + young["deal_id"])], ignore_index=True)
    return replace(crm, deals=deals)


def test_the_scale_is_the_born_deals_wins_by_age_then_the_pools_further_wins():
    """Born deals young (engaged in the last 60 days): up to the oldest age 20 of them reached,
    a new deal wins by each age what they won by it, day for day; past it, that plus what the
    pool's curve wins from there (not the last ratio held over two quarters: on MavenTech a
    week after its first close, 4 quick wins held so had each new deal won 2.4 times)."""
    crm = _young_crm((9, 10), born_within=60, born_win_days=(20, 50))
    scale = inputs.new_deal_scale(crm, TODAY)
    curve = inputs.new_deal_win_rate(crm, TODAY) * inputs.fit_timing(crm, TODAY).cdf_from_start(731)
    wins, oldest = _born_wins_by_hand(crm)
    assert 30 <= oldest <= 60 and wins[oldest] > 0.05, (oldest, wins[oldest])
    seen = curve[: oldest + 1] > 0
    assert np.allclose((scale * curve)[: oldest + 1][seen], wins[: oldest + 1][seen], atol=1e-12)
    after = wins[oldest] + curve[oldest + 1 :] - curve[oldest]
    assert np.allclose((scale * curve)[oldest + 1 :], np.minimum(after, 1.0), atol=1e-12)


def test_past_the_ages_seen_new_deals_of_a_young_crm_still_win():
    """Born deals 40 days old at most (20 of them reach about 30), none won yet (they win after
    100-140 days): the first weeks get no new wins, but the next two quarters are not written
    off (the ratio held at 0 past the ages seen forecast $0 there)."""
    crm = _young_crm((12, 13), born_within=40, born_win_days=(100, 140))
    arrivals = inputs.arrivals(crm, TODAY)
    curve = arrivals.win_rate * inputs.fit_timing(crm, TODAY).cdf_from_start(731)
    assert arrivals.won_scale is not None
    assert (arrivals.won_scale * curve)[:25].max() == 0.0  # none of them won by then
    nobody = pd.DataFrame({"value": [0.0], "win_prob": [0.0], "age": [1.0], "timing_group": ["a"]})
    periods = Periods(names=("25 days", "200 days"), kind=("horizon", "horizon"),
                      start=np.zeros(2, np.int64), end=np.array([25, 200]))  # fmt: skip
    timing = inputs.fit_timing(crm, TODAY)
    fc = simulate(nobody, timing, periods, scenarios=500, seed=2, arrivals=arrivals)
    month, later = fc.table["from_new"].to_numpy()
    assert month == 0.0
    # what the born deals' own law gives: each born on a day of the 200, won with chance 0.5
    # after 100-140 days (past the ages seen, the pool's further wins say less: a guess)
    ages = 200 - np.arange(200)
    truth = arrivals.per_week / 7.0 * 0.5 * VALUE * np.clip((ages - 100) / 40.0, 0, 1).sum()
    assert 0.25 * truth < later < 2 * truth, (later, truth)


def test_a_new_deal_is_never_won_more_than_once():
    """Born deals young and nearly all won within 10 days; the pool's wins come late (the
    imported deals', 100-140 days): their further wins past the born deals' ages, added to
    the born deals' 95%, would make a new deal won more than once; capped at certain."""
    crm = _young_crm((14, 15), born_within=40, born_win_days=(5, 10),
                     imported_win_days=(100, 140), born_wins=0.95)  # fmt: skip
    curve = inputs.new_deal_win_rate(crm, TODAY) * inputs.fit_timing(crm, TODAY).cdf_from_start(731)
    wins = inputs.new_deal_scale(crm, TODAY) * curve
    assert wins[:20].max() > 0.9 and abs(wins.max() - 1.0) < 1e-12, (wins[:20].max(), wins.max())


def test_a_scale_that_is_no_number_or_empty_draws_as_none():
    """`Arrivals.scaled` is safe with scales made elsewhere: empty is none, NaN counts as 1, and
    no day's chance of a win goes past certain."""
    cdf = np.linspace(0.0, 1.0, 50)
    plain = Arrivals(per_week=7.0, values=np.ones(3), win_rate=0.5)
    assert np.array_equal(replace(plain, won_scale=np.zeros(0)).scaled(cdf), cdf)
    odd = replace(plain, won_scale=np.r_[np.nan, np.full(9, 3.0)]).scaled(cdf)
    assert np.isfinite(odd).all() and odd.max() <= 1 / 0.5 and (np.diff(odd) >= 0).all()


def test_deals_born_in_view_like_the_rest_leave_the_new_deals_as_the_curve_says():
    """When the deals already under way when the history began behave as the ones born in view
    (both won after 5-40 days), the scale is 1 wherever a new deal can win, and the forecast
    of new deals barely moves."""
    crm = _crm(np.random.default_rng(6), imported=1500, born=1200, born_win_days=(5, 40))
    scale = inputs.new_deal_scale(crm, TODAY)
    assert scale is not None
    assert np.abs(scale[10:200] - 1.0).max() < 0.15, scale[10:200:10].round(2)


def test_a_crm_whose_every_deal_was_born_in_view_has_no_scale():
    """Every deal engaged on or after the first close the CRM records: the curve is theirs."""
    crm = _crm(np.random.default_rng(7), imported=0, born=1200, born_win_days=(5, 40))
    first = crm.deals["engage_date"].idxmin()
    crm.deals.loc[first, ["closed_on", "status"]] = crm.deals.loc[first, "engage_date"], "lost"
    assert inputs.new_deal_scale(crm, TODAY) is None
    assert inputs.arrivals(crm, TODAY).won_scale is None


def test_a_scale_that_falls_with_age_never_makes_a_stretch_win_less_than_nothing():
    """The scale is the pool's; a group's curve times it can fall with age (here the quick
    group's wins all come by day 9, and the scale drops from 5 to 0.1 at day 30), and counted
    as a falling chance a week would expect fewer than no wins (the study's first run stopped
    on it). Kept a chance that never falls: every period's new revenue is drawn and none is
    negative, paced or not."""
    rng = np.random.default_rng(2)
    days = np.r_[rng.uniform(5, 9, 2000), rng.uniform(60, 90, 100)].astype(int)
    groups = np.r_[["quick"] * 2000, ["slow"] * 100]
    km = KaplanMeier.fit(days, np.ones(len(days), bool), groups, won=np.ones(len(days), bool))
    arrivals = Arrivals(per_week=30.0, values=np.r_[np.full(50, 100.0), np.full(50, 5000.0)],
                        win_rate=0.5, groups=np.r_[["quick"] * 50, ["slow"] * 50],
                        won_scale=np.r_[np.full(30, 5.0), np.full(300, 0.1)])  # fmt: skip
    nobody = pd.DataFrame(
        {"value": [0.0], "win_prob": [0.0], "age": [1.0], "timing_group": ["quick"]}
    )
    periods, _ = calendar(pd.Timestamp("2024-02-14"))  # weeks, months, quarters
    pace = QuarterPace((0.6, 0.9, 1.5), quarters=3).clock(pd.Timestamp("2024-02-14"))
    for clock in (None, pace):
        fc = simulate(nobody, km, periods, scenarios=500, seed=0, arrivals=arrivals, pace=clock)
        assert (fc.table["from_new"] >= 0).all() and (fc.table["p10"] >= 0).all()


def test_bands_saved_with_the_time_any_close_takes_draw_new_deals_unscaled():
    """The scale is measured against the "km" curve; a forecast whose saved bands time wins by
    any close (files from before that choice was dropped) draws new deals as the curve says."""
    arrivals = inputs.arrivals(CRM, TODAY)
    nobody = pd.DataFrame({"value": [0.0], "win_prob": [0.0], "age": [1.0], "timing_group": ["a"]})
    periods = Periods(names=("60 days", "200 days"), kind=("horizon", "horizon"),
                      start=np.zeros(2, np.int64), end=np.array([60, 200]))  # fmt: skip

    def new(bands: Bands, a) -> np.ndarray:
        fc = forecast._draw(CRM, TODAY, nobody, periods, bands, 500, 3, arrivals=a)
        return fc.table["from_new"].to_numpy()

    unscaled = replace(arrivals, won_scale=None)
    old = Bands(timing="km-any")
    assert np.array_equal(new(old, arrivals), new(old, unscaled))
    assert not np.allclose(new(Bands(), arrivals), new(Bands(), unscaled))
