"""People, not names (issue 15, item 5): Slack members found by the CRM owners' e-mail addresses
over the loopback Slack, `[roster] people_csv`, and `revbot roster --build` / `--check`."""

from __future__ import annotations

import time
import tomllib
from dataclasses import replace

import pytest
from slack_sdk.errors import SlackApiError

from bot import scope_check, slack_api
from bot.cli import main
from bot.config import ConfigError
from bot.roster import entry_toml, roster_toml, toml_string
from bot.settings import Member, Secrets, settings_from
from dataset import database, people
from dataset.money import plural
from tests.bot.slackenv import HOSTILE_OWNER
from tests.fakeslack import FakeSlack

TOKEN = "xoxb-test-roster"


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


def client_of(slack: FakeSlack):
    return slack_api.make_client(Secrets(bot_token=TOKEN, api_url=slack.base_url), timeout=5)


def test_a_member_is_found_by_e_mail_and_known_by_id(slack):
    slack.add_user("U0ANN", "ann@acme.com", "Ann Lee")
    slack.add_user("W0GONE", "gone@acme.com", deleted=True)
    client = client_of(slack)
    assert slack_api.lookup_by_email(client, "ANN@acme.com") == slack_api.SlackUser("U0ANN")
    assert slack_api.lookup_by_email(client, "gone@acme.com") == slack_api.SlackUser("W0GONE", deleted=True)  # fmt: skip
    assert slack_api.lookup_by_email(client, "nobody@acme.com") is None  # users_not_found
    assert slack_api.user_info(client, "U0ANN") == slack_api.SlackUser("U0ANN")
    assert slack_api.user_info(client, "U0NOBODY") is None  # user_not_found


def test_a_rate_limited_lookup_waits_and_goes_on(slack):
    """users.lookupByEmail is Tier 3: a long list meets 429s, which make_client's client waits
    out (Retry-After) instead of failing the build."""
    slack.add_user("U0ANN", "ann@acme.com")
    slack.rate_limit("users.lookupByEmail", times=2, retry_after=1)
    start = time.monotonic()
    assert slack_api.lookup_by_email(client_of(slack), "ann@acme.com") == slack_api.SlackUser("U0ANN")  # fmt: skip
    assert time.monotonic() - start >= 2
    assert [c.status for c in slack.calls_to("users.lookupByEmail")] == [429, 429, 200]


def test_a_refusal_other_than_not_found_is_raised(slack):
    slack.scopes -= {"users:read.email"}
    with pytest.raises(SlackApiError) as err:
        slack_api.lookup_by_email(client_of(slack), "ann@acme.com")
    assert slack_api.error_code(err.value) == "missing_scope"
    slack.fail("users.info", "invalid_auth")
    with pytest.raises(SlackApiError):
        slack_api.user_info(client_of(slack), "U0ANN")


# --- [roster] people_csv ---------------------------------------------------------------------


def test_people_csv_sits_in_the_roster_table_beside_the_members():
    settings = settings_from({"roster": {"people_csv": "/etc/revbot/people.csv",
                                         "U0ANN": {"role": "rep", "name": "Ann Lee"}}})  # fmt: skip
    assert str(settings.people_csv) == "/etc/revbot/people.csv"
    assert list(settings.roster) == ["U0ANN"]  # the file name is not a member
    assert settings_from({}).people_csv is None
    with pytest.raises(ConfigError, match=r"\[roster\] people_csv: 3 is not a file name"):
        settings_from({"roster": {"people_csv": 3}})
    with pytest.raises(ConfigError, match=r"\[roster\] is a table"):
        settings_from({"roster": "U0ANN"})


# --- the [roster] TOML -----------------------------------------------------------------------

NASTY = ['Ann "The Closer" Lee', "back\\slash", 'x" }\n[evil]\nU0EVIL = { role = "leader" }',
         "tab\tand\x1b[31mred", "<!here> Eve", "Zoë Ünal", "\u2028line sep", "emoji 🚀"]  # fmt: skip


def test_the_built_toml_reads_back_as_the_same_roster_whatever_the_names():
    members = [Member(f"U0N{i}", "rep", name) for i, name in enumerate(NASTY)]
    members += [Member("U0LEAD", "leader"), Member("W0MGR", "manager", "Mo Park")]
    text = roster_toml(members, people_csv="/etc/revbot/people.csv")
    parsed = tomllib.loads(text)
    assert set(parsed) == {"roster"}  # no CRM name opened a table of its own
    settings = settings_from(parsed)
    assert settings.roster == {m.user_id: m for m in members}
    assert str(settings.people_csv) == "/etc/revbot/people.csv"
    body = text.split("[roster]\n", 1)[1]
    assert len(body.splitlines()) == len(members) + 1  # one line each: no name broke a line
    assert entry_toml(Member("U0ABC", "rep", "Ann Lee")) == '"U0ABC" = { role = "rep", name = "Ann Lee" }'  # fmt: skip


def test_an_unescaped_name_would_break_the_toml():
    """The check above can fail: a name written as it is would not read back."""
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads(f'[roster]\n"U0X" = {{ role = "rep", name = "{NASTY[0]}" }}\n')


# --- revbot roster --build / --check, on a real scored pipeline ---------------------------------


def _email(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum() or c == " ").strip().replace(" ", ".") + "@acme.example"  # fmt: skip


@pytest.fixture
def cli(small_crm, db_copy, tmp_path, monkeypatch, slack):
    """The CLI on a copy of the scored pipeline, the loopback Slack as SLACK_API_URL."""
    monkeypatch.chdir(tmp_path)
    for name in ("REVBOT_CONFIG", "REVBOT_DB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_API_URL", slack.base_url)
    scores = small_crm["scores"]
    return {"db": db_copy, "config": tmp_path / "revbot.toml", "slack": slack, "scores": scores,
            "owners": sorted(scores["owner"].dropna().unique()),
            "managers": sorted(scores["manager"].dropna().unique())}  # fmt: skip


def _run(cli, *argv) -> int:
    return main(["roster", *argv, "--db", str(cli["db"]), "--config", str(cli["config"])])


def _synced(db_path, rows) -> None:
    """People as a sync would have kept them (the sync itself: tests/bot/test_sync_cli.py)."""
    db = database.connect(db_path)
    with db.conn:
        people.keep(db, "salesforce", rows, "2025-02-14T06:00:00+00:00")
    db.close()


def test_build_prints_the_roster_slack_could_match(cli, capsys):
    owners = [o for o in cli["owners"] if o != HOSTILE_OWNER]
    managers, slack = cli["managers"], cli["slack"]
    rep, other, gone, absent = owners[0], owners[1], owners[2], owners[3]
    manager = managers[0]
    assert manager not in owners  # a manager in the data who owns no deal: from the CSV
    _synced(cli["db"], [(rep, _email(rep)), (other, _email(other)), (gone, _email(gone)),
                        (absent, _email(absent)), (HOSTILE_OWNER, "eve@acme.example"),
                        ("Nobody In The Data", "nobody@acme.example")])  # fmt: skip
    (cli["config"].parent / "people.csv").write_text(
        f"name,email,role\n{manager},{_email(manager)},manager\nLee Chief,lee@acme.example,leader\n"
    )
    cli["config"].write_text('[roster]\npeople_csv = "people.csv"\n'
                             f'"U0OTHER" = {{ role = "rep", name = "{other}" }}\n')  # fmt: skip
    slack.add_user("U0REP", _email(rep).upper())  # Slack's own spelling of the address
    slack.add_user("U0GONE", _email(gone), deleted=True)
    slack.add_user("U0EVE", "eve@acme.example")
    slack.add_user("U0MGR", _email(manager))
    slack.add_user("W0LEE", "lee@acme.example")
    slack.add_user("U0NOBODY", "nobody@acme.example")

    assert _run(cli, "--build") == 0
    out, err = capsys.readouterr()
    settings = settings_from(tomllib.loads(out))
    assert settings.roster == {
        "U0OTHER": Member("U0OTHER", "rep", other),  # kept as written, not looked up again
        "U0REP": Member("U0REP", "rep", rep),
        "U0EVE": Member("U0EVE", "rep", HOSTILE_OWNER),  # a CRM name is data, never syntax
        "U0MGR": Member("U0MGR", "manager", manager),  # role from the CSV
        "W0LEE": Member("W0LEE", "leader", "Lee Chief"),
    }
    assert str(settings.people_csv) == "people.csv"
    scope_check.check(settings, cli["db"])  # the bot would start with it: every name is known
    assert f"not matched: {absent!r} <{_email(absent)}>: no Slack account has this e-mail address" in err  # fmt: skip
    assert f"not matched: {gone!r} <{_email(gone)}>: deactivated in Slack" in err
    assert "not matched: 'Nobody In The Data' <nobody@acme.example>: not in the CRM data as a rep" in err  # fmt: skip
    assert "looked up 6 people in Slack by e-mail: 4 matched" in err
    asked = {c.params["email"] for c in slack.calls_to("users.lookupByEmail")}
    assert "nobody@acme.example" not in asked and _email(other) not in asked
    assert "U0" not in cli["config"].read_text().split("U0OTHER", 1)[1]  # revbot.toml untouched


def test_build_writes_a_file_but_never_revbot_toml(cli, capsys):
    rep = cli["owners"][-1]
    _synced(cli["db"], [(rep, _email(rep))])
    cli["slack"].add_user("U0REP", _email(rep))
    cli["config"].write_text("")
    before = cli["config"].read_text()
    assert _run(cli, "--build", "--write", str(cli["config"])) == 2
    assert "that is revbot's configuration, which revbot never edits" in capsys.readouterr().err
    assert cli["config"].read_text() == before
    target = cli["config"].parent / "out" / "roster.toml"
    assert _run(cli, "--build", "--write", str(target)) == 0
    out, err = capsys.readouterr()
    assert tomllib.loads(target.read_text())["roster"] == {"U0REP": {"role": "rep", "name": rep}}
    assert f"written: {target}" in out and err == ""
    assert main(["roster", "--check", "--write", str(target)]) == 2  # --write goes with --build


@pytest.mark.parametrize(
    "setup, said",
    [
        ("no token", "SLACK_BOT_TOKEN is not set: `revbot roster --build` asks Slack"),
        ("no scope", "the app lacks the scope users:read.email (missing_scope): add the bot"),
        ("bad token", "Slack refused the bot token (invalid_auth): copy SLACK_BOT_TOKEN again"),
        ("unreachable", "could not reach Slack to look people up by e-mail (Connection"),
        ("no people", "no one to look up in "),
        ("bad csv", "[roster] people_csv: people.csv: line 2: role 'boss' is not one of"),
    ],
)
def test_build_says_what_is_wrong_in_one_line(cli, capsys, monkeypatch, setup, said):
    rep = cli["owners"][-1]
    if setup != "no people":
        _synced(cli["db"], [(rep, _email(rep))])
    cli["config"].write_text("")
    if setup == "no token":
        monkeypatch.delenv("SLACK_BOT_TOKEN")
    elif setup == "no scope":
        cli["slack"].scopes -= {"users:read.email"}
    elif setup == "bad token":
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxp-not-a-bot-token")
    elif setup == "unreachable":
        monkeypatch.setenv("SLACK_API_URL", f"http://127.0.0.1:{cli['slack'].closed_port}/api/")
    elif setup == "bad csv":
        (cli["config"].parent / "people.csv").write_text("name,email,role\nAnn,ann@acme.example,boss\n")  # fmt: skip
        cli["config"].write_text('[roster]\npeople_csv = "people.csv"\n')
    assert _run(cli, "--build") == 2
    out, err = capsys.readouterr()
    assert err.startswith("revbot roster: error: ") and said in err, err
    assert "Traceback" not in err and out == ""


def test_check_lists_the_unmatched_and_exits_1(cli, capsys):
    owners, managers, slack = cli["owners"], cli["managers"], cli["slack"]
    cli["config"].write_text(
        "[roster]\n"
        f'U0REP = {{ role = "rep", name = {toml_string(owners[-1])} }}\n'
        f'U0MGR = {{ role = "manager", name = "{managers[0]}" }}\n'
        'U0OLD = { role = "rep", name = "Left The Company" }\n'
        'U0LEAD = { role = "leader" }\n'
    )
    for user_id in ("U0REP", "U0MGR", "U0OLD"):
        slack.add_user(user_id, f"{user_id.lower()}@acme.example")  # U0LEAD: unknown to Slack
    assert _run(cli, "--check") == 1
    out = capsys.readouterr().out
    deals = cli["scores"]["owner"].value_counts()
    assert f"  in the roster:  {owners[-1]!r} owns {plural(deals[owners[-1]], 'open deal')}: @U0REP (rep)" in out  # fmt: skip
    for name in owners[:-1]:
        assert f"  NOT in roster:  {name!r} owns " in out
    assert f"  in the roster:  {managers[0]!r} manages " in out and "@U0MGR (manager)" in out
    for name in managers[1:]:
        assert f"  NOT in roster:  {name!r} manages " in out
    assert "  U0OLD rep 'Left The Company': owns no open deal of run #" in out
    assert "  U0LEAD leader: Slack does not know this member id (user_not_found)" in out
    problems = len(owners) - 1 + len(managers) - 1 + 2
    assert f"{problems} problems: `revbot roster --build` finds the missing" in out
    assert {c.params["user"] for c in slack.calls_to("users.info")} == {"U0REP", "U0MGR", "U0OLD", "U0LEAD"}  # fmt: skip


def test_check_passes_when_everyone_is_matched(cli, capsys, monkeypatch):
    lines = ["[roster]", 'U0LEAD = { role = "leader" }']
    lines += [f"U0R{i:03d} = {{ role = \"rep\", name = {toml_string(n)} }}" for i, n in enumerate(cli["owners"])]  # fmt: skip
    lines += [f"U0M{i:03d} = {{ role = \"manager\", name = {toml_string(n)} }}" for i, n in enumerate(cli["managers"])]  # fmt: skip
    cli["config"].write_text("\n".join(lines) + "\n")
    monkeypatch.delenv("SLACK_BOT_TOKEN")  # not asked: said so
    assert _run(cli, "--check") == 0
    out = capsys.readouterr().out
    assert "NOT in roster" not in out and "everyone matched" in out
    assert "SLACK_BOT_TOKEN is not set: the roster's member ids were not checked" in out
    assert cli["slack"].calls_to("users.info") == []


def test_check_without_a_roster_or_a_run_says_so(cli, capsys, tmp_path):
    cli["config"].write_text("")
    assert _run(cli, "--check") == 1
    out = capsys.readouterr().out
    assert "revbot.toml has no [roster]" in out and "no one is @-mentioned" in out
    empty = tmp_path / "empty.db"
    database.connect(empty).close()
    assert main(["roster", "--check", "--db", str(empty), "--config", str(cli["config"])]) == 2
    assert "no score run yet in " in capsys.readouterr().err


def test_the_documented_roster_and_people_csv_are_valid():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    block = next(b for b in readme.split("```toml")[1:] if b.lstrip().startswith("[roster]"))
    text = block.split("```")[0].replace("# people_csv", "people_csv")
    settings = settings_from(tomllib.loads(text), env={})
    assert {m.role for m in settings.roster.values()} == {"leader", "manager", "rep"}
    assert str(settings.people_csv) == "/etc/revbot/people.csv"
    csv_text = readme.split("```csv\n", 1)[1].split("```")[0]
    assert [p.role for p in people.read_csv(csv_text, "people.csv")] == ["rep", "manager", "leader"]
    example = (root / "deploy" / "revbot.example.toml").read_text(encoding="utf-8")
    (line,) = re.findall(r"^# (people_csv = .+)$", example, re.M)
    assert str(settings_from(tomllib.loads(f"[roster]\n{line}\n"), env={}).people_csv) == "/etc/revbot/people.csv"  # fmt: skip


def test_an_empty_roster_is_a_warning_at_start_up(small_crm, db_copy, slack, caplog):
    """`[roster]` with only people_csv lists no one: nobody may see deal data, and the log says
    so (the table exists, so it is not "everyone may ask")."""
    from bot.app import create_app
    from tests.bot.slackenv import SECRET

    settings = settings_from({"roster": {"people_csv": "people.csv"}}, env={})
    assert settings.roster == {}
    settings = replace(settings, secrets=Secrets(bot_token=TOKEN, signing_secret=SECRET,
                                                 api_url=slack.base_url))  # fmt: skip
    caplog.set_level("INFO", logger="bot.app")
    _, services = create_app(settings, db_copy, small_crm["artifacts"])
    assert "[roster] lists no one: nobody may see deal data" in caplog.text
    assert services.settings.member("U0ANYONE") is None
    services.refresher.close()


def test_build_leaves_ambiguous_people_to_a_human():
    """Two CRM users of one name, a name twice in the CSV, one Slack member found for two
    names: none is guessed."""
    from bot.roster import build, candidates
    from bot.slack_api import SlackUser
    from dataset.people import Person

    crm = [Person("Ann Lee", "ann@a.example", "salesforce", None, "2025-02-02"),  # newest first
           Person("Ann Lee", "ann.old@a.example", "salesforce", None, "2025-01-01"),
           Person("Bo Wu", "bo@a.example", "salesforce", None, "2025-02-02"),
           Person("Bo Wu", "bo2@a.example", "hubspot", None, "2025-02-02"),
           Person("Cy Ho", "cy@a.example", "salesforce", None, "2025-02-02"),
           Person("Mo Park", "mo@a.example", "hubspot", None, "2025-02-02")]  # fmt: skip
    rows = [Person("Di Sun", "di@a.example", "p.csv", "rep"),
            Person("Di Sun", "di2@a.example", "p.csv", "rep"),
            Person("Cy Ho", "cy.alias@a.example", "p.csv", "rep")]  # fmt: skip
    found, skipped = candidates(crm, rows, managers={"Mo Park"})
    assert [(c.name, c.role, c.email) for c in found] == [
        ("Ann Lee", "rep", "ann@a.example"),  # the address seen last
        ("Cy Ho", "rep", "cy.alias@a.example"),  # the CSV before the CRM
        ("Mo Park", "manager", "mo@a.example"),  # the sales team table's manager
    ]
    assert {s.name: s.why.split(" (")[0] for s in skipped} == {
        "Di Sun": "named twice in the people CSV", "Bo Wu": "the CRM has two users of this name"}  # fmt: skip
    slack = {"ann@a.example": SlackUser("U0SAME"), "mo@a.example": SlackUser("U0SAME")}
    built = build(found, slack.get, None, None)
    assert [m.user_id for m in built.matched] == ["U0SAME"]
    assert [(s.name, s.why) for s in built.skipped] == [
        ("Cy Ho", "no Slack account has this e-mail address"),
        ("Mo Park", "this Slack member (U0SAME) is already in the roster as rep 'Ann Lee'"),
    ]
