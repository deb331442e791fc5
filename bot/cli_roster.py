"""`revbot roster --build` and `revbot roster --check` (issue 15, item 5): the `[roster]` entries
Slack can match with the CRM's people by e-mail, and who the roster lacks.

Why a module of its own: these commands ask Slack from the command line (through `bot.slack_api`,
the one module that calls its Web API) and turn what can go wrong there (no token, a scope the
app lacks, a token Slack refuses, Slack out of reach) into one line each, never a traceback.
Neither writes to the database or to revbot.toml: `--build` prints the table (or writes it to
`--write PATH`) for a person to paste, `--check` only reads.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from slack_sdk.errors import SlackApiError

from bot import roster, scope_check, slack_api
from bot.cli_data import db_of, db_path_of, settings_of
from bot.config import ConfigError, SetupError, config_path
from bot.settings import Member, Settings
from dataset import people, score_runs
from dataset.money import plural

BAD_TOKEN = ("invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired")
SCOPES_HELP = (
    "add the bot scopes users:read and users:read.email under OAuth & Permissions (or paste "
    "deploy/slack-app-manifest.json again under App Manifest), reinstall the app, and try again"
)


def cmd_roster(args: argparse.Namespace) -> int:
    if args.write and not args.build:
        raise SetupError("--write goes with --build: `revbot roster --build --write roster.toml`")
    settings, _ = settings_of(args)
    return _build(args, settings) if args.build else _check(args, settings)


def _shown(text: str) -> str:
    """Text from the CRM or Slack as the terminal should show it: as it is when printable, else
    quoted with its escapes (no control character reaches the terminal)."""
    return text if text.isprintable() else repr(text)


def _who(m: Member) -> str:
    return f"{m.user_id} {m.role}" + (f" {m.name!r}" if m.name else "")


@contextmanager
def _slack(what: str) -> Iterator[None]:
    """Slack's refusals and an unreachable Slack as one line each (a SetupError)."""
    try:
        yield
    except SlackApiError as exc:
        code = slack_api.error_code(exc)
        if code == "missing_scope":
            needed = exc.response.get("needed") if exc.response is not None else None
            raise SetupError(f"Slack refused to {what}: the app lacks the scope "
                             f"{_shown(str(needed or 'users:read.email'))} (missing_scope): "
                             f"{SCOPES_HELP}") from None  # fmt: skip
        if code in BAD_TOKEN:
            raise SetupError(f"Slack refused the bot token ({code}): copy SLACK_BOT_TOKEN again "
                             "from the app's OAuth & Permissions page") from None  # fmt: skip
        if code == "ratelimited":
            raise SetupError(f"Slack kept rate-limiting revbot while trying to {what}: try again "
                             "in a few minutes") from None  # fmt: skip
        raise SetupError(f"Slack refused to {what}: {_shown(code)}") from None
    except (urllib.error.URLError, OSError) as exc:  # refused, unreachable, timed out, TLS
        reason = getattr(exc, "reason", None) or exc
        raise SetupError(
            f"could not reach Slack to {what} ({type(reason).__name__}): check the network, "
            "or SLACK_API_URL if you set one"
        ) from None


def _people_csv(path: Path | None) -> list[people.Person]:
    if path is None:
        return []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"[roster] people_csv: cannot read {path}: {exc.strerror or exc}") from None  # fmt: skip
    except UnicodeDecodeError:
        raise ConfigError(f"[roster] people_csv: {path} is not UTF-8 text (save it as CSV UTF-8)") from None  # fmt: skip
    try:
        return people.read_csv(text, str(path))
    except people.PeopleError as exc:
        raise ConfigError(f"[roster] people_csv: {exc}") from None


def _build(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.secrets.bot_token:
        raise SetupError(
            "SLACK_BOT_TOKEN is not set: `revbot roster --build` asks Slack for each person's "
            "member id by e-mail (users.lookupByEmail); set it to the bot's xoxb- token"
        )
    out = Path(args.write) if args.write else None
    config = config_path(args.config)
    if out is not None and config is not None and out.resolve() == config.resolve():
        raise SetupError(f"--write {out}: that is revbot's configuration, which revbot never "
                         "edits; write the table elsewhere and paste it in yourself")  # fmt: skip
    db = db_of(args)
    crm, csv_rows = people.people(db), _people_csv(settings.people_csv)
    if not crm and not csv_rows:
        raise SetupError(
            f"no one to look up in {db_path_of(args)}: run `revbot sync` (Salesforce or HubSpot; "
            'it keeps the deal owners\' e-mail addresses), or set [roster] people_csv = "people.csv" '
            "to a CSV of name,email,role"
        )
    known = scope_check.known_names(db)
    found, skipped = roster.candidates(crm, csv_rows, known.managers if known else ())
    names = None if known is None else {"rep": known.reps, "manager": known.managers}
    client = slack_api.make_client(settings.secrets)
    with _slack("look people up by e-mail"):
        built = roster.build(found, lambda email: slack_api.lookup_by_email(client, email),
                             settings.roster, names)  # fmt: skip
    built.skipped[:0] = skipped
    text = roster.roster_toml(built.roster, str(settings.people_csv) if settings.people_csv else None)  # fmt: skip
    report = sys.stdout if out is not None else sys.stderr
    if out is None:
        print(text, end="")
    else:
        _write(out, text)
    say = lambda line: print(line, file=report)  # noqa: E731
    say(f"looked up {plural(built.looked_up, 'person', 'people')} in Slack by e-mail: "
        f"{len(built.matched)} matched")  # fmt: skip
    for s in built.skipped:
        email = f" <{_shown(s.email)}>" if s.email else ""
        say(f"  not matched: {s.name!r}{email}: {s.why}")
    if built.kept:
        say(f"kept {plural(len(built.kept), 'entry', 'entries')} of revbot.toml's [roster] as written")  # fmt: skip
    if known is None:
        say("note: no CRM data imported yet, so the names were not checked against it")
    if out is not None:
        say(f"written: {out} (paste its [roster] table over revbot.toml's, then run "
            "`revbot roster --check`)")  # fmt: skip
    return 0


def _write(out: Path, text: str) -> None:
    partial = out.with_name(f".{out.name}.partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(text, encoding="utf-8")
        partial.replace(out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise SetupError(f"cannot write {out}: {exc.strerror or exc}") from None


def _check(args: argparse.Namespace, settings: Settings) -> int:
    db = db_of(args)
    run = score_runs.latest_run(db)
    if run is None:
        raise SetupError(f"no score run yet in {db_path_of(args)}: make one with `revbot score` "
                         "(or `revbot digest`), then check again")  # fmt: skip
    scores = score_runs.run_scores(db, run["run_id"])
    slack_says = None
    if settings.secrets.bot_token:
        client = slack_api.make_client(settings.secrets)

        def slack_says(user_id: str) -> str | None:
            member = slack_api.user_info(client, user_id)
            if member is None:
                return "Slack does not know this member id (user_not_found)"
            return "deactivated in Slack" if member.deleted else None

    with _slack("look the roster's member ids up"):
        found = roster.check(scores, settings.roster, slack_says)
    size = "no [roster]" if settings.roster is None else plural(len(settings.roster), "member")
    print(f"roster check against score run #{run['run_id']} (as of {run['as_of']}): "
          f"{plural(len(scores), 'open deal')}; revbot.toml has {size}")  # fmt: skip
    if settings.roster is None:
        print("  without a [roster] everyone may ask for every deal, and no one is @-mentioned")
    for title, rows, verb in (("deal owners", found.owners, "owns"),
                              ("managers", found.managers, "manages")):  # fmt: skip
        print(f"{title} of the open deals:")
        for name, deals, members in rows:
            if members:
                ids = ", ".join(f"@{m.user_id} ({m.role})" for m in members)
                print(f"  in the roster:  {name!r} {verb} {plural(deals, 'open deal')}: {ids}")
            else:
                print(f"  NOT in roster:  {name!r} {verb} {plural(deals, 'open deal')}")
        if not rows:
            print("  none")
    if found.idle:
        print("roster entries whose name has no open deal:")
        for m in found.idle:
            what = "owns" if m.role == "rep" else "manages"
            print(f"  {_who(m)}: {what} no open deal of run #{run['run_id']}")
    if found.unknown_ids is None:
        print("SLACK_BOT_TOKEN is not set: the roster's member ids were not checked with Slack")
    elif found.unknown_ids:
        print("roster member ids Slack does not know:")
        for m, why in found.unknown_ids:
            print(f"  {_who(m)}: {why}")
    if found.unmatched:
        print(f"{plural(found.unmatched, 'problem')}: `revbot roster --build` finds the missing "
              "by e-mail; remove or correct the rest in [roster]")  # fmt: skip
        return 1
    print("everyone matched: every owner and manager of an open deal is in the roster, and "
          "every roster entry has open deals")  # fmt: skip
    return 0
