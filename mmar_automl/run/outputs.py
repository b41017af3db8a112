"""What a job left in its folder: the one reader, mirroring the trainer's writer (train/outputs.py).

A job folder is an MMAR, so its checkpoint folder is its environment.json's ``MMAR_CKPT_DIR`` (through
``Mmar.at(folder).ckpt_dir``, default ``models``); the file names are the writer's own constants. The
executor, the engine, the MMAR handler (best/, num_mmars_to_keep), packing, report, export-best and
MLflow tracking all ask here, never build ``folder / "models" / ...`` themselves.

Light on purpose (no torch): the orchestrator and the CLI read job outputs.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmar_automl.config.mmar import DEFAULT_CKPT_DIR, ENVIRONMENT_FILE, TRAIN_CONFIG, Mmar
from mmar_automl.errors import ConfigError
from mmar_automl.train.outputs import METRICS_FILE, MODEL_FILE, STATS_FILE

LOG_FILE = "log.txt"            # the job's stdout and stderr (the backend writes it)
LOG_TAIL_LINES = 20
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ts", ".ckpt")
METRIC_KINDS = ("train", "validation")  # the metrics.jsonl records that carry metrics


@dataclass(frozen=True)
class JobOutputs:
    """The files of one job folder (or of any folder laid out like one: ``best/``, an export)."""

    folder: Path
    ckpt_dir: Path

    @classmethod
    def of(cls, folder: str | Path) -> JobOutputs:
        """Where the job in ``folder`` writes; a folder without a readable environment.json uses ``models``."""
        folder = Path(folder)
        try:
            ckpt_dir = Mmar.at(folder).ckpt_dir
        except ConfigError:
            ckpt_dir = folder.resolve() / DEFAULT_CKPT_DIR
        return cls(folder.resolve(), ckpt_dir)

    # -- paths --------------------------------------------------------------------------------------

    @property
    def metrics_file(self) -> Path:
        return self.ckpt_dir / METRICS_FILE

    @property
    def stats_file(self) -> Path:
        return self.ckpt_dir / STATS_FILE

    @property
    def model_file(self) -> Path:
        return self.ckpt_dir / MODEL_FILE

    @property
    def config_file(self) -> Path:
        """The job's concrete training config: config/config_train.json, or configs/train.json in the job
        folder of a MONAI bundle (docs/bundles.md)."""
        from mmar_automl.bundle.project import JOB_CONFIG

        bundle_config = self.folder / JOB_CONFIG
        return bundle_config if bundle_config.is_file() else self.folder / TRAIN_CONFIG

    @property
    def environment_file(self) -> Path:
        """The job's concrete environment.json (absolute paths, the run's --set values); a bundle's job
        folder has none."""
        return self.folder / ENVIRONMENT_FILE

    @property
    def log_file(self) -> Path:
        return self.folder / LOG_FILE

    @property
    def ckpt_subdir(self) -> str:
        """The checkpoint folder relative to the job folder (``models``, ``ckpt``...), as a Ray node or a
        copy of the job (``best/``) needs it; a checkpoint folder outside the job folder gives ``models``
        (jobfolder.absolutize_environment keeps a job's inside)."""
        try:
            return str(self.ckpt_dir.relative_to(self.folder))
        except ValueError:
            return DEFAULT_CKPT_DIR

    # -- reading ------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any] | None:
        """train_stats.json, None when missing or unreadable (a job killed before the end)."""
        try:
            data = json.loads(self.stats_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def metrics(self, skip: int = 0) -> list[dict[str, Any]]:
        """The records of metrics.jsonl less the first ``skip`` train/validation ones (see read_metrics_file)."""
        return read_metrics_file(self.metrics_file, skip)

    def follower(self) -> MetricsFollower:
        return MetricsFollower(self.metrics_file)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return read_log_tail(self.log_file, lines)

    def checkpoints(self) -> list[Path]:
        """Every checkpoint file under the checkpoint folder (what num_mmars_to_keep deletes)."""
        if not self.ckpt_dir.is_dir():
            return []
        return sorted(p for p in self.ckpt_dir.rglob("*") if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES)

    def copy_results(self, dest_folder: Path) -> Path:
        """Copy model.pt, train_stats.json and metrics.jsonl (those that exist) to the same checkpoint
        subfolder of ``dest_folder``; returns that folder."""
        dest = Path(dest_folder) / self.ckpt_subdir
        dest.mkdir(parents=True, exist_ok=True)
        for src in (self.model_file, self.stats_file, self.metrics_file):
            if src.is_file():
                shutil.copy2(src, dest / src.name)
        return dest


def read_metrics_file(path: str | Path, skip: int = 0) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl (a torn last line, from a job still writing or killed, is skipped),
    less the first ``skip`` train/validation records (those already sent live)."""
    records = []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            if skip > 0 and rec.get("kind") in METRIC_KINDS:
                skip -= 1
                continue
            records.append(rec)
    return records


def read_log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log (read from its last 16 KiB)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16384))
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class MetricsFollower:
    """Reads the complete new lines of a growing ``metrics.jsonl`` (a half-written line waits)."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        records = []
        for line in data[: end + 1].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records
