"""What MLflow shows of a search and of its jobs: params and run descriptions (pure functions, no mlflow).

A parent run's params say how the search ran (controller and its args, seed, workers, backend, limits,
every ``--set``), read from the journal's run_started event, the run's source of truth. A child's
params are what the job trained with: its searched values under the names and spellings the console
and the report use (``search.format.display_name`` / ``format_point_value``), then the fixed
first-level keys of its concrete config (``epochs``, ``learning_rate`` when not searched), with the
run's ``--set`` values applied, so that a job can be reproduced from MLflow alone.
"""

from __future__ import annotations

import json
from typing import Any

from mmar_automl.search.format import display_name, format_point_value, format_value

OVERRIDE_PREFIX = "set."
DESCRIPTION_TAG = "mlflow.note.content"  # MLflow shows it as the run's description


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)


def controller_label(header: dict[str, Any]) -> str:
    controller = header.get("controller") or {}
    return str(controller.get("name") or controller.get("path") or "?")


def parent_params(header: dict[str, Any], backend: str | None = None) -> dict[str, str]:
    """``controller``, ``controller.<arg>``, ``seed``, ``workers``, ``backend``, ``max_jobs`` (and the
    other limits that were given), ``set.<KEY>`` per ``--set`` (a bundle id ``a#b`` as ``set.a.b``)."""
    controller = header.get("controller") or {}
    params: dict[str, str] = {"controller": controller_label(header)}
    for arg, value in sorted((controller.get("args") or {}).items()):
        params[f"controller.{arg}"] = _text(value)
    if header.get("seed") is not None:
        params["seed"] = str(header["seed"])
    if header.get("workers"):
        params["workers"] = " ".join(map(str, header["workers"]))
    params["backend"] = str(header.get("backend") or backend or "local")
    if header.get("jobs_per_gpu") is not None:
        params["jobs_per_gpu"] = str(header["jobs_per_gpu"])
    options = header.get("options") or {}
    for key in ("max_jobs", "time_limit", "job_timeout", "max_retries"):
        if options.get(key) is not None:
            params[key] = format_value(options[key])
    from mmar_automl.tracking.limits import safe_key

    for key, value in sorted((header.get("overrides") or {}).items()):
        # a bundle id's "#" is not allowed in an MLflow key (and one bad key loses the whole batch)
        params[safe_key(OVERRIDE_PREFIX + str(key))] = str(value)
    return params


def exact_value(value: Any) -> str:
    """A searched value as the report spells it (``format_point_value``: ``true``, ``[8,16,32]``,
    ``true,false``), but a float in full (``0.0009782113``, not the report's ``0.0009782``): a param
    must reproduce the job."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)) and any(isinstance(v, float) for v in value):
        return ",".join(exact_value(v) for v in value) if len(value) > 1 else exact_value(value[0])
    return format_point_value(value)


def searched_params(point: dict[str, Any]) -> dict[str, str]:
    """``{display name: value}``: ``RandFlipd.disabled = false``, ``skipDiceLoss/skipDiceCELoss = true,false``."""
    return {display_name(name): exact_value(value) for name, value in point.items()}


def _is_bundle_expression(value: Any) -> bool:
    return isinstance(value, str) and value[:1] in ("$", "@", "%")


def fixed_params(concrete: dict[str, Any] | None, overrides: dict[str, Any], space: Any) -> dict[str, str]:
    """First-level keys of the job's concrete config holding a plain value (a number, a string, a
    boolean, a short list: not a section of components), with the run's ``--set`` values on top (a
    ``--set`` of a first-level key wins over the config, as in the job); keys a dimension searches are
    left out (the searched value is the param)."""
    searched = set()
    for dim in space or ():
        for consumer in getattr(dim, "consumers", ()):
            if tuple(consumer.component) == ():
                searched.add(str(consumer.arg).lstrip("@"))
        searched.add(dim.name)
    out: dict[str, str] = {}
    for key, value in (concrete or {}).items():
        if key in searched or key in ("search", "apply") or isinstance(value, dict):
            continue
        if isinstance(value, list) and (len(value) > 8 or any(isinstance(v, (dict, list)) for v in value)):
            continue
        if any(_is_bundle_expression(v) for v in (value if isinstance(value, list) else [value])):
            continue  # a MONAI bundle's "$..." code or "@id" reference: not a value to compare jobs by
        out[key] = repr(value) if isinstance(value, float) else format_value(value)
    for key, value in overrides.items():
        if key not in searched and (key in out or concrete is None or key in concrete):
            out[key] = str(value)
    return out


def parent_description(run_id: str, mmar_root: str, header: dict[str, Any], space: Any) -> str:
    controller = header.get("controller") or {}
    args = ", ".join(f"{k}={_text(v)}" for k, v in sorted((controller.get("args") or {}).items()))
    dims = ", ".join(display_name(d.name) for d in space) if space is not None else "?"
    sets = " ".join(f"{k}={v}" for k, v in (header.get("overrides") or {}).items())
    lines = [f"AutoML search {run_id} of the MMAR {mmar_root}.",
             f"Controller {controller_label(header)}({args}), seed {header.get('seed')}, "
             f"workers {' '.join(map(str, header.get('workers') or [])) or '?'}.",
             f"Searched: {dims}."]
    if sets:
        lines.append(f"Every job ran with --set {sets}.")
    lines.append("One child run per job (a retry is a new child); the best job's model is logged as an "
                 "MLflow PyTorch model; report.html is the run's HTML report.")
    return "\n\n".join(lines)


def job_description(job: Any, state: str | None = None, score: float | None = None,
                    duration: float | None = None, reason: str | None = None, retry_of_name: str | None = None) -> str:
    """What the job was (and, once it ended, how it ended): one short paragraph per fact. A retry names
    the job it re-runs (``retry_of_name``; its uid when the name is unknown)."""
    where = "GPU " + ",".join(map(str, job.gpus)) if job.gpus else "CPU"
    lines = [f"Job {job.number} ({job.name}) of the search: worker {job.worker} on {where}, "
             f"recommendation {job.recommendation.rec_id}"
             + (f", attempt {job.attempt + 1} (re-runs {retry_of_name or job.retry_of})" if job.attempt else "") + ".",
             "Searched values: " + (" ".join(f"{k}={v}" for k, v in searched_params(dict(job.recommendation.point)).items())
                                    or "none") + ".",
             f"Job folder: {job.folder}"]
    if state is not None:
        result = f"score {score:.6g}" if score is not None else "no score"
        took = f" in {duration:.1f} s" if duration is not None else ""
        lines.append(f"Ended {state}{took}, {result}" + (f": {reason}" if reason and state != "COMPLETE" else "") + ".")
    return "\n\n".join(lines)
