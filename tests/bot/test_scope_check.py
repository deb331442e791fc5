"""The start-up check of the configuration's scopes and roster names against the CRM data: on a
real SQLite file with the demo CRM ingested (plus one deal whose owner is in no team), and through
`revbot digest`, `revbot morning` and `revbot serve` as a user runs them."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bot import scope_check
from bot.cli import main
from bot.config import ConfigError
from bot.services import build
from bot.settings import Member, Settings, settings_from
from dataset import database
from dataset.demo import DemoConfig, write_demo
from dataset.ingest import ingest_files

DEMO = DemoConfig(deals=200, daily_exports=0, weekly_exports=False)
SOLO = "Zora Solo"  # owns a deal, in no sales team: a rep only the deals know
MANAGERS = {"Dana Whitfield", "Omar Castillo", "Grace Okafor", "Ivan Petrov", "Mei Tanaka",
            "Lucas Moreau"}  # fmt: skip


@pytest.fixture(scope="module")
def crm_db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scope-check")
    crm = folder / "crm"
    write_demo(crm, DEMO)
    pipeline = crm / "sales_pipeline.csv"
    with pipeline.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    solo = dict(rows[0], opportunity_id="DSOLO00001", sales_agent=SOLO)
    with pipeline.open("a", newline="", encoding="utf-8") as fh:
        csv.DictWriter(fh, fieldnames=list(rows[0])).writerow(solo)
    path = folder / "revbot.db"
    db = database.connect(path)
    results = ingest_files(db, [crm])
    db.close()
    assert all(r.status == "imported" for r in results), [r.summary() for r in results]
    return path


def config(channels=(), roster=None) -> Settings:
    """Settings as revbot.toml gives them: channels C0ONE, C0TWO... with these scopes."""
    raw: dict = {"channels": [{"id": f"C0{n}", "scope": s}
                              for n, s in zip(("ONE", "TWO", "THREE"), channels, strict=False)]}  # fmt: skip
    if roster is not None:
        raw["roster"] = roster
    return settings_from(raw, env={})


def refusal(settings: Settings, db_path: Path) -> str:
    with pytest.raises(ConfigError) as err:
        scope_check.check(settings, db_path)
    return str(err.value)


def test_known_names_are_the_teams_and_the_deals_owners(crm_db):
    db = database.connect(crm_db)
    known = scope_check.known_names(db)
    db.close()
    assert known.regions == {"Central", "East", "West"}
    assert known.managers == MANAGERS
    assert len(known.reps) == 31 and {"Ava Alder", SOLO} <= known.reps


@pytest.mark.parametrize(
    ("scope", "where", "hint"),
    [
        ("region:Westt", "scope region:Westt: no region 'Westt' in the data",
         "did you mean 'West'?"),
        ("manager:Grace Okafro", "scope manager:Grace Okafro: no manager 'Grace Okafro' in the data",
         "did you mean 'Grace Okafor'?"),
        ("rep:Ava Aldr", "scope rep:Ava Aldr: no rep 'Ava Aldr' in the data",
         "did you mean 'Ava Alder'?"),
        ("rep:Zora Sol", "scope rep:Zora Sol: no rep 'Zora Sol' in the data",
         "did you mean 'Zora Solo'?"),  # a deal owner in no team
    ],
)  # fmt: skip
def test_an_unknown_channel_scope_is_named_where_it_is_with_the_right_one(crm_db, scope, where, hint):  # fmt: skip
    message = refusal(config(["all", scope]), crm_db)
    assert f"[[channels]] #2 (C0TWO) {where}; {hint}" in message
    assert f"names 1 scope or person that the CRM data in {crm_db} does not have" in message


@pytest.mark.parametrize(
    ("member", "line"),
    [
        ({"role": "manager", "name": "Omar Castilo"},
         "[roster] U0PERSON: manager 'Omar Castilo' is not in the data; did you mean 'Omar Castillo'?"),
        ({"role": "rep", "name": "Ben Horvath"},
         "[roster] U0PERSON: rep 'Ben Horvath' is not in the data; did you mean 'Ben Horvat'?"),
        ({"role": "rep", "name": "Zora Sola"},
         "[roster] U0PERSON: rep 'Zora Sola' is not in the data; did you mean 'Zora Solo'?"),
    ],
)  # fmt: skip
def test_an_unknown_roster_name_is_named_with_the_right_one(crm_db, member, line):
    roster = {"U0BOSS": {"role": "leader"}, "U0PERSON": member}
    assert refusal(config(["all"], roster), crm_db).splitlines()[1:] == [f"  {line}"]


def test_a_name_right_but_for_case_or_spaces_is_refused_and_said_so(crm_db):
    settings = config(["region:west"], {"U0REP": {"role": "rep", "name": "Ava  Alder "}})
    lines = refusal(settings, crm_db).splitlines()
    assert lines[1].strip() == (
        "[[channels]] #1 (C0ONE) scope region:west: no region 'west' in the data; the data "
        "spells it 'West' (names must match exactly, case and spaces included)"
    )
    assert lines[2].strip() == (
        "[roster] U0REP: rep 'Ava  Alder ' is not in the data; the data spells it 'Ava Alder' "
        "(names must match exactly, case and spaces included)"
    )


def test_with_no_close_name_the_few_known_are_listed_and_many_are_counted(crm_db):
    settings = config(["region:Atlantis", "manager:Xyzzy Qwerty", "rep:Xyzzy Qwerty"])
    lines = [line.strip() for line in refusal(settings, crm_db).splitlines()[1:]]
    assert lines == [
        "[[channels]] #1 (C0ONE) scope region:Atlantis: no region 'Atlantis' in the data; the "
        "data's regions are 'Central', 'East', 'West'",
        "[[channels]] #2 (C0TWO) scope manager:Xyzzy Qwerty: no manager 'Xyzzy Qwerty' in the "
        "data; the data's managers are " + ", ".join(repr(m) for m in sorted(MANAGERS)),
        "[[channels]] #3 (C0THREE) scope rep:Xyzzy Qwerty: no rep 'Xyzzy Qwerty' in the data; "
        "none of the data's 31 reps is close (`revbot forecast --by rep` lists them)",
    ]


def test_every_problem_is_reported_at_once_in_the_configurations_order(crm_db):
    roster = {
        "U0LEAD": {"role": "leader"},
        "U0MGR": {"role": "manager", "name": "Mei Tanak"},
        "U0OK": {"role": "rep", "name": "Ava Alder"},
        "U0REP": {"role": "rep", "name": "Dana Whitfield"},  # a manager, not a rep
    }
    message = refusal(config(["all", "region:Eastt", "manager:Ivan Petrov"], roster), crm_db)
    head, *lines = message.splitlines()
    assert head == (
        f"the configuration names 3 scopes or people that the CRM data in {crm_db} does not have "
        "(scopes and roster names must match the data exactly):"
    )
    assert [line.split(":")[0].strip() for line in lines] == [
        "[[channels]] #2 (C0TWO) scope region",
        "[roster] U0MGR",
        "[roster] U0REP",
    ]
    assert "did you mean 'Mei Tanaka'?" in lines[1] and "rep 'Dana Whitfield'" in lines[2]


def test_a_configuration_of_real_names_passes_and_builds(crm_db, tmp_path):
    roster = {
        "U0LEAD": {"role": "leader"},
        "U0MGR": {"role": "manager", "name": "Grace Okafor"},
        "U0REP": {"role": "rep", "name": SOLO},
    }
    settings = config(["all", "region:West", "manager:Lucas Moreau"], roster)
    assert scope_check.check(settings, crm_db) is None
    assert build(crm_db, tmp_path / "artifacts", settings).settings is settings


def test_no_scope_or_roster_name_leaves_nothing_to_check(tmp_path):
    settings = Settings(roster={"U0LEAD": Member("U0LEAD", "leader")})
    assert scope_check.check(settings, tmp_path / "x.db") is None
    assert not (tmp_path / "x.db").exists()


def test_a_database_without_data_yet_is_not_checked(tmp_path):
    bad = config(["region:Atlantis"], {"U0MGR": {"role": "manager", "name": "Nobody"}})
    empty = tmp_path / "empty.db"
    database.connect(empty).close()
    assert scope_check.check(bad, empty) is None  # the first start: nothing to check against
    assert build(empty, tmp_path / "artifacts", bad).settings is bad
    missing = tmp_path / "none.db"
    assert scope_check.check(bad, missing) is None
    assert not missing.exists()  # the check never creates a database


def test_deals_without_a_team_table_know_no_region_or_manager(tmp_path):
    write_demo(tmp_path / "crm", DEMO)
    path = tmp_path / "deals-only.db"
    db = database.connect(path)
    ingest_files(db, [tmp_path / "crm" / "sales_pipeline.csv"])
    db.close()
    settings = config(["region:West", "rep:Ava Alder"], {"U0M": {"role": "manager", "name": "Mo"}})
    lines = [line.strip() for line in refusal(settings, path).splitlines()[1:]]
    assert lines == [
        "[[channels]] #1 (C0ONE) scope region:West: no region 'West' in the data; the data has "
        "no region names at all (they come from the sales team table's regional_office)",
        "[roster] U0M: manager 'Mo' is not in the data; the data has no manager names at all "
        "(they come from the sales team table's manager)",
    ]


# --- as a user runs it ------------------------------------------------------------------------

BAD_TOML = """
[[channels]]
id = "C0LEADERS"
scope = "all"

[[channels]]
id = "C0WEST"
scope = "region:Westt"

[roster]
U0LEAD = { role = "leader" }
U0MGR = { role = "manager", name = "Celia Rouch" }
"""
BAD_LINES = [
    "  [[channels]] #2 (C0WEST) scope region:Westt: no region 'Westt' in the data; did you mean "
    "'West'?",
    "  [roster] U0MGR: manager 'Celia Rouch' is not in the data; the data's managers are "
    + ", ".join(repr(m) for m in sorted(MANAGERS)),
]


@pytest.fixture
def bad_toml(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("REVBOT_DB", "REVBOT_CONFIG", "REVBOT_ARTIFACTS", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    # were Slack called, it would be refused at once, not reached over the network
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api/")
    path = tmp_path / "revbot.toml"
    path.write_text(BAD_TOML, encoding="utf-8")
    return path


def assert_refused(command: str, code: int, err: str, tmp_path: Path, db: Path) -> None:
    assert code == 2, err
    lines = err.splitlines()
    assert lines[0] == (
        f"revbot {command}: error: the configuration names 2 scopes or people that the CRM data "
        f"in {db} does not have (scopes and roster names must match the data exactly):"
    )
    assert lines[1:] == BAD_LINES
    assert not (tmp_path / "artifacts").exists()  # refused before any training or scoring


@pytest.mark.parametrize("channel", [[], ["--channel", "C0WEST"], ["--channel", "C0LEADERS"]])
def test_revbot_digest_refuses_a_scope_the_data_lacks(crm_db, bad_toml, tmp_path, capsys, channel):  # fmt: skip
    args = ["digest", "--db", str(crm_db), "--config", str(bad_toml), *channel]
    code = main(args)
    assert_refused("digest", code, capsys.readouterr().err, tmp_path, crm_db)
    assert not (tmp_path / "revbot-out").exists()


def test_revbot_morning_refuses_a_scope_the_data_lacks(crm_db, bad_toml, tmp_path, capsys, monkeypatch):  # fmt: skip
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    code = main(["morning", "--db", str(crm_db), "--config", str(bad_toml)])
    assert_refused("morning", code, capsys.readouterr().err, tmp_path, crm_db)


def test_revbot_serve_refuses_to_start(crm_db, bad_toml, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "test-secret")
    code = main(["serve", "--db", str(crm_db), "--config", str(bad_toml), "--port", "0"])
    assert_refused("serve", code, capsys.readouterr().err, tmp_path, crm_db)
