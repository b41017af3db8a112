"""MLflow's length limits, and how a value that does not fit is cut: the stored value ends with a
marker naming the artifact that holds the full text, so nothing is lost silently.

The numbers mirror ``mlflow.utils.validation`` (3.17.2); a test checks they still agree, so that
this module need not import mlflow.
"""

from __future__ import annotations

import re

MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_KEY_LENGTH = 250
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000

FULL_VALUES_DIR = "full_values"
_BAD_KEY_CHARS = re.compile(r"[^/\w.\- :]")


def safe_key(name: str) -> str:
    """A param/metric/tag key MLflow accepts: ``RandGaussianNoised.@disabled`` -> ``RandGaussianNoised.disabled``,
    a bundle id ``train#dataloader#batch_size`` -> ``train.dataloader.batch_size``.

    MLflow keys allow letters, digits, ``_ - . / :`` and spaces; other characters become ``_``, and a
    key over the length limit is cut (keys are ours, so a cut key needs no artifact)."""
    # a bundle id's "#" reads as the report's dots (train#dataloader#batch_size -> train.dataloader.batch_size)
    key = _BAD_KEY_CHARS.sub("_", name.replace("@", "").replace("#", "."))
    key = re.sub(r"/+", "/", key).strip("/") or "_"
    # "a/../b" would resolve to another name: MLflow refuses such keys.
    key = "/".join(part if part not in (".", "..") else "_" for part in key.split("/"))
    return key[:MAX_KEY_LENGTH]


def artifact_file_for(kind: str, key: str) -> str:
    """Where the full value of an over-long param or tag is saved, e.g. ``full_values/param/model.channels.txt``."""
    return f"{FULL_VALUES_DIR}/{kind}/{key.replace('/', '_')}.txt"


def fit(value: str, limit: int, artifact_file: str) -> tuple[str, str | None]:
    """``(value that fits, full value or None)``: a value over ``limit`` keeps its head and ends with a
    marker naming ``artifact_file``; the caller saves the returned full value there."""
    if len(value) <= limit:
        return value, None
    marker = f"...[truncated {len(value)} chars; full value in artifact {artifact_file}]"
    return value[: max(0, limit - len(marker))] + marker, value


def fit_params(params: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Fit every param value; returns ``(params, {artifact file: full value})``."""
    return _fit_all(params, MAX_PARAM_VAL_LENGTH, "param")


def fit_tags(tags: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Fit every tag value; returns ``(tags, {artifact file: full value})``."""
    return _fit_all(tags, MAX_TAG_VAL_LENGTH, "tag")


def _fit_all(values: dict[str, str], limit: int, kind: str) -> tuple[dict[str, str], dict[str, str]]:
    out: dict[str, str] = {}
    full: dict[str, str] = {}
    for key, value in values.items():
        artifact = artifact_file_for(kind, key)
        out[key], whole = fit(str(value), limit, artifact)
        if whole is not None:
            full[artifact] = whole
    return out, full
