"""The executor of a bundle search: Clara's MMARExecutor with a bundle's job folder and job entry.

Everything else (starting processes through the backend, following metrics.jsonl, time-outs, pruning,
scoring from train_stats.json) is the MMAR executor's, unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmar_automl.run.executor import MMARExecutor
from mmar_automl.run.job import JobRecord


class BundleExecutor(MMARExecutor):
    """``train_config`` (given to ``configure``) is the bundle's config with the ``--set`` overrides
    already applied; a job's config is that config with the point rendered in (search lists removed)."""

    job_config = "configs/train.json"

    def __init__(self, bundle: Any = None, **clara_args: Any):
        super().__init__(**clara_args)
        self.bundle = bundle

    def determine_search_space(self, ctx: Any):
        return self.bundle.search_space(self.train_config)

    def prepare(self, job: JobRecord) -> Path:
        from mmar_automl.search import markers as mk
        from mmar_automl.search import render_config

        assert self.bundle is not None and self.train_config is not None
        concrete = render_config(self.train_config, self._space, dict(job.recommendation.point), mk.BUNDLE)
        extra = {"job": job.name, "job_uid": job.job_uid, "rec_id": job.recommendation.rec_id,
                 "point": dict(job.recommendation.point), "attempt": job.attempt, "retry_of": job.retry_of,
                 "overrides": dict(self.overrides)}   # already written into configs/train.json
        return self.bundle.write_job_folder(Path(job.folder), concrete, extra)

    def job_argv(self, job: JobRecord) -> list[str]:
        return [job.folder]
