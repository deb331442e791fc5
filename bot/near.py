"""Words one typo away from what someone typed: how `/deal` suggests an id or an account in a run
too big for difflib (which compares the query with every candidate: seconds for a million ids).

Generating every string one edit away (a character left out, added, changed, or two neighbours
swapped) and looking each up in a dict is a few thousand lookups whatever the run's size.
"""

from __future__ import annotations

import string

ALPHABET = string.ascii_lowercase + string.digits + " -_.&'"


def one_typo(word: str, alphabet: str = ALPHABET) -> set[str]:
    """Every string one edit from `word` (lower case), with the characters of `alphabet` and of
    the word itself; `word` not included."""
    word = word.lower()
    letters = "".join(dict.fromkeys(alphabet + word))
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    edits = {a + b[1:] for a, b in splits if b}
    edits |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    edits |= {a + c + b[1:] for a, b in splits if b for c in letters}
    edits |= {a + c + b for a, b in splits for c in letters}
    edits.discard(word)
    return edits
