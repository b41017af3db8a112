"""A BYOC handler in the style this project was seeded from: ``startup`` creates an MLflow experiment
named after the MMAR folder (``os.getenv('MMAR_ROOT')``, exported by Clara's set_env.sh), ``end_job``
logs the job there with its search values and score."""

import os

import mlflow
from mlflow.tracking import MlflowClient

from automl.components.handlers.handler import Handler
from automl.defs import Context, ContextKey

TRACKING_URI = "sqlite:////claraDevDay/AutoML/seed.db"  # the one line a test changes


class SeedExperimentHandler(Handler):
    def startup(self, ctx: Context):
        root = os.getenv("MMAR_ROOT")
        self.client = MlflowClient(tracking_uri=TRACKING_URI)
        name = os.path.basename(root.rstrip("/"))
        found = self.client.get_experiment_by_name(name)
        self.experiment_id = found.experiment_id if found else self.client.create_experiment(name)

    def end_job(self, ctx: Context):
        run = self.client.create_run(self.experiment_id, run_name=ctx.get_prop(ContextKey.JOB_NAME))
        for prl, values in ctx.get_prop(ContextKey.CONCRETE_SEARCH_VALUE).items():
            self.client.log_param(run.info.run_id, prl.split(":")[1], values[0])
        if ctx.get_prop(ContextKey.SCORE) is not None:
            self.client.log_metric(run.info.run_id, "score", ctx.get_prop(ContextKey.SCORE))
        self.client.set_terminated(run.info.run_id)
