"""The MavenTech digest, read as a sales manager reads it: every deal listed says why, in its own
words (no line repeats the one before it), and says when its value is only a list price."""

from __future__ import annotations

import re


def test_every_deal_in_the_maventech_digest_has_its_own_true_reason(maventech_digest):
    assert maventech_digest["code"] == 0, maventech_digest["out"]
    # one export: its history is not "0 days" but the export and its deals' dates
    assert "on one export of the pipeline (2017-12-31), its past rebuilt from the deals' dates" in maventech_digest["out"]  # fmt: skip
    text = (maventech_digest["digest"] / "digest.txt").read_text(encoding="utf-8")
    deals = re.findall(r"^\s+\d+\. (\S+) .*?\n((?:       \S.*\n)+)", text, flags=re.M)
    assert len(deals) == 25, text
    whys, compared = [], 0
    for deal_id, block in deals:
        why = re.search(r"^       why: (.+)$", block, flags=re.M)
        assert why, f"{deal_id} has no reason:\n{block}"
        assert "no single factor stands out" not in why.group(1) or "lost" in why.group(1)
        whys.append(why.group(1))
        assert "On track" not in block
        # every deal's value is the list price (MavenTech has no amount on open deals): said
        if "deal size" in why.group(1):
            assert "list price: no amount in the CRM" in why.group(1)
        # the comparison of its age is true: with the typical won deal, or, for a stale deal
        # (the model gives it next to nothing), with the longest any deal took to close
        for age, than in re.findall(
            r"open (\d+) days, longer than (?:90% of won \S+ \S+ deals took|any deal took to "
            r"close) \((\d+) days\)",
            block,
        ):
            assert int(age) > int(than)
            compared += 1
    assert compared >= 10, text  # most of the top deals are MavenTech's stale ones
    assert "longer than any deal took to close (138 days)" in text
    assert all(a != b for a, b in zip(whys, whys[1:], strict=False)), whys
    assert len(set(whys)) > len(whys) // 2  # reasons that differ, not one sentence for all
