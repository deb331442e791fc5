"""Commands refuse a wrong database or truth file in one line, with no traceback and without
creating anything (issue "Bad input never stops the morning", item 13): a mistyped `--db` for a
command that only reads, a database without deals for train / score / forecast, a `--db` that is
not a database, a `--truth` file that is not a truth file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from dataset import database
from tests.dataset.test_bad_cells import GOOD, MAVENTECH, write

HOW = "import an export with `revbot ingest` or run `revbot demo --load`"
READERS = [  # (command, whether it takes --artifacts)
    (["imports"], False),
    (["quarantine"], False),
    (["digests"], False),
    (["export", "scores", "--out", "{tmp}/scores.csv"], False),
    (["train"], True),
    (["score"], True),
    (["forecast"], True),
    (["digest", "--out", "{tmp}/out"], True),
]


def error_line(capsys, argv: list[str]) -> str:
    """The command's one line of error (exit code 2), without its `revbot CMD: error: ` prefix."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1 and err.endswith("\n"), err
    prefix = f"revbot {argv[0]}: error: "
    assert err.startswith(prefix), err
    return err[len(prefix) : -1]


@pytest.fixture
def quiet_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("REVBOT_DB", "REVBOT_CONFIG", "REVBOT_ARTIFACTS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.mark.parametrize(("command", "artifacts"), READERS, ids=[c[0] for c, _ in READERS])
def test_a_mistyped_db_is_refused_by_commands_that_read(quiet_env, capsys, command, artifacts):
    tmp = quiet_env
    typo = tmp / "revbto.db"
    argv = [*(c.format(tmp=tmp) for c in command), "--db", str(typo)]
    argv += ["--artifacts", str(tmp / "art")] if artifacts else []
    assert error_line(capsys, argv).startswith(f"no database at {typo}: ")
    assert not typo.exists() and not (tmp / "art").exists() and not (tmp / "out").exists()


def test_a_mistyped_db_in_the_environment_is_refused_too(quiet_env, capsys, monkeypatch):
    monkeypatch.setenv("REVBOT_DB", str(quiet_env / "typo.db"))
    err = error_line(capsys, ["digest", "--out", str(quiet_env / "out")])
    assert err == (
        f"no database at {quiet_env / 'typo.db'}: check --db (or $REVBOT_DB), or {HOW} to make one"
    )
    assert not (quiet_env / "typo.db").exists() and not (quiet_env / "out").exists()


def test_commands_that_write_create_the_database(quiet_env, capsys):
    path = write(quiet_env, MAVENTECH, [GOOD])
    assert main(["ingest", str(path), "--db", str(quiet_env / "new.db")]) == 0
    assert database.connect(quiet_env / "new.db")["deals"].count == 1


@pytest.mark.parametrize("command", [["train"], ["score"], ["forecast"]], ids=lambda c: c[0])
def test_train_score_and_forecast_on_a_database_without_deals(quiet_env, capsys, command):
    products = write(quiet_env, "product,series,sales_price", ["GTX Pro,GTX,4821"], "products.csv")
    db_path = quiet_env / "ref.db"
    assert main(["ingest", str(products), "--db", str(db_path)]) == 0
    capsys.readouterr()
    argv = [*command, "--db", str(db_path), "--artifacts", str(quiet_env / "art")]
    assert error_line(capsys, argv) == f"the database {db_path} has no deals: {HOW}"
    assert not (quiet_env / "art").exists()


def test_a_db_that_is_not_a_database(quiet_env, capsys):
    path = write(quiet_env, MAVENTECH, [GOOD])
    err = error_line(capsys, ["imports", "--db", str(path)])
    assert err.startswith(f"{path} is not a revbot database (SQLite: file is not a database")
    assert path.read_text().startswith(MAVENTECH)  # untouched


@pytest.fixture
def small_db(quiet_env, capsys) -> Path:
    rows = [f"D{i},Ann Lee,GTX Pro,Acme,Engaging,2017-01-05,," for i in range(5)]
    db_path = quiet_env / "small.db"
    assert main(["ingest", str(write(quiet_env, MAVENTECH, rows)), "--db", str(db_path)]) == 0
    capsys.readouterr()
    return db_path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "day,deal,p\n2017-01-05,D1,0.5\n",
            "lacks column(s) export_day, deal_id, p_true: a truth file has export_day, deal_id, "
            "p_true (the demo writes truth/probabilities.csv)",
        ),
        ("export_day,deal_id\n2017-01-05,D1\n", "lacks column(s) p_true: a truth file has "),
        ("", "cannot be read as CSV: No columns to parse from file"),
        (
            "export_day,deal_id,p_true\n2017-01-05,D1,high\n",
            ": export_day must be dates (YYYY-MM-DD) and p_true probabilities in [0, 1]",
        ),
        (
            "export_day,deal_id,p_true\nlast week,D1,0.5\n",
            ": export_day must be dates (YYYY-MM-DD) and p_true probabilities in [0, 1]",
        ),
        (None, ": no such file"),
    ],
)
def test_train_truth_file_that_is_not_one(small_db, quiet_env, capsys, text, message):
    truth = quiet_env / "truth.csv"
    if text is not None:
        truth.write_text(text)
    argv = ["train", "--db", str(small_db), "--artifacts", str(quiet_env / "art")]
    err = error_line(capsys, [*argv, "--truth", str(truth)])
    assert err.startswith(f"--truth {truth}") and message in err, err
    assert not (quiet_env / "art").exists()
