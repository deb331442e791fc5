"""Deal ids as a person reads them. A CRM id pasted through a spreadsheet or a chat can pick up a
zero-width space, a byte-order mark, a right-to-left override or an em space, and then one deal
becomes several; an id typed in lower case, or with a Cyrillic `А` for a Latin `A`, looks like
another deal's id, and `/deal` (which matches ids in any case) cannot tell them apart.

Pure. Ids are cleaned (`clean`), and an id that still only differs by case or by look-alike
letters from another id is reported (`twins`), as is an id mixing Latin with Greek or Cyrillic
letters (`mixed_alphabets`).

Why mixing alphabets is refused: CRM record ids are machine-made (Salesforce's 15/18-character
ids, HubSpot's numbers, MavenTech's codes) and use one alphabet; a Latin id with a Cyrillic
letter in it comes from a copy, a keyboard switched mid-word or a spoof, never from the CRM. Only
Latin, Greek and Cyrillic count (their capitals look alike); an id in Cyrillic alone, or mixing
Latin with Japanese, is left alone.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

import numpy as np
import pandas as pd

from dataset.values import blank_or_spaced

# Greek and Cyrillic letters drawn like Latin ones (mostly as capitals: ids are upper case), as
# the Latin letter they pass for, all case folded. From Unicode's confusables, those alphabets only.
_LOOKS_LATIN = str.maketrans(
    dict(zip("авекмнорстухіјѕԁһԛԝαβεζηικμνορτυχ", "abekmhopctyxijsdhqwabezhikmnoptyx", strict=True))
)
_ALPHABETS = ("LATIN", "GREEK", "CYRILLIC")


def clean(text: str | None) -> str | None:
    """NFKC (full-width `ＡＢ１` is `AB1`, an em space a space), without format characters
    (Unicode category Cf: zero-width spaces, BOMs, direction marks and overrides) and without
    surrounding white space; None if nothing is left."""
    if text is None:
        return None
    if not text.isascii():
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
        text = unicodedata.normalize("NFKC", text)
    return text.strip() or None


_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def salesforce_18(text: str) -> str:
    """A 15-character Salesforce id in its 18-character case-safe form (the one its API and
    CASESAFEID() give); other text unchanged. The 15-character ids of a report differ by case
    alone (`...0Ab` and `...0AB` are two records); the three extra characters encode the case of
    the first 15, so the long ids differ in any case, and a CSV import and a live sync agree."""
    if len(text) != 15 or not text.isascii() or not text.isalnum():
        return text
    suffix = ""
    for block in range(3):
        flags = sum(1 << j for j, ch in enumerate(text[block * 5 : block * 5 + 5]) if ch.isupper())
        suffix += _SUFFIX[flags]
    return text + suffix


def clean_ids(values: pd.Series) -> tuple[pd.Series, dict[str, str]]:
    """Every id cleaned; returns the cleaned ids and what was changed (as written -> cleaned).
    A column of ASCII ids, none blank or with white space at an end, is clean as it is: that is
    checked in C, and only other columns go through `clean` id by id."""
    present = values.dropna().to_list()
    try:
        plain = not blank_or_spaced(present) and "".join(present).isascii()
    except TypeError:  # not all text
        plain = False
    if plain:
        return values, {}
    cleaned = values.map(clean, na_action="ignore")
    changed = values.notna() & (cleaned != values)
    return cleaned, dict(zip(values[changed], cleaned[changed].fillna(""), strict=True))


def mixed_alphabets(text: str) -> list[str]:
    """The alphabets (Latin, Greek, Cyrillic) whose letters an id mixes; [] if one or none."""
    if text.isascii():
        return []
    found = set()
    for ch in text:
        if ch.isalpha():
            alphabet = unicodedata.name(ch, "").split(" ", 1)[0]
            if alphabet in _ALPHABETS:
                found.add(alphabet.title())
    return sorted(found) if len(found) > 1 else []


def skeleton(text: str) -> str:
    """What an id looks like: case folded, Greek and Cyrillic look-alikes read as Latin."""
    return text.casefold().translate(_LOOKS_LATIN)


def twins(ids: pd.Series, known: Iterable[str]) -> dict[int, tuple[str, bool]]:
    """Positions of ids that differ from another id (in `ids` or in `known`, the ids already
    imported) only by case or look-alike letters: position -> (that other id, whether it is
    already imported). An id already imported is kept as it is; among new ids that are twins of
    each other, none can be told to be the right one.

    A million-row export has next to no twins. Each id's look and text are hashed one at a time
    (no column of a million lower-cased copies, no hash table of a million strings: they cost a
    2,000,000-row import 300 MB); only the ids whose look is shared by two texts of different
    hashes are compared exactly (`_twins_among`). Twins with the same text hash would be missed:
    two different ids in 2**64."""
    ids = pd.Series(ids)
    known = list(known)
    values = ids.to_numpy(dtype=object)
    valid = np.flatnonzero(pd.notna(values))
    new_look, new_text = _hashes(values[valid])
    old_look, old_text = _hashes(known)
    look, text = np.concatenate([old_look, new_look]), np.concatenate([old_text, new_text])
    order = np.lexsort((text, look))
    look, text = look[order], text[order]
    two_texts = (look[1:] == look[:-1]) & (text[1:] != text[:-1])
    suspect = np.unique(look[1:][two_texts])
    if not len(suspect):
        return {}
    at = valid[np.isin(new_look, suspect)]
    near = {int(h) for h in suspect}
    kin = [k for k, h in zip(known, old_look.tolist(), strict=True) if h in near]
    found = _twins_among(ids.iloc[at], kin)
    return {int(at[i]): other for i, other in found.items()}


def _hashes(texts) -> tuple[np.ndarray, np.ndarray]:
    """The hash of each text's look (`skeleton`; an ASCII text's is its lower case) and of the
    text itself, as the exact comparison reads them (as strings)."""
    texts = [t if isinstance(t, str) else str(t) for t in texts]
    n = len(texts)
    look = np.fromiter(
        (hash(t.lower() if t.isascii() else skeleton(t)) for t in texts), np.int64, n
    )
    return look, np.fromiter(map(hash, texts), np.int64, n)


def _twins_among(ids: pd.Series, known: list[str]) -> dict[int, tuple[str, bool]]:
    """`twins` by its definition, on ids few enough to compare as whole columns."""
    ids = pd.Series(ids, dtype="string")
    known = pd.Series(known, dtype="string")
    pool = pd.concat([known, ids.dropna()], ignore_index=True).drop_duplicates()
    looks = _looks(pool)
    shared = looks.duplicated(keep=False).to_numpy()
    if not shared.any():
        return {}
    by_look: dict[str, set[str]] = {}
    for text, look in zip(pool[shared], looks[shared], strict=True):
        by_look.setdefault(look, set()).add(text)
    clashing = pool[shared]
    imported = set(clashing[clashing.isin(known)])
    at = ids.isin(clashing).to_numpy() & ~ids.isin(known).to_numpy()
    out: dict[int, tuple[str, bool]] = {}
    for i in np.flatnonzero(at):
        text = ids.iloc[i]
        others = sorted(by_look[skeleton(text)] - {text}, key=lambda o: (o not in imported, o))
        out[int(i)] = (others[0], others[0] in imported)
    return out


def _looks(texts: pd.Series) -> pd.Series:
    """`skeleton` of each text. An ASCII id's skeleton is its lower case, which pandas works out
    for the whole column at once; only the others go through `skeleton` one by one."""
    looks = texts.str.lower()
    other = ~texts.str.isascii().fillna(True).to_numpy(dtype=bool)
    if other.any():
        looks[other] = texts[other].map(skeleton)
    return looks
