"""How a point's values are shown to people (console, report, MLflow-free and torch-free): JSON
spellings (``true``, ``[16,32,64]``), floats to 4 significant digits, an enum choice by its single
value or, for a dimension that drives several args, its values joined by ","."""

from __future__ import annotations

import json
import re
from typing import Any

_INDEX = re.compile(r"\[(\d+)\]")
_NOT_KEY_CHARS = re.compile(r"[^/\w.\- :]")


def format_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (int, str)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def format_point_value(value: Any) -> str:
    """A dimension's value in a point: floats are never lists, so a list is an enum choice."""
    if not isinstance(value, (list, tuple)):
        return format_value(value)
    if len(value) == 1:
        return format_value(value[0])
    return ",".join(format_value(v) for v in value)


def display_name(name: str) -> str:
    """A dimension's readable name as every output shows it: console, report (table, HTML, JSON
    ``display``) and the MLflow param key, so that one job reads the same everywhere.

    MLflow keys allow only letters, digits, ``_ - . / :`` and spaces, so the name is spelled with those:
    Clara's ``@`` marker is dropped (``RandFlipd.@disabled`` -> ``RandFlipd.disabled``: the attribute is
    ``disabled``), the args of a multi-arg dimension are joined by ``/`` instead of ``,``
    (``skipDiceLoss/skipDiceCELoss``), a list index becomes a path part (``pre_transforms.7.prob``) and
    any other character ``_``. The journal keeps the dimension's own name: this is only how it is shown."""
    text = _INDEX.sub(r".\1", name.replace("@", "").replace(",", "/"))
    return _NOT_KEY_CHARS.sub("_", text).strip("/") or "_"
