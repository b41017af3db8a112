"""The executor of a bundle search: Clara's MMARExecutor with a bundle's job folder and job entry.

Everything else (starting processes through the backend, following metrics.jsonl, time-outs, pruning,
scoring from train_stats.json) is the MMAR executor's, unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmar_automl.bundle.project import JOB_CONFIG
from mmar_automl.run.executor import MMARExecutor
from mmar_automl.run.job import JobRecord


class BundleExecutor(MMARExecutor):
    """``configure(mmar=bundle)`` takes a ``Bundle`` opened with the run's ``--set`` ids written in; a
    job's config is that config with the point rendered in (search lists removed)."""

    job_config = JOB_CONFIG

    def determine_search_space(self, ctx: Any):
        assert self.mmar is not None
        return self.mmar.search_space()

    def prepare(self, job: JobRecord) -> Path:
        from mmar_automl.search import markers as mk
        from mmar_automl.search import render_config

        assert self.mmar is not None and self.mmar.train_config is not None
        concrete = render_config(self.mmar.train_config, self._space, dict(job.recommendation.point), mk.BUNDLE)
        extra = {"job": job.name, "job_uid": job.job_uid, "rec_id": job.recommendation.rec_id,
                 "point": dict(job.recommendation.point), "attempt": job.attempt, "retry_of": job.retry_of}
        return self.mmar.write_job_folder(Path(job.folder), concrete, extra)

    def job_argv(self, job: JobRecord) -> list[str]:
        """The job folder is a bundle holding everything (the point and the --set ids written in)."""
        return [job.folder]
