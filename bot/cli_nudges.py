"""`revbot nudges`: what the nudges did (per rule: sent, done, snoozed, and how often people
pressed "Not useful", so a team can tune or drop a rule), and `--preview`, a picture of the nudge
the saved run's worst deal would get. A reader: nothing is sent or evaluated here."""

from __future__ import annotations

import argparse

from bot import nudge_ledger
from bot.cli_data import read_run


def cmd_nudges(args: argparse.Namespace) -> int:
    from bot.nudges import not_useful_rates

    reader, saved = read_run(args)
    config = reader.settings.nudges
    if not config.enabled:
        print("nudges are off ([nudges] enabled = false in revbot.toml)")
    elif not reader.settings.roster:
        print("nudges go to the roster's people: none is sent without [roster] in revbot.toml")
    else:
        print(f"nudges: at most {config.per_day} a day a person, none between "
              f"{config.quiet[0]} and {config.quiet[1]} their time; risk from {config.risk:.0f}")  # fmt: skip
    rates = not_useful_rates(nudge_ledger.history(reader.db()))
    if rates.empty:
        print("no nudge sent yet")
    else:
        print(f"\n{'rule':<20} {'sent':>6} {'done':>6} {'snoozed':>8} {'not useful':>11}")
        for r in rates.itertuples():
            print(f"{r.rule:<20} {r.sent:>6} {r.done:>6} {r.snoozed:>8} "
                  f"{r.not_useful:>6} ({r.rate:.0%})")  # fmt: skip
        print("\n'not useful' is the share of a rule's nudges people marked so: a rule most "
              "find useless is one to tune ([hygiene] thresholds) or switch off ([hygiene] off).")  # fmt: skip
    if args.preview:
        from bot.nudges import nudge_message
        from bot.preview import preview_png

        flags = saved.flags()
        scores = saved.scores.set_index("deal_id")
        if flags.empty:
            print("no deal breaks a hygiene rule in this run: no nudge to preview")
            return 0
        worst = (
            flags.assign(v=flags["deal_id"].map(scores["value_at_risk"]))
            .sort_values("v", ascending=False, kind="stable")["deal_id"]
            .iloc[0]
        )
        rules = flags[flags["deal_id"] == worst][["deal_id", "rule", "detail"]]
        message = nudge_message(0, saved.deal(worst), rules)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "nudge.png").write_bytes(preview_png(message))
        print(f"written: {args.out / 'nudge.png'} (the nudge the deal with most value at risk "
              "breaking a rule would get)")  # fmt: skip
    return 0
