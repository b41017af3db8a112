"""``export-best``: the best job of a run as a standalone MMAR that ``mmar-automl train`` continues.

What DEST holds (docs/report.md says the same for users):
- the job folder's key content (config/ with the concrete config_train.json, commands/, resources/,
  docs/, custom/BYOC code); the job's config already has absolute data paths, and its
  environment.json absolute ``DATA_ROOT``/``DATASET_JSON``, so DEST works from anywhere on this machine;
- the run's ``--set`` values, which the job folder's config and environment.json already hold;
- the job's best checkpoint at ``MMAR_CKPT`` (environment.json; default ``<MMAR_CKPT_DIR>/model.pt``), with
  ``MMAR_CKPT`` written into environment.json, and a first-level ``dont_load_ckpt_model`` set to false
  so that the config's CheckpointLoader (``load_path: {MMAR_CKPT}``) starts from the exported weights;
- ``docs/automl_export.json`` and ``.md`` (run, job, score, parameters, config difference from the base
  config) and ``docs/automl_job/`` (the job's train_stats.json, metrics.jsonl, log.txt).
Built in a temporary folder next to DEST and renamed into place: DEST is complete or absent.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmar_automl.config.mmar import ENVIRONMENT_FILE, TRAIN_CONFIG
from mmar_automl.errors import UsageError
from mmar_automl.handlers.mmar import BEST_DIR, read_best_info
from mmar_automl.report.data import best_config_diff, diff_label, load_report
from mmar_automl.run.outputs import JobOutputs
from mmar_automl.search.format import display_name
from mmar_automl.train.outputs import MODEL_FILE



@dataclass
class ExportResult:
    dest: Path
    run_id: str
    job: str
    score: float
    model: Path | None                 # the checkpoint in DEST, None when the job kept none
    notes: list[str] = field(default_factory=list)


def export_best(mmar: str | Path, dest: str | Path, run_id: str | None = None) -> ExportResult:
    """Export the best scored job of ``run_id`` (default: the newest run) to ``dest``.

    UsageError (exit 2): DEST exists and is not empty, unknown run, no scored job, job folder gone."""
    dest = Path(dest).resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"{dest}: exists and is not empty; export-best writes a new folder")
    report = load_report(mmar, run_id)
    best = report.best
    if best is None:
        raise UsageError(f"run {report.run_id} has no scored job: nothing to export")
    job_dir = Path(best.record.folder)
    job_config = JobOutputs.of(job_dir).config_file
    if not job_config.is_file():
        raise UsageError(f"{job_config}: the best job's folder is gone; cannot export {best.name}")
    if dest == job_dir or job_dir in dest.parents:
        raise UsageError(f"{dest}: choose a folder outside the job folder {job_dir}")
    if job_config.parent.name == "configs":
        return _export_bundle(report, job_dir, dest)   # a MONAI bundle's job (docs/bundles.md)

    from mmar_automl.run.jobfolder import clone_key_content, write_json_atomic

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.export-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    notes: list[str] = []
    try:
        clone_key_content(job_dir, tmp)
        if report.overrides:
            notes.append("the run's --set values are written in: " + " ".join(
                f"{k}={v}" for k, v in report.overrides.items()) + " (the job's config and environment.json hold them)")
        env = _read_json(tmp / ENVIRONMENT_FILE) or {}
        job_outputs = JobOutputs.of(job_dir)
        ckpt_dir = job_outputs.ckpt_subdir
        model_rel = _relative(env.get("MMAR_CKPT")) or f"{ckpt_dir}/{MODEL_FILE}"
        source = _checkpoint(report, job_outputs.model_file)
        model = None
        if source is not None:
            model = tmp / model_rel
            model.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, model)
            env["MMAR_CKPT"] = model_rel
            write_json_atomic(tmp / ENVIRONMENT_FILE, env)
            config = _read_json(tmp / TRAIN_CONFIG)
            if isinstance(config, dict) and "dont_load_ckpt_model" in config:
                config["dont_load_ckpt_model"] = False
                write_json_atomic(tmp / TRAIN_CONFIG, config)
                notes.append("dont_load_ckpt_model set to false: training starts from the exported model")
            else:
                notes.append("the config has no dont_load_ckpt_model key: point a CheckpointLoader at "
                             "{MMAR_CKPT} to continue from the exported model")
        else:
            notes.append(f"{best.name} kept no {MODEL_FILE} (num_mmars_to_keep?): exported without weights")
        (tmp / ckpt_dir).mkdir(parents=True, exist_ok=True)
        _write_docs(report, tmp, model_rel if model is not None else None, notes)
        if dest.exists():
            dest.rmdir()  # empty (checked above)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(dest, report.run_id, best.name, float(best.score), dest / model_rel if model else None,
                        notes)


def _export_bundle(report: Any, job_dir: Path, dest: Path) -> ExportResult:
    """A bundle job folder is already a bundle with the point and the ``--set`` values in its
    configs/train.json: copy it (links to data stay links) with its best checkpoint where the bundle's
    own CheckpointSaver wrote it (models/model.pt), and the export notes in docs/."""
    best = report.best
    outputs = JobOutputs.of(job_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.export-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    notes = ["the run's --set values and the job's point are written in configs/train.json"]
    skipped = {outputs.ckpt_subdir, outputs.log_file.name, "automl_job.json"}
    try:
        shutil.copytree(job_dir, tmp, symlinks=True,
                        ignore=lambda folder, names: skipped if Path(folder) == job_dir else set())
        source = _checkpoint(report, outputs.model_file)
        model_rel = f"{outputs.ckpt_subdir}/{MODEL_FILE}"
        (tmp / outputs.ckpt_subdir).mkdir(parents=True)
        if source is not None:
            shutil.copy2(source, tmp / model_rel)
        else:
            notes.append(f"{best.name} kept no {MODEL_FILE} (num_mmars_to_keep?): exported without weights")
        _write_docs(report, tmp, model_rel if source is not None else None, notes)
        if dest.exists():
            dest.rmdir()
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(dest, report.run_id, best.name, float(best.score),
                        dest / model_rel if source is not None else None, notes)


def _checkpoint(report: Any, job_model: Path) -> Path | None:
    """The job's model.pt, else the copy in ``automl/<run>/best/`` when best/ holds that job."""
    if job_model.is_file():
        return job_model
    info = read_best_info(report.run_dir)
    if info is not None and info.get("job_uid") == report.best.record.job_uid:
        candidate = JobOutputs.of(report.run_dir / BEST_DIR).model_file
        if candidate.is_file():
            return candidate
    return None


def _write_docs(report: Any, root: Path, model_rel: str | None, notes: list[str]) -> None:
    best = report.best
    diff, diff_note = best_config_diff(report)
    origin = {
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "mmar": str(report.mmar_root), "run_id": report.run_id, "job": best.name, "job_uid": best.record.job_uid,
        "job_folder": best.record.folder, "score": best.score, "params": best.params,
        "point": dict(best.record.recommendation.point), "model": model_rel,
        "config_diff": diff, "config_diff_note": diff_note, "notes": notes,
    }
    docs = root / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "automl_export.json").write_text(json.dumps(origin, indent=2, default=str) + "\n", encoding="utf-8")
    lines = [f"# Best job of AutoML run {report.run_id}", "",
             f"Exported from `{report.mmar_root}`, job `{best.name}` (score {best.score:.6g}).", "",
             "Continue training: `mmar-automl train <this folder>` (or `commands/train.sh`).", "",
             "## Parameters", "", *[f"- `{display_name(k)}` = `{v}`" for k, v in best.params.items()], "",
             "## Config difference from the base config", ""]
    lines += [f"- `{diff_label(d)}`: {_md_value(d, 'old')} -> {_md_value(d, 'new')}" for d in diff or []]
    lines += ["", "## Notes", "", *[f"- {n}" for n in notes], ""]
    (docs / "automl_export.md").write_text("\n".join(lines), encoding="utf-8")
    job_docs = docs / "automl_job"
    job_docs.mkdir(exist_ok=True)
    outputs = JobOutputs.of(best.record.folder)
    for src in (outputs.stats_file, outputs.metrics_file, outputs.log_file, outputs.folder / "automl_job.json"):
        if src.is_file():
            shutil.copy2(src, job_docs / src.name)


def _md_value(item: dict[str, Any], key: str) -> str:
    """A difference's side in Markdown; a key only the other side has is ``(absent)``, not ``null``."""
    return f"`{json.dumps(item[key])}`" if key in item else "(absent)"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _relative(value: Any) -> str | None:
    """A usable relative path from environment.json (absolute or ``{VAR}`` values are not)."""
    if isinstance(value, str) and value and "{" not in value and not os.path.isabs(value):
        return value
    return None
