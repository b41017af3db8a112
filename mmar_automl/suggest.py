"""'Did you mean ...?' by edit distance, for unknown names in user configs."""

from __future__ import annotations

from collections.abc import Iterable


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute), case-insensitive."""
    a, b = a.lower(), b.lower()
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def closest(word: str, options: Iterable[str]) -> str | None:
    """The option nearest to ``word`` if it is near enough to be a typo (at most a third of its letters)."""
    best, best_d = None, None
    for option in options:
        d = edit_distance(word, option)
        if best_d is None or d < best_d:
            best, best_d = option, d
    if best is None or best_d is None or best_d > max(1, len(word) // 3):
        return None
    return best


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` or ``""``: ready to append to a message."""
    hit = closest(word, options)
    return f" (did you mean {hit!r}?)" if hit else ""
