"""The issue "Bad input never stops the morning", end to end: an export holding every kind of bad
cell is imported with `revbot ingest` into a database that has a good import, a trained model and
a score run; `revbot score` still works on it, the morning run then loads a correct export and
posts its digest, and `revbot digest` renders. One bad cell used to stop every later run."""

from __future__ import annotations

import csv
import io
import json
import shutil
from dataclasses import replace

from bot.cli import main
from bot.config import load_config
from bot.morning import run_channel
from bot.services import build
from bot.settings import Secrets, settings_from
from bot.slack_api import make_client
from dataset import database, deal_history, import_log, score_runs
from tests.bot.slackenv import TOKEN, channel
from tests.fakeslack import FakeSlack

HEADER = "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value,last_activity"  # fmt: skip


def _rows(path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _line(row: dict) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([row[c] for c in HEADER.split(",")])
    return out.getvalue()


def poison(good: list[dict]) -> list[tuple[dict, str]]:
    """Bad rows built on real ones, each with (the start of) the reason it must be set aside."""
    won = next(r for r in good if r["deal_stage"] == "Won")
    engaging = next(r for r in good if r["deal_stage"] == "Engaging")
    other = next(r for r in good if r["deal_stage"] == "Engaging" and r is not engaging)
    new = lambda base, n, **kw: {**base, "opportunity_id": f"PZN{n:04d}", **kw}  # noqa: E731
    eid, oid = engaging["opportunity_id"], other["opportunity_id"]
    return [
        (new(won, 1, close_date="9999-12-31"), "close_date '9999-12-31' is more than 10 years"),
        (new(won, 2, close_date="2262-04-12"), "close_date '2262-04-12' is more than 10 years"),
        (new(engaging, 3, deal_stage=""), "blank stage"),
        (new(engaging, 4, deal_stage="   "), "blank stage"),
        (new(engaging, 5, deal_stage="\u00a0"), "blank stage"),
        (new(won, 6, close_date="0000-01-01"), "close_date '0000-01-01' is before 1990-01-01"),
        (new(won, 7, close_date="-0001-03-01"), "close_date '-0001-03-01' is before 1990-01-01"),
        (new(engaging, 8, engage_date="0000-01-01"), "engage_date '0000-01-01' is before"),
        (new(won, 9, close_value="inf"), "value 'inf' is not a finite number"),
        (new(won, 10, close_value="Infinity"), "value 'Infinity' is not a finite number"),
        (new(won, 11, close_value="1e309"), "value '1e309' is not a finite number"),
        (new(won, 12, close_value="$-5"), "negative value -5 (written '$-5')"),
        (new(won, 13, close_value="-$5"), "negative value -5 (written '-$5')"),
        (new(won, 14, close_value="(5)"), "negative value -5 (written '(5)')"),
        (new(won, 15, close_value="1e308"), "value '1e308' is above the ceiling of"),
        ({**engaging, "opportunity_id": eid + "\u200b"}, "duplicate of line"),
        ({**engaging, "opportunity_id": "\ufeff" + eid}, "duplicate of line"),
        ({**other, "opportunity_id": oid.lower()}, f"deal_id {oid.lower()!r} differs only"),
        ({**engaging, "opportunity_id": "PZN\u04100016"}, "deal_id 'PZN\u04100016' mixes Cyrillic"),
        ({**other, "opportunity_id": oid[:3] + "\u202e" + oid[3:]}, "duplicate of line"),
        ({**other, "opportunity_id": "\u2003" + oid + "\u2003"}, "duplicate of line"),
    ]


def test_a_poisoned_export_never_stops_the_morning(small_crm, db_copy, tmp_path, capsys):
    artifacts = tmp_path / "artifacts"
    shutil.copytree(small_crm["artifacts"], artifacts)
    db_args = ["--db", str(db_copy)]
    good = _rows(small_crm["crm"] / "sales_pipeline.csv")  # the import of 2025-02-14
    bad = poison(good)
    path = tmp_path / "poisoned.csv"  # no date in its name: the as-of comes from its events
    lines = [HEADER, *map(_line, good), *(_line(row) for row, _ in bad)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = {len(good) + 2 + k: why for k, (_, why) in enumerate(bad)}

    assert main(["ingest", str(path), *db_args]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    read, aside = len(good) + len(bad), len(bad)
    assert f"poisoned.csv: deals via preset maventech: {read} read = {read - aside} accepted + {aside} set aside" in out  # fmt: skip
    db = database.connect(db_copy)
    (import_id,) = db.execute("SELECT MAX(id) FROM imports").fetchone()
    stored = {r["line"]: r["reason"] for r in import_log.quarantined(db, import_id, 100)}
    assert set(stored) == set(expected)
    assert {line: stored[line][: len(why)] for line, why in expected.items()} == expected
    assert deal_history.latest_as_of(db) == "2025-02-14"  # no row moved the export's date
    assert db.execute(
        "SELECT COUNT(*) FROM deals WHERE stage IS NULL OR value < 0 OR value > 1e12 "
        "OR close_date > '2100' OR close_date < '1990' OR deal_id LIKE 'PZN%'"
    ).fetchone() == (0,)

    assert main(["score", *db_args, "--artifacts", str(artifacts)]) == 0
    out, err = capsys.readouterr()
    assert "open deals as of 2025-02-14" in out and "Traceback" not in out + err

    # the next morning: a correct export (one new deal) arrives and the digest goes out on it
    exports = tmp_path / "exports"
    exports.mkdir()
    newcomer = {**good[0], "opportunity_id": "DNEW000001", "deal_stage": "Engaging",
                "engage_date": "2025-02-17", "close_date": "", "close_value": "",
                "last_activity": "2025-02-17"}  # fmt: skip
    correct = [HEADER, *map(_line, good), _line(newcomer)]
    (exports / "pipeline_2025-02-17.csv").write_text("\n".join(correct) + "\n", encoding="utf-8")
    config = tmp_path / "revbot.toml"
    config.write_text(f'[exports]\nfolder = "{exports}"\n', encoding="utf-8")
    digest = channel("C0DIGEST", top=5)
    with FakeSlack() as slack:
        settings = replace(
            settings_from(load_config(config)),
            channels=(digest,),
            secrets=Secrets(bot_token=TOKEN, api_url=slack.base_url),
        )
        services = build(db_copy, artifacts, settings)
        outcome = run_channel(services, make_client(settings.secrets), digest, "2025-02-18")
        assert outcome.status == "posted", outcome
        message = json.dumps(slack.calls_to("chat.postMessage")[-1].params)
    assert "2025-02-17" in message and "could not be loaded" not in message
    assert score_runs.latest_run(db)["as_of"] == "2025-02-17"
    assert db.execute("SELECT 1 FROM deals WHERE deal_id = 'DNEW000001'").fetchone() == (1,)

    out_dir = tmp_path / "out"
    argv = ["digest", *db_args, "--artifacts", str(artifacts), "--out", str(out_dir)]
    assert main([*argv, "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    text = (out_dir / "digest.txt").read_text(encoding="utf-8")
    assert text.startswith("revbot digest: all teams, pipeline as of 2025-02-17")
