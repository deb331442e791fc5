"""The command line's pipeline commands: `train`, `score`, `forecast`, `deal`, `digest`, `serve`,
`morning` and `hygiene`. Each calls the one writer or reads its saved run (`bot.services`), then prints.
"""

from __future__ import annotations

import argparse
import json
import os

from bot import ledger
from bot.cli_data import (
    artifacts_of,
    channel_of,
    configure_logging,
    db_path_of,
    db_with_deals,
    read_run,
    services_of,
    settings_of,
)
from bot.preflight import check_truth, open_db
from bot.settings import Scope
from dataset import database, deal_history
from dataset.demo import write_demo
from dataset.ingest import ingest_files


def cmd_train(args: argparse.Namespace) -> int:
    if args.truth is not None:
        check_truth(args.truth)
    db_with_deals(args)
    refresher = services_of(args).refresher
    refresher.train(args.cutoffs, truth=args.truth, say=print)
    if args.backtest:
        refresher.backtest(say=print)
    return 0


def cmd_score(args: argparse.Namespace) -> int:

    from bot import terminal

    db_with_deals(args)
    services = services_of(args)
    say = (lambda _: None) if args.json else print
    done = services.refresher.refresh(
        say, as_of=args.as_of, explain_top=args.explain_top, force=True
    )
    saved = services.reader.run(done.run_id)
    services.reader.ensure_reasons(saved, saved.scores["deal_id"].head(5).tolist())
    top = saved.scores.head(5)
    if args.json:
        print(json.dumps(terminal.score_json(saved, top), indent=2))
        return 0
    print(f"\ntop {len(top)} by value at risk:")
    for line in terminal.score_lines(top):
        print(f"  {line}")
    return 0


def cmd_forecast(args: argparse.Namespace) -> int:

    from bot import terminal

    reader, saved = read_run(args)
    groups = terminal.breakdown(saved, args.by) if args.by else []
    whole = saved.forecast(Scope("all"))
    parts = [(scope, saved.forecast(scope)) for scope in groups]
    odds = terminal.target_odds(saved, [Scope("all"), *groups], args.target)
    records = (
        [(s, reader.track_record(s, saved.as_of)) for s in [Scope("all"), *groups]]
        if args.accuracy
        else []
    )
    if args.json:
        out = terminal.forecast_json(saved, whole, parts, odds)
        if records:
            out["track_record"] = {str(s): terminal.track_json(r) for s, r in records}
        print(json.dumps(out, indent=2))
        return 0
    for line in terminal.forecast_lines(saved, whole, parts, args.by):
        print(line)
    from bot.target_text import calls_text, categories_text, odds_text, sources_text

    for (scope, quarter), o in odds.items():
        print(f"{scope.label}: {odds_text(o, quarter).replace('*', '')}")
    this = str(whole.quarter()["period"])
    from bot import calls

    made = calls_text(calls.latest(saved.db, this, "all"), float(whole.quarter()["p50"]))
    if made:
        print(made.replace("*", ""))
    sources = sources_text(whole.quarter(), whole.open_deals, whole.new_per_week, this,
                           saved.as_of)  # fmt: skip
    if sources:
        print(sources.replace("*", ""))
    split, basis = saved.categories(Scope("all"), this)
    for line in categories_text(split, this, basis).replace("*", "").splitlines():
        print(line.strip("_"))
    from forecasting.chart import fan_chart

    args.out.mkdir(parents=True, exist_ok=True)
    key = (Scope("all"), this)
    line = odds[key].target if key in odds else args.target  # a run older than its grids
    png = fan_chart(whole.table, whole.won, whole.as_of, line)
    (args.out / "forecast.png").write_bytes(png)
    whole.table.to_csv(args.out / "forecast.csv", index=False)
    from bot.listeners.commands import forecast_reply
    from bot.preview import preview_png

    # what `/forecast` would post for the whole company, as Slack shows an upload with a comment
    title, comment, chart = forecast_reply(reader, saved, Scope("all"), this)
    reply = {"text": comment, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": comment}},
        {"type": "image", "image_url": "chart", "alt_text": title,
         "title": {"type": "plain_text", "text": title}}]}  # fmt: skip
    (args.out / "forecast_reply.png").write_bytes(preview_png(reply, images={"chart": chart}))
    written = [
        args.out / "forecast.png",
        args.out / "forecast.csv",
        args.out / "forecast_reply.png",
    ]
    if args.movement:
        from bot.target_text import movement_lines
        from forecasting.waterfall import waterfall

        moved = saved.movements(Scope("all"), this)
        for text in movement_lines(moved, this, saved.as_of):
            print(text.replace("*", ""))
        if moved is not None:
            title = f"{this}, all teams: what moved since {moved[1].since.date()}"
            (args.out / "movement.png").write_bytes(waterfall(moved[1], title))
            written.append(args.out / "movement.png")
    if records:
        from bot.track_text import accuracy_lines

        this_quarter = str(whole.quarter()["period"])
        for scope, record in records:
            for text in accuracy_lines(record, scope.label, this_quarter):
                print(text.replace("*", ""))
    print(f"written: {', '.join(str(p) for p in written)}")
    return 0


def cmd_deal(args: argparse.Namespace) -> int:
    """What `/deal` answers, in the terminal (a leader's view: every deal)."""
    from bot import terminal
    from bot.listeners.commands import deal_detail
    from bot.replies import closed_reply, not_found_reply, several_reply

    reader, saved = read_run(args)
    query = " ".join(args.query)
    found = saved.lookup(query, Scope("all"))
    if found.closed is not None:
        message = closed_reply(found.closed)
    elif found.several is not None:
        message = several_reply(query, found.several)
    elif found.deal is None:
        message = not_found_reply(query, found.suggestions)
    else:
        message = deal_detail(reader, saved, found.deal)
    print(terminal.plain(message))
    return 0 if found.deal is not None or found.closed is not None else 1


def cmd_digest(args: argparse.Namespace) -> int:

    from bot.blocks import digest_message
    from bot.digest_text import render
    from bot.home import RISK_LEVELS, HomeState
    from bot.home_tabs import scope_view
    from bot.mentions import mentions_of
    from bot.morning import compared_with, compose
    from bot.preview import preview_png
    from dataset.money import money

    settings, presets = settings_of(args)
    channel = channel_of(settings, args.channel) if args.channel else None
    db_path = db_path_of(args)
    # the README's first run (no --db, no $REVBOT_DB) and --demo make the database; a database
    # named explicitly must exist
    named = args.db is not None or bool(os.environ.get("REVBOT_DB"))
    db = open_db(db_path, create=args.demo or not named)
    no_source = settings.exports_folder is None and settings.crm is None  # else the refresh loads
    if args.demo or (deal_history.latest_as_of(db) is None and no_source):
        demo_dir = args.out / "demo-crm"
        write_demo(demo_dir)
        print(f"database empty: loading the demo CRM exports written to {demo_dir}/")
        results = ingest_files(db, [demo_dir, demo_dir / "exports"])
        imported = [r for r in results if r.status == "imported"]
        print(
            f"imported {len(imported)} files: {sum(r.rows_read for r in imported)} rows read = "
            f"{sum(r.rows_accepted for r in imported)} accepted + "
            f"{sum(r.rows_set_aside for r in imported)} set aside"
        )
    services = services_of(args, settings, presets)
    refreshed = services.refresher.refresh(print)  # the configured exports folder, if any
    reader = services.reader
    saved = reader.run(refreshed.run_id)
    # the run's own numbers, as the digest below gives them (an open deal without an amount is
    # valued as the run values it, not at nothing)
    print(
        f"pipeline loaded: {len(saved.scores):,} open deals, value "
        f"{money(float(saved.scores['value'].fillna(0).sum()))}, as of {saved.as_of}"
    )
    if channel is not None:  # that channel's digest as it would be posted now
        last = ledger.last_posted_run(reader.db(), channel.id, "9999-12-31")
        previous, repeat = compared_with(reader, saved.run_id, last)
        scope, top, min_risk = channel.scope, channel.top, channel.min_risk
    else:
        other = reader.previous_run(saved.run_id)
        previous, repeat = (other["run_id"] if other else None), not refreshed.new_run
        scope, top, min_risk = Scope("all"), args.top, args.min_risk
    digest = compose(
        reader, saved, scope=scope, top=top, min_risk=min_risk, previous_run=previous,
        channel_id=channel.id if channel else None, notes=refreshed.problems, repeat=repeat,
    )  # fmt: skip
    # the Slack message as it would be posted (owners @-mentioned from the roster); the terminal
    # digest keeps plain names
    message = digest_message(digest, mentions=mentions_of(settings.roster))
    text = render(digest)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "digest.txt").write_text(text, encoding="utf-8")
    (args.out / "digest.json").write_text(json.dumps(message, indent=2), encoding="utf-8")
    (args.out / "digest.png").write_bytes(preview_png(message))
    # the scope's App Home dashboard as a leader (or the channel's members) would open it
    home = scope_view(
        reader, saved, scope, HomeState(min_risk=int(min_risk) if min_risk in RISK_LEVELS else 0)
    )
    (args.out / "home.png").write_bytes(preview_png(home))
    written = [args.out / "digest.txt", args.out / "digest.json", args.out / "digest.png",
               args.out / "home.png"]  # fmt: skip
    if args.json:
        print(json.dumps(message, indent=2))
        return 0
    print()
    print(text)
    print(f"written: {', '.join(str(p) for p in written)} (Block Kit JSON, a picture of it and "
          "of the App Home dashboard)")  # fmt: skip
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.serve import serve

    configure_logging(args.verbose)
    settings, presets = settings_of(args)
    return serve(
        settings,
        presets,
        db_path=args.db or database.default_db_path(),
        artifacts=artifacts_of(args),
        host=args.host,
        port=args.port,
        scheduler=not args.no_scheduler,
    )


def cmd_morning(args: argparse.Namespace) -> int:
    from bot.serve import morning_now

    configure_logging()
    settings, presets = settings_of(args)
    outcomes = morning_now(
        settings, presets, args.db or database.default_db_path(), artifacts_of(args),
        verbose=args.verbose,
    )  # fmt: skip
    for o in outcomes:
        print(f"{o.channel} {o.digest_date}: {o.status}" + (f" ({o.detail})" if o.detail else ""))
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def cmd_hygiene(args: argparse.Namespace) -> int:
    """The hygiene rules the saved run's deals broke (a reader: nothing is evaluated here)."""
    from bot.config import SetupError
    from bot.hygiene_text import report

    reader, saved = read_run(args)
    rules = saved.hygiene_rules()
    if rules.empty:
        raise SetupError(
            f"score run #{saved.run_id} was saved before revbot checked deal hygiene: make a new "
            "run with `revbot score`, then ask again"
        )
    flags = saved.flags(rule=args.rule)
    for line in report(saved.run, rules, flags, args.limit, reader.settings.hygiene, args.rule):
        print(line)
    return 0
