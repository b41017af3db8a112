"""'Did you mean ...?' by edit distance, for unknown names in user configs."""

from __future__ import annotations

from collections.abc import Iterable


def edit_distance(a: str, b: str) -> int:
    """Edit distance counting insert, delete, substitute and swapping two neighbours ("nrom" -> "norm"
    is one edit), case-insensitive."""
    a, b = a.lower(), b.lower()
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


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
