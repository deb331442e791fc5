"""What `revbot --help` says: each command's help line and its examples.

Kept apart from the parser so that the words can be read (and reviewed) in one place. A test
parses every example with the real parser and checks that every option of a command appears in
that command's examples.
"""

from __future__ import annotations

COMMON = """\
where things are (each command takes those it uses):
  --db FILE          the SQLite database (default: $REVBOT_DB, else ./revbot.db)
  --config FILE      revbot.toml: channels, roster, exports folder (default: $REVBOT_CONFIG,
                     else ./revbot.toml; none is fine)
  --artifacts DIR    the model and its reports (default: $REVBOT_ARTIFACTS, else ./artifacts)

first run (demo data, no Slack token; the digest goes to the terminal and to revbot-out/):
  revbot digest

your own CRM:
  revbot ingest exports/opportunities-2025-02-14.csv --db sales.db
  revbot sync --crm salesforce --db sales.db     (or read it directly; see `sync --help`)
  revbot digest --db sales.db
  revbot deal Acme --db sales.db

`revbot COMMAND --help` shows each command's options with examples.
"""

# each command: (help line, examples); every option of a command appears in its examples
EXAMPLES: dict[str, tuple[str, str]] = {
    "deal": (
        "explain one deal as /deal does: win probability, risk, reasons, next steps",
        """\
  revbot deal D0123                  a deal id (any case)
  revbot deal acme corp              part of an account name
  revbot deal D0123 --db sales.db --config revbot.toml --artifacts artifacts""",
    ),
    "ingest": (
        "import CRM CSV exports (files or folders) into the database",
        """\
  revbot ingest export.csv                        one file
  revbot ingest exports/ --db sales.db            every CSV in a folder, oldest first
  revbot ingest export.csv --as-of 2025-02-14     the day the export was taken
  revbot ingest export.csv --preset salesforce    force a column preset (else detected)
  revbot ingest export.csv --encoding cp1252      a file saved by Excel on Windows
  revbot ingest export.csv --config revbot.toml   with the presets and limits configured there""",
    ),
    "demo": (
        "write the demo CRM exports (the same files for the same options)",
        """\
  revbot demo                                   write revbot-demo/ and say how to load it
  revbot demo --load --db demo.db               write it and import it
  revbot demo --out /tmp/crm --deals 500 --seed 3
  revbot demo --daily 0 --no-weekly             the CRM's tables only, no history of exports""",
    ),
    "sync": (
        "read the CRM directly (Salesforce or HubSpot): what changed since the last sync, and "
        "on the first sync its history, imported like exports",
        """\
  revbot sync                          the CRM of [crm] kind in revbot.toml
  revbot sync --crm salesforce --dry-run   what would be read and imported; nothing written
  revbot sync --verbose                each day's import line too
  revbot sync --db sales.db --config revbot.toml
credentials come from the environment only, e.g. SALESFORCE_USERNAME, SALESFORCE_CONSUMER_KEY
and SALESFORCE_PRIVATE_KEY_FILE, or HUBSPOT_ACCESS_TOKEN (deploy/README.md)""",
    ),
    "syncs": (
        "list past CRM syncs, newest first: read, new, deleted, days imported",
        """\
  revbot syncs
  revbot syncs --limit 5 --db sales.db""",
    ),
    "imports": (
        "list the import log: each file, its rows read = accepted + set aside",
        """\
  revbot imports
  revbot imports --db sales.db""",
    ),
    "quarantine": (
        "show the rows set aside by imports, with the reason and the row as it was",
        """\
  revbot quarantine                         the first 50
  revbot quarantine --import-id 3 --limit 200
  revbot quarantine --db sales.db""",
    ),
    "train": (
        "evaluate on past cutoffs and train the win model (the refresh also retrains when due)",
        """\
  revbot train
  revbot train --cutoffs 6 --backtest        more cutoffs; also refit the forecast's band
  revbot train --truth demo/truth/probabilities.csv   generated data: compare with the truth
  revbot train --dask tcp://10.0.0.5:8786    on a Dask cluster (lightgbm.dask)
  revbot train --db sales.db --config revbot.toml --artifacts artifacts""",
    ),
    "score": (
        "score every open deal, forecast every scope and save the run the reports read",
        """\
  revbot score
  revbot score --as-of 2025-01-31           as the pipeline stood on that day
  revbot score --explain-top 500 --verbose  reasons for the top 500; show the model's tables
  revbot score --json | jq '.top[0]'        for scripts
  revbot score --dask tcp://10.0.0.5:8786   on a Dask cluster: the same scores
  revbot score --db sales.db --config revbot.toml --artifacts artifacts""",
    ),
    "forecast": (
        "the saved run's P10/P50/P90 revenue forecast: table, fan chart and CSV",
        """\
  revbot forecast                            revbot-out/forecast.png and forecast.csv
  revbot forecast --by region                each region's own forecast and share
  revbot forecast --by manager --run 12      an earlier score run
  revbot forecast --target 1500000 --out charts
  revbot forecast --movement                 what moved since last week and since the quarter began
  revbot forecast --accuracy                 closed quarters against the forecasts made of them
  revbot forecast --json                     for scripts
  revbot forecast --db sales.db --config revbot.toml --artifacts artifacts""",
    ),
    "digest": (
        "the main job: newest data in, rescore when new, the digest in the terminal and files",
        """\
  revbot digest                              demo data when the database is empty
  revbot digest --top 20 --min-risk 50       more deals, only those at risk 50 or more
  revbot digest --channel C0123ABCD          that configured channel's digest, offline
  revbot digest --demo --out /tmp/out        load the demo first; write files elsewhere
  revbot digest --json                       the Block Kit message, for scripts
  revbot digest --verbose                    also the model's evaluation tables
  revbot digest --db sales.db --config revbot.toml --artifacts artifacts""",
    ),
    "serve": (
        "run the Slack bot and its morning digests (Socket Mode if SLACK_APP_TOKEN is set, "
        "else HTTP at POST /slack/events); GET /healthz either way",
        """\
  SLACK_BOT_TOKEN=xoxb-... SLACK_APP_TOKEN=xapp-... revbot serve     Socket Mode
  SLACK_BOT_TOKEN=xoxb-... SLACK_SIGNING_SECRET=... revbot serve --host 0.0.0.0 --port 8080
  revbot serve --no-scheduler                answer commands, post no digests
  revbot serve --verbose                     debug logging
  revbot serve --db sales.db --config revbot.toml --artifacts artifacts""",
    ),
    "morning": (
        "run the morning job once now: newest export in, rescore, post every channel's digest",
        """\
  revbot morning                  e.g. from cron, instead of `serve`'s scheduler
  revbot morning --verbose        also the model's evaluation tables
  revbot morning --db sales.db --config revbot.toml --artifacts artifacts""",
    ),
    "hygiene": (
        "the saved run's deal hygiene: deals per broken rule ([hygiene] in revbot.toml), then the "
        "worst deals of each",
        """\
  revbot hygiene                             counts per rule, and each rule's worst 5 deals
  revbot hygiene --rule no_activity --limit 50    one rule's count and its worst 50 deals
  revbot hygiene --run 12                    an earlier score run
  revbot hygiene --db sales.db --config revbot.toml --artifacts artifacts""",
    ),
    "nudges": (
        "what the personal nudges did: per rule, sent, done, snoozed and marked not useful",
        """\
  revbot nudges                   each rule's not-useful rate, to tune or drop a rule
  revbot nudges --preview         also draw the nudge the worst deal would get (revbot-out/nudge.png)
  revbot nudges --preview --out pictures     the picture in another folder
  revbot nudges --db sales.db --config revbot.toml --artifacts artifacts""",
    ),
    "digests": (
        "list the digests posted (or claimed, or failed), newest first",
        """\
  revbot digests
  revbot digests --db sales.db""",
    ),
    "backup": (
        "a consistent copy of the database, safe while revbot runs (SQLite's online backup)",
        """\
  revbot backup /var/backups/revbot.db     e.g. nightly from cron
  revbot backup /var/backups/ --db /srv/revbot/revbot.db   into a folder, same file name""",
    ),
    "roster": (
        "the [roster] from the CRM's people: Slack members found by e-mail (--build), and who "
        "the roster lacks (--check)",
        """\
  revbot roster --build                         look up the CRM owners' e-mail addresses in Slack
                                                (kept by `revbot sync`) and print [roster]
  revbot roster --build --write roster.toml     write it to a file to paste into revbot.toml
  revbot roster --check                         owners and managers the roster lacks; exit code 1
  revbot roster --check --db sales.db --config revbot.toml
needs SLACK_BOT_TOKEN for --build (bot scopes users:read and users:read.email); CSV-export users
list their people in [roster] people_csv = "people.csv" (columns name, email, role)""",
    ),
    "export": (
        "write saved results to a file",
        """\
  revbot export scores --out scores.csv""",
    ),
    "scores": (
        "a score run as CSV: one row per open deal, by rank, with its reasons",
        """\
  revbot export scores --out scores.csv            the latest run
  revbot export scores --out - --run 12 | head     an earlier run, to standard output
  revbot export scores --out scores.csv --db sales.db""",
    ),
}
