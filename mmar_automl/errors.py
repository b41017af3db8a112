"""Exceptions. Library code raises these; only the CLI prints them and picks the exit code."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

JsonPath = tuple[str | int, ...]


def format_json_path(parts: Iterable[str | int]) -> str:
    """Render ("train", "model", "search", 0, "targets") as ``train.model.search[0].targets``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            # A key holding a newline or other control character is escaped: the error stays one line.
            out += ("." if out else "") + "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(part))
    return out or "<root>"


class MmarAutomlError(Exception):
    """Root of every error mmar-automl raises on purpose."""

    exit_code = 1


class ConfigError(MmarAutomlError):
    """Bad user input: a file, the JSON path inside it, what is wrong and what is expected.

    ``str(err)`` is the one line the CLI prints, e.g.
    ``config/config_train.json: train.model.search[0].targets: float range needs min <= max, got [1.0, 0.1]``.
    """

    exit_code = 2

    def __init__(self, file: str | Path | None, json_path: Iterable[str | int] | str | None, message: str):
        self.file = str(file) if file is not None else None
        if json_path is None or isinstance(json_path, str):
            self.json_path = json_path
        else:
            self.json_path = format_json_path(json_path)
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = [w for w in (self.file, self.json_path) if w]
        return ": ".join([*where, self.message])


class UsageError(MmarAutomlError):
    """A bad command-line argument (exit 2)."""

    exit_code = 2


class JournalError(MmarAutomlError):
    """A run's journal cannot be read or does not match the configs (exit 2: never start afresh silently)."""

    exit_code = 2
