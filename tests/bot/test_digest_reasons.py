"""Every deal a digest lists says why, also beyond the deals the score run explained: a team's
digest reaches further down the company's ranking than the run's explained top."""

from __future__ import annotations

import re
import shutil

from bot.cli import main

WHY = re.compile(r"^\s+\d+\. (\S+) .*?\n((?:       \S.*\n)+)", flags=re.M)


def _digest(small_crm, folder, explain_top: int) -> dict[str, str]:
    folder.mkdir()
    db, art = folder / "revbot.db", folder / "artifacts"
    shutil.copy(small_crm["db_path"], db)
    shutil.copytree(small_crm["artifacts"], art)
    paths = ["--db", str(db), "--artifacts", str(art)]
    assert main(["score", *paths, "--explain-top", str(explain_top)]) == 0
    assert main(["digest", *paths, "--out", str(folder / "out"), "--top", "12"]) == 0
    text = (folder / "out" / "digest.txt").read_text(encoding="utf-8")
    return {deal: block for deal, block in WHY.findall(text)}


def test_deals_past_the_explained_top_have_the_same_reasons(small_crm, tmp_path, capsys):
    few = _digest(small_crm, tmp_path / "few", explain_top=3)
    all_ = _digest(small_crm, tmp_path / "all", explain_top=100_000)
    assert len(few) == 12 and list(few) == list(all_)
    for deal, block in few.items():
        assert "why: " in block, block
        assert block == all_[deal], (deal, block, all_[deal])
