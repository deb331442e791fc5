"""World B: a HubSpot portal fed by inbound demand, exported weekly with "Export all deals".

Why: a second known-truth pipeline whose mechanics differ from World A and from the demo: deals
are not lost stage by stage; the buyer decides on a decision day driven by engagement, and many
deals simply go quiet and are bulk-closed at quarter ends. The closed deals' win rate is then well
above the win chance of the deals still open (the quick wins close first), a trap real pipelines
have.

Mechanics (days from go-live, day 0; exports every Wednesday from day 7):
- Deals are created on weekdays by inbound demand: a rising base rate plus campaign bursts every
  5-8 weeks that decay over about a week. HubSpot's default sales pipeline: Appointment Scheduled,
  Qualified To Buy, Presentation Scheduled, Decision Maker Bought-In, Contract Sent; most deals start
  at the first stage, some later; an advance jumps 1, 2 or 3 stages (skips), never back.
- Each deal has a hidden engagement, high or low (more often high for Existing Business). Engaged
  buyers log activity on more weekdays (0.5 vs 0.18), advance faster and decide sooner.
- Each day at most one of: go quiet (ghosted deals only), decide, advance; weekends x0.1. The
  decision (daily chance by stage x engagement x cause x plan) closes the deal: won with chance
  sigmoid(stage + engagement + cause + plan + deal type + rep). A stage is held 8 days at least.
- A quiet deal logs nothing, never advances or decides; on the last weekday of each quarter the
  admin bulk-closes every quiet deal as lost.
- Causes of risk, drawn per deal, each with a footprint and a real effect: none (42%); ghosted
  (30%: goes quiet with daily chance 1/8, and so is lost; footprint: Last Activity Date freezes);
  pushed (11%: from age 8 days, daily chance 1/25 that the Close Date moves to the end of the next
  month; decides at half the pace, win odds x0.4; footprint: Close Date changes); discounted (10%:
  once in Decision Maker Bought-In or later, daily chance 1/15 that the Amount is cut by 10-30%
  before signature; win odds x0.5, a lower final value; footprint: Amount falls); reassigned (7%:
  from age 8 days, daily chance 1/40 that the deal is handed to another rep; decides at 0.7 the
  pace, win odds x0.37; footprint: Deal owner changes).
- Cosmetic: Next step blank on 20% of stage entries; Close Date set 1-3 months out at creation.
- With these settings the deals closed so far win about 62% while the deals open at an export have
  a true mean near 44% (it swings with the quarter-end clean-ups).

Simplified so that the truth is exact: a stage is held 8 days (only a decision or going quiet can
happen in them), at most one of quiet / decide / advance a day, weekends scale them alike, pushes,
cuts and hand-overs change no hazard (the cause carries the effect from the start), quiet is for
good.

Truth: `p_true` = P(won | every export so far). Hidden: cause, engagement, and whether a ghosted
deal has gone quiet. A forward filter over 12 hypotheses (6 cause states x 2 engagements) weighs
each by what the exports show (stage changes and their day, the week's latest activity, Close Date,
Amount and owner changes, survival through each quarter-end clean-up); each hypothesis's win chance
is exact (a monotone chain solved backwards). `cause_visible`: ghosted once quiet and silent 10+
days; the others once their change shows. `World.check` keeps each cause's posterior and the win
chance given the full hidden state.

Export format: every field quoted, CRLF, datetimes "YYYY-MM-DD HH:MM", numeric Record IDs, no footer,
file `hubspot-crm-exports-all-deals-YYYY-MM-DD.csv`; every deal ever created is in it. Confirmed in
public material: the file name, Record ID, Deal Name, Deal Stage, Pipeline, Close Date, Deal owner,
Amount, Create Date, Last Activity Date, Deal probability, Forecast category, Next step, Deal Type,
Associated Company, Last Modified Date, Date entered current stage (Professional and up), and that
HubSpot's default close date is the end of the creation month (here reps set it 1-3 months out).
Guessed: Deal probability written as a 0-1 fraction (the property's stored form), the forecast
category values, CRLF line ends and quoting every field.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from dataset.worlds import common
from dataset.worlds.common import DWELL, NEVER, World, activity_code, activity_factor

export_days, outcomes, truth_at = common.export_days, common.outcomes, common.truth_at  # the API

STAGES = np.array(["Appointment Scheduled", "Qualified To Buy", "Presentation Scheduled",
                   "Decision Maker Bought-In", "Contract Sent", "Closed Won", "Closed Lost"])  # fmt: skip
WON, LOST = 5, 6
PROBABILITY = np.array(["0.2", "0.4", "0.6", "0.8", "0.9", "1", "0"])
FORECAST = np.array(["Pipeline", "Pipeline", "Best case", "Best case", "Commit", "Closed won",
                     "Not forecasted"])  # fmt: skip
CAUSES = np.array(["none", "ghosted", "pushed", "discounted", "reassigned"])
PRIOR = np.array([0.42, 0.30, 0.11, 0.10, 0.07])
P_HIGH = np.array([0.62, 0.82])  # chance of a highly engaged buyer: New / Existing Business
JUMP = np.array([0.75, 0.2, 0.05])  # an advance moves 1, 2 or 3 stages (capped at Contract Sent)
TAIL = np.cumsum(JUMP[::-1])[::-1]  # P(jump >= j)
ADVANCE, ALPHA = np.array([0.06, 0.02]), np.array([0.5, 0.18])  # per weekday: high / low
DECIDE = np.array([0.010, 0.015, 0.025, 0.04, 0.07])  # by stage
DECIDE_E, DECIDE_C = np.array([2.2, 0.25]), np.array([1.0, 1.0, 0.5, 1.0, 0.7])
BASE, LOGIT_S, LOGIT_E = 1.2, np.array([-0.6, -0.3, 0.0, 0.3, 0.5]), np.array([1.9, -2.1])
LOGIT_C = np.array([0.0, 0.0, -0.9, -0.7, -1.0])
GHOST, PUSH, CUT, HANDOVER, WEEKEND = 1 / 8, 1 / 25, 1 / 15, 1 / 40, 0.1
# plan, list amount, decision pace, win logit, share
PLANS = (("Starter", 4800, 1.25, 0.3, 0.5), ("Growth", 15000, 1.0, 0.0, 0.35),
         ("Enterprise", 48000, 0.7, -0.4, 0.15))  # fmt: skip
NEXT = np.array(["Book discovery call", "Confirm budget", "Demo with team", "Security review",
                 "Countersign"])  # fmt: skip
# filter hypotheses: cause x engagement (0 high, 1 low); the last two: ghosted and gone quiet
HYP_CAUSE, HYP_E = np.repeat([0, 2, 3, 4, 1, 1], 2), np.tile([0, 1], 6)
LIVE = np.arange(12) < 10
HHMM = np.array([f" {h:02d}:{m:02d}" for h in range(24) for m in range(60)])
HEADER = ("Record ID", "Deal Name", "Deal Stage", "Pipeline", "Amount", "Close Date", "Deal owner",
          "Associated Company", "Create Date", "Last Activity Date", "Last Modified Date",
          "Date entered current stage", "Deal probability", "Forecast category", "Next step",
          "Deal Type")  # fmt: skip


@dataclass(frozen=True)
class Config:
    """Size and span; exports are taken on Wednesdays from the first Wednesday on or after start."""

    deals: int = 6000
    weeks: int = 64
    seed: int = 1
    start: date = date(2024, 4, 3)
    reps: int = 10
    companies: int = 1500


def _col(j: int) -> np.ndarray:
    return np.array([p[j] for p in PLANS])


def _month_end(origin: date, days: np.ndarray, months: np.ndarray) -> np.ndarray:
    """The day (from origin) that ends the month `months` after the month of `days`."""
    start = np.datetime64(origin, "D")
    m = (start + days.astype("timedelta64[D]")).astype("datetime64[M]")
    end = (m + (months + 1).astype("timedelta64[M]")).astype("datetime64[D]")
    return (end - start).astype(int) - 1


def _cleanups(cal: common.Calendar, origin: date) -> set[int]:
    """The last weekday of each quarter: the admin bulk-closes the quiet deals."""
    dates = np.datetime64(origin, "D") + np.arange(len(cal.weekend)).astype("timedelta64[D]")
    next_weekday = dates + np.where(cal.weekday == 4, 3, 1).astype("timedelta64[D]")
    month = dates.astype("datetime64[M]")
    last = ~cal.weekend & (month != next_weekday.astype("datetime64[M]"))
    return set(np.flatnonzero(last & (month.astype(int) % 3 == 2)).tolist())


def _tables(plan, typ, skill):
    """Per deal x cause (5) x engagement (2) x stage (5): daily decision chance, win chance."""
    delta = DECIDE[None, None, None, :] * DECIDE_E[None, None, :, None]
    delta = delta * DECIDE_C[None, :, None, None] * _col(2)[plan][:, None, None, None]
    logit = BASE + LOGIT_S[None, None, None, :] + LOGIT_E[None, None, :, None]
    logit = (
        logit
        + LOGIT_C[None, :, None, None]
        + (_col(3)[plan] + 0.4 * typ + skill)[:, None, None, None]
    )
    return delta, 1 / (1 + np.exp(-logit))


def _values(delta, pi):
    """Per deal x live hypothesis x stage: the win chance after the dwell (the deal decides,
    advances or, if ghosted, goes quiet; solved from Contract Sent down), the daily chance it
    exits (decides or goes quiet) and the win chance if it exits, for the days left in a dwell."""
    d, p = delta[:, HYP_CAUSE[:10], HYP_E[:10]], pi[:, HYP_CAUSE[:10], HYP_E[:10]]  # (N, 10, 5)
    rate = d + np.where(HYP_CAUSE[:10] == 1, GHOST, 0.0)[None, :, None]
    keep = (1 - rate) ** 5 * (1 - rate * WEEKEND) ** 2  # no exit in the 7 days of a dwell
    settle = d * p / rate
    entered = np.zeros_like(d)  # the value on entering a stage, its dwell ahead
    P = np.zeros_like(d)
    for s in range(4, -1, -1):
        a = ADVANCE[HYP_E[:10]][None, :] * (s < 4)
        up = sum(q * entered[..., min(s + j, 4)] for j, q in enumerate(JUMP, 1))
        P[..., s] = (d[..., s] * p[..., s] + a * up) / (rate[..., s] + a)
        entered[..., s] = keep[..., s] * P[..., s] + (1 - keep[..., s]) * settle[..., s]
    return P, rate, settle


def generate(cfg: Config = Config()) -> World:
    """Simulate every deal to its close, filtering the truth from each week's export as it is
    taken. Deterministic: same config, same world."""
    rng = np.random.default_rng(cfg.seed)
    origin = cfg.start + timedelta(days=(2 - cfg.start.weekday()) % 7)
    K, N = cfg.weeks, cfg.deals
    exports = 7 * np.arange(1, K + 1)
    cal = common.Calendar(origin, 7 * K + 5000, WEEKEND)
    cleanup = _cleanups(cal, origin)
    days = np.arange(7 * K)
    demand = (1 + 0.5 * days / days[-1]) * ~cal.weekend[days]
    for b in np.cumsum(rng.integers(35, 57, 7 * K // 35 + 1)):  # campaigns: bursts of demand
        demand = demand * (1 + 2.5 * np.exp(-np.maximum(days - b, 0) / 6) * (days >= b))
    created = np.sort(rng.choice(days, N, p=demand / demand.sum()))
    plan = rng.choice(3, N, p=_col(4))
    typ = (rng.random(N) < 0.3).astype(int)
    rep = rng.integers(0, cfg.reps, N)
    skill = rng.normal(0, 0.3, cfg.reps)[rep]
    cause = rng.choice(5, N, p=PRIOR)
    eng = (rng.random(N) > P_HIGH[typ]).astype(int)  # 0 high, 1 low
    delta, pi = _tables(plan, typ, skill)
    P, drate, settle = _values(delta, pi)
    s0 = rng.choice(3, N, p=[0.72, 0.2, 0.08])
    amount = np.round(_col(1)[plan] * np.exp(rng.normal(0, 0.3, N)), -2)
    close_exp = _month_end(origin, created, rng.choice(3, N, p=[0.4, 0.4, 0.2]) + 1 + (plan == 2))

    # the deals' state (what the CRM shows, and hidden: quiet)
    stage, entry, quiet = s0.copy(), created.copy(), np.zeros(N, bool)
    done, won, close_day = np.zeros(N, bool), np.zeros(N, bool), np.full(N, NEVER)
    last_act, touched = np.full(N, -1), created.copy()  # touched: latest push, cut or hand-over
    owner, npush, cut = rep.copy(), np.zeros(N, int), np.zeros(N, bool)
    nxt = np.where(rng.random(N) < 0.2, -1, s0)
    # this week, for the filter: state at its start, the stage change, what was seen
    s_start, e_start, chg, chg_to = s0.copy(), created.copy(), np.full(N, -1), np.zeros(N, int)
    cut_start, owner_start = np.zeros(N, bool), rep.copy()
    seen_w, act_w = np.zeros((N, 3), bool), np.full(N, -1)  # a push, cut, hand-over this week
    W = np.zeros((N, 12))  # the filter: posterior of each hypothesis
    p_true, visible = np.full((K, N), np.nan, np.float32), np.zeros((K, N), bool)
    posterior, v_true = np.full((K, N, 5), np.nan, np.float32), np.full((K, N), np.nan, np.float32)
    fields = ("stage", "entry", "close", "amount", "owner", "act", "touched", "next")
    snap = {f: np.zeros((K, N), np.int32 if f == "amount" else np.int16) for f in fields}

    def filter_window(k, E):
        """Feed the week before export E to the filter, then the exact p_true of the open deals."""
        R = np.flatnonzero((created < E) & ~done)
        for d in range(E - 7, E):
            i = R[created[R] <= d]
            new, w = created[i] == d, cal.weight[d]
            moved = (chg[i] >= 0) & (d > chg[i])
            s = np.where(moved, chg_to[i], s_start[i])
            post = d >= np.where(moved, chg[i], e_start[i]) + DWELL
            ev, to = chg[i] == d, chg_to[i]
            dd = delta[i[:, None], HYP_CAUSE[None, :], HYP_E[None, :], s[:, None]] * LIVE
            a = (post & (s < 4))[:, None] * ADVANCE[HYP_E][None, :] * LIVE
            jump = np.where(to == 4, TAIL[np.clip(3 - s, 0, 2)], JUMP[np.clip(to - s - 1, 0, 2)])
            ghost = np.where(HYP_CAUSE == 1, GHOST, 0.0) * LIVE
            Wi = W[i]
            onset = Wi[:, 8:10] * np.where(ev, 0.0, GHOST * w)[:, None]
            Wi *= np.where(ev[:, None], a * jump[:, None] * w, 1 - w * (dd + a + ghost))
            Wi[:, 10:12] += onset
            p_high = P_HIGH[typ[i]][:, None]
            Wi[new] = (PRIOR[HYP_CAUSE] * LIVE * np.where(HYP_E == 0, p_high, 1 - p_high))[new]
            # pushes, cuts, hand-overs: none seen this week means none on any day one could be
            age_ok = ~new & (d >= created[i] + DWELL)
            could = (age_ok, ~new & (s >= 3) & ~cut_start[i], age_ok & (owner_start[i] == rep[i]))
            for col, (c, q) in enumerate(((2, PUSH), (3, CUT), (4, HANDOVER))):
                none_seen = could[col] & ~seen_w[i, col]
                Wi[:, c == HYP_CAUSE] *= np.where(none_seen, 1 - q * w, 1.0)[:, None]
            code = activity_code(d, act_w[i])
            alpha = ALPHA[HYP_E][None, :] * (not cal.weekend[d]) * np.ones((len(i), 1))
            f = activity_factor(np.repeat(code[:, None], 12, 1), alpha)
            Wi *= np.where(LIVE[None, :], f, (code != 2)[:, None])
            if d in cleanup:  # every quiet deal was closed today: one still open is not quiet
                Wi[:, ~LIVE] = 0
            W[i] = Wi / Wi.sum(axis=1, keepdims=True)
        for col, c in enumerate((2, 3, 4)):  # a change seen this week: only its cause explains it
            W[np.ix_(R, c != HYP_CAUSE)] *= ~seen_w[R, col][:, None]
        W[R] /= W[R].sum(axis=1, keepdims=True)
        s = stage[R][:, None, None]
        nwd, nwe = cal.counts(np.full(len(R), E), entry[R] + DWELL - 1)  # days left in the dwell
        rate = np.take_along_axis(drate[R], s, 2)[..., 0]
        keep = (1 - rate) ** nwd[:, None] * (1 - rate * WEEKEND) ** nwe[:, None]
        V = keep * np.take_along_axis(P[R], s, 2)[..., 0]
        V += (1 - keep) * np.take_along_axis(settle[R], s, 2)[..., 0]
        p_true[k, R] = (W[R, :10] * V).sum(axis=1)
        posterior[k, R] = W[R] @ (HYP_CAUSE[:, None] == np.arange(5)[None, :])
        h = np.where(
            quiet[R], 10 + eng[R], np.argmax(HYP_CAUSE[None, :10] == cause[R, None], 1) + eng[R]
        )
        v_true[k, R] = np.where(quiet[R], 0.0, V[np.arange(len(R)), np.minimum(h, 9)])

    t, act, export_set = 0, np.zeros(0, int), set(exports.tolist())
    while t <= 7 * K or len(act):
        if t in export_set:  # taken this morning: nothing of day t is in it
            k = t // 7 - 1
            filter_window(k, t)
            silent = t - np.where(last_act >= 0, last_act, created) >= 10
            cases = [cause == 1, cause == 2, cause == 3, cause == 4]
            visible[k] = np.select(cases, [quiet & silent, npush > 0, cut, owner != rep], False)
            state = (stage, entry, close_exp, amount, owner, last_act, touched, nxt)
            for f, a in zip(fields, state, strict=True):
                snap[f][k] = a
            s_start[:], e_start[:], cut_start[:], owner_start[:] = stage, entry, cut, owner
            chg[:], seen_w[:], act_w[:] = -1, False, -1
        new = np.flatnonzero(created == t) if t < 7 * K else np.zeros(0, int)
        i = act[~quiet[act]]
        act = np.r_[act, new]
        s, c, e, w = stage[i], cause[i], eng[i], cal.weight[t]
        post = t >= entry[i] + DWELL
        p = np.column_stack([GHOST * (c == 1), delta[i, c, e, s], ADVANCE[e] * post * (s < 4)])
        ev = common.draw(rng, p * w)  # 0 goes quiet, 1 decides, 2 advances, 3 nothing
        quiet[i[ev == 0]] = True
        x = i[ev == 1]
        won[x] = rng.random(len(x)) < pi[x, cause[x], eng[x], stage[x]]
        done[x], close_day[x], entry[x], stage[x] = True, t, t, np.where(won[x], WON, LOST)
        x = i[ev == 2]
        to = np.minimum(stage[x] + rng.choice(3, len(x), p=JUMP) + 1, 4)
        chg[x], chg_to[x], stage[x], entry[x] = t, to, to, t
        nxt[x] = np.where(rng.random(len(x)) < 0.2, -1, to)
        y, sy = i[ev >= 2], s[ev >= 2]  # still open and worked
        u = rng.random((len(y), 3)) / w
        age_ok = t >= created[y] + DWELL
        xp = y[(cause[y] == 2) & age_ok & (u[:, 0] < PUSH)]
        close_exp[xp] = _month_end(origin, np.maximum(close_exp[xp], t), np.ones(len(xp), int))
        npush[xp] += 1
        xc = y[(cause[y] == 3) & (sy >= 3) & ~cut[y] & (u[:, 1] < CUT)]
        amount[xc] = np.round(amount[xc] * (1 - rng.uniform(0.1, 0.3, len(xc))), -2)
        cut[xc] = True
        xh = y[(cause[y] == 4) & age_ok & (owner[y] == rep[y]) & (u[:, 2] < HANDOVER)]
        owner[xh] = (rep[xh] + rng.integers(1, cfg.reps, len(xh))) % cfg.reps
        for col, xs in enumerate((xp, xc, xh)):
            seen_w[xs, col], touched[xs] = True, t
        if not cal.weekend[t]:
            live = act[~quiet[act]]
            hit = live[rng.random(len(live)) < ALPHA[eng[live]]]
            last_act[hit], act_w[hit] = t, t
        if t in cleanup:
            x = act[quiet[act] & ~done[act]]
            done[x], close_day[x], entry[x], stage[x] = True, t, t, LOST
        act = act[~done[act]]
        t += 1

    ids = (10_900_000_000 + np.cumsum(rng.integers(1, 4000, N))).astype(str)
    names = np.array(common.people(rng, cfg.reps))
    company = np.array(common.companies(rng, cfg.companies))[rng.integers(0, cfg.companies, N)]
    kind = np.where(typ == 1, "Existing Business", "New Business")
    static = {"names": names, "company": company, "plan": _col(0)[plan], "type": kind}
    stamps = [datetime.combine(origin + timedelta(days=int(d)), datetime.min.time())
              + timedelta(minutes=int(rng.integers(480, 600))) for d in exports]  # fmt: skip
    return World(cfg, origin, exports, stamps, ids, CAUSES[cause], created, won, close_day,
                 amount, p_true, visible, snap, static, {"posterior": posterior, "v_true": v_true})  # fmt: skip


def _stamp(origin: date, minutes: np.ndarray) -> np.ndarray:
    """Minutes from origin as HubSpot writes datetimes, "YYYY-MM-DD HH:MM"; blank where < 0."""
    day, mod = np.divmod(np.maximum(minutes, 0), 1440)
    return np.where(minutes < 0, "", np.char.add(common.date_text(origin, day, "iso"), HHMM[mod]))


def export_frame(world: World, day: date) -> pd.DataFrame:
    """ "Export all deals" as downloaded on `day`: every deal created before it, newest first."""
    k = common.export_index(world, day)
    E, st = world.exports[k], world.static
    sn = {f: a[k].astype(np.int64) for f, a in world.snap.items()}
    r = np.flatnonzero(world.created < E)[::-1]
    c = world.created[r].astype(np.int64)

    def at(days, salt):  # a time of day, 8:00 to 17:59, fixed per deal and day
        return days * 1440 + 480 + common.hashed(r, days, salt, 600)

    made, stage, entry, act, nxt = (
        at(c, 1),
        sn["stage"][r],
        sn["entry"][r],
        sn["act"][r],
        sn["next"][r],
    )
    entered = np.where(entry == c, made, np.maximum(at(entry, 2), made))
    acted = np.where(act < 0, -1, np.maximum(at(act, 3), made + 5))
    closing = np.where(stage >= WON, entered, sn["close"][r] * 1440 + made % 1440)
    modified = np.maximum.reduce([entered, acted, np.maximum(at(sn["touched"][r], 4), made)])

    def stamp(minutes):
        return _stamp(world.origin, minutes)

    cols = (
        world.deal_id[r],
        np.char.add(st["company"][r].astype(str), np.char.add(" - ", st["plan"][r].astype(str))),
        STAGES[stage],
        np.full(len(r), "Sales Pipeline"),
        sn["amount"][r].astype(str),
        stamp(closing),
        st["names"][sn["owner"][r]],
        st["company"][r],
        stamp(made),
        stamp(acted),
        stamp(modified),
        stamp(entered),
        PROBABILITY[stage],
        FORECAST[stage],
        np.where(nxt < 0, "", NEXT[np.maximum(nxt, 0)]),
        st["type"][r],
    )
    return pd.DataFrame(dict(zip(HEADER, cols, strict=True)))


def write(world: World, out: Path) -> list[Path]:
    """out/exports/hubspot-crm-exports-all-deals-<day>.csv per week, byte for byte as HubSpot
    gives it, and out/truth/{probabilities,deals}.csv."""
    out = Path(out)
    (out / "exports").mkdir(parents=True, exist_ok=True)
    paths = []
    for day in export_days(world):
        path = out / "exports" / f"hubspot-crm-exports-all-deals-{day.isoformat()}.csv"
        path.write_bytes(common.csv_bytes(HEADER, export_frame(world, day), "\r\n"))
        paths.append(path)
    return paths + common.write_truth(world, out)


def main(argv: list[str] | None = None) -> None:
    common.cli("inbound", Config, generate, write, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
