"""The one console of the CLI: messages go to stderr, results alone to stdout; no markup, so a JSON
path such as ``search[0]`` prints as written."""

from __future__ import annotations

from rich.console import Console

console = Console(stderr=True, markup=False, emoji=False, highlight=False)
stdout = Console(markup=False, emoji=False, highlight=False)
