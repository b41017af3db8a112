"""A BYOC handler written as for Clara Train 4.x: logs each finished job to MLflow from ``end_job`` under
a ``threading.Lock`` (Clara called handlers from job threads), with ``k.split(":")[1]`` as the param name
and ``v[0]`` as its value; reads the job name through Clara's literal ``"_jobName"``. Every event it sees
is appended to ``$MMAR_ROOT/events.jsonl``."""

import json
import os
import threading

import mlflow

from automl.components.handlers.handler import Handler
from automl.defs import Context, ContextKey, Status

TRACKING_URI = "sqlite:////claraDevDay/AutoML/mlruns.db"  # the one line a test changes


class LockedMLflowHandler(Handler):
    def __init__(self):
        Handler.__init__(self)
        self.lock = threading.Lock()
        self.seen_recs = []

    def _note(self, *event):
        with open(os.path.join(os.getenv("MMAR_ROOT"), "events.jsonl"), "a") as f:
            f.write(json.dumps(list(event)) + "\n")

    def startup(self, ctx: Context):
        self._note("startup", ctx.get_prop(ContextKey.NUM_WORKERS), ctx.get_prop(ContextKey.GPUS))

    def recommendations_available(self, ctx: Context):
        for rec in ctx.get_prop(ContextKey.RECOMMENDATIONS):
            rec.result.dump()
            self.seen_recs.append(rec.rec_id)
            self._note("recommendation", rec.rec_id, sorted(rec.result.values))

    def start_job(self, ctx: Context):
        rec = ctx.get_prop("_recommendation")
        self._note("start_job", ctx.get_prop("_jobName"), rec.rec_id)

    def end_job(self, ctx: Context):
        job_name = ctx.get_prop("_jobName")
        values = ctx.get_prop(ContextKey.CONCRETE_SEARCH_VALUE)
        score = ctx.get_prop(ContextKey.SCORE)
        status = ctx.get_prop(ContextKey.JOB_STATUS)
        with self.lock:
            mlflow.set_tracking_uri(TRACKING_URI)
            with mlflow.start_run(run_name=job_name):
                for k, v in values.items():
                    mlflow.log_param(k.split(":")[1], v[0])
                mlflow.log_metric("Acc", score)
                mlflow.set_tag("status", "ok" if status == Status.COMPLETE else str(status))
        self._note("end_job", job_name, ctx.get_prop("_processExitStatus"))

    def round_ended(self, ctx: Context):
        self._note("round_ended")

    def shutdown(self, ctx: Context):
        self._note("shutdown")
