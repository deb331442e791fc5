"""The chance of making a target, in words (issue 14): one sentence shared by the digest, the
/forecast reply and the CLI, so that every surface says the same. Pure."""

from __future__ import annotations

from dataset.money import chance, money, plural
from forecasting.categories import DOUBTED, FAVOURED, Rollup
from forecasting.movement import Movement
from forecasting.targets import Odds


def chance_text(c: float) -> str:
    """The chance of a target, by the rule every chance is shown by (`dataset.money.chance`)."""
    return chance(c)


def odds_text(o: Odds, quarter: str, currency: str | None = None) -> str:
    """ "Chance of making 2025-Q1: 34% (P50 $1.31M of the $1.50M target, $190k short); pipeline
    coverage 2.1x ($820k open and expected to close in the quarter, for $390k still to win)"."""

    def cash(x) -> str:
        return money(x, currency)

    if o.p50 >= o.target:
        where = f"P50 {cash(o.p50)}, at or above the {cash(o.target)} target"
    else:
        where = f"P50 {cash(o.p50)} of the {cash(o.target)} target, {cash(o.gap)} short"
    text = f"*Chance of making {quarter}: {chance_text(o.chance)}* ({where})"  # mrkdwn bold
    left = o.target - o.won
    if left <= 0:
        return text + f"; the target is already won ({cash(o.won)} so far)"
    if o.coverage is not None and o.basis == "open":
        text += (f"; pipeline coverage {o.coverage:.1f}x ({cash(o.pipeline)} open, all of it: the "
                 f"CRM gives open deals no close date, for {cash(left)} still to win)")  # fmt: skip
    elif o.coverage is not None:
        text += (f"; pipeline coverage {o.coverage:.1f}x ({cash(o.pipeline)} open and expected "
                 f"to close in the quarter, for {cash(left)} still to win)")  # fmt: skip
    return text


def sources_text(row, open_deals: int, new_per_week: float | None, quarter: str, as_of: str,
                 currency: str | None = None) -> str | None:  # fmt: skip
    """Where the quarter's revenue still to come is expected from (`row`: the quarter's row of
    a saved forecast; its means, not the P50): the deals open on the run's day `as_of` and deals
    not yet in the pipeline, with the pace of new deals the forecast drew. A forecast call asks
    how much of the number rests on pipeline nobody has created yet, and on what pace (MavenTech's
    last quarter of 2017 engaged half the deals of the two before, and the forecast carries that
    pace forward). None when nothing is left to come."""
    from forecasting.inputs import ARRIVAL_WEEKS

    pipe, new = float(row["from_pipeline"]), float(row["from_new"])
    if not (pipe > 0 or new > 0):  # NaN too
        return None

    def cash(x) -> str:
        return money(x, currency)

    text = (f"*Still to come in {quarter}*, on average: {cash(pipe)} from the "
            f"{plural(int(open_deals), 'deal')} open on {as_of} and {cash(new)} from deals not "
            "yet in the pipeline")  # fmt: skip
    if new_per_week is None:  # a run saved before the pace was kept
        return text + "."
    if new_per_week <= 0:  # none new, or none with a value to go by
        return (
            text + f" (expecting none: the last {ARRIVAL_WEEKS} weeks give no new deal to go by)."
        )
    rate = f"{new_per_week:,.0f}" if new_per_week >= 10 else f"{new_per_week:.1f}"
    return text + (f" (expecting {rate} new deals a week, the pace of the last {ARRIVAL_WEEKS} "
                   "weeks).")  # fmt: skip


def categories_text(r: Rollup, quarter: str, basis: str, currency: str | None = None) -> str:
    """The quarter by forecast category beside the model, then the deals where they disagree
    (mrkdwn; deal names made inert)."""
    from bot.blocks import short

    def cash(x) -> str:
        return money(x, currency)

    which = (f"deals closing in {quarter}" if basis == "quarter"
             else "every open deal: the CRM gives open deals no close date")  # fmt: skip
    parts = [f"won {cash(r.won)}"] + [
        f"{row['category'].lower()} {cash(row['value'])} ({plural(row['deals'], 'deal')}, model "
        f"{cash(row['expected'])})"
        for row in r.rows
        if row["deals"]  # an empty category says nothing (the rest still add up)
    ]
    lines = [f"*By forecast category* ({which}): " + " · ".join(parts)]
    if r.mapped:
        lines.append(f"_{plural(r.mapped, 'deal')} without a category in the CRM, mapped from "
                     "the stage._")  # fmt: skip

    def names(frame) -> str:
        shown = [f"{short(row['account'] if isinstance(row['account'], str) else row['deal_id'])} "
                 f"{cash(row['value'])} (win {chance(row['win_prob'])})"
                 for _, row in frame.head(5).iterrows()]  # fmt: skip
        more = f", +{len(frame) - 5} more" if len(frame) > 5 else ""
        return ", ".join(shown) + more

    if len(r.doubted):
        lines.append(f"Commit deals the model gives under {DOUBTED:.0%}: {names(r.doubted)}")
    if len(r.favoured):
        lines.append(f"Pipeline deals the model gives over {FAVOURED:.0%}: {names(r.favoured)}")
    return "\n".join(lines)


def calls_text(calls: list[dict], p50: float, currency: str | None = None) -> str:
    """Each caller's latest call beside the model's P50 (names are the roster's, made inert)."""
    from bot.blocks import short

    if not calls:
        return ""
    shown = [
        f"{short(c['caller'])} {money(c['amount'], currency)} "
        f"({'above' if c['amount'] > p50 else 'below' if c['amount'] < p50 else 'at'} the "
        f"model's P50; called {str(c['made_at'])[:10]})"
        for c in calls
    ]
    return "*Calls*: " + " · ".join(shown)


def movement_text(m: Movement, quarter: str, currency: str | None = None) -> str:
    """One line: the pipeline then and now, and each part that moved (they add up)."""

    def signed(x: float) -> str:
        return ("+" if x >= 0 else "-") + money(abs(x), currency)

    which = (f"open deals closing in {quarter}" if m.basis == "quarter"
             else "every open deal: the CRM gives open deals no close date")  # fmt: skip
    moved = [f"{r['part']} {signed(r['value'])} ({plural(int(r['deals']), 'deal')})"
             for _, r in m.parts.iterrows() if r["deals"]]  # fmt: skip
    head = (f"*Since {m.since.date()}* ({which}): {money(m.before, currency)} → "
            f"{money(m.after, currency)} ({signed(m.change)})")  # fmt: skip
    return head + (": " + " · ".join(moved) if moved else ": nothing moved")


def movement_lines(moved: tuple[Movement, Movement] | None, quarter: str, until) -> list[str]:
    """Since last week and since the quarter began (one line when they start the same day)."""
    if moved is None:
        return [f"No earlier pipeline to compare with: the history here begins on {until}."]
    return list(dict.fromkeys(movement_text(m, quarter) for m in moved))
