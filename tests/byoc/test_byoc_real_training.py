"""The one BYOC test with real training: the classification template, its commands/automl.sh called as
Clara users called theirs, and a Clara-style MLflow handler from BYOC/ called for each real job."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from byoc_mmar import FILES
from mmar_automl.scaffold.init import init_mmar

pytestmark = pytest.mark.slow


def test_template_automl_sh_with_a_clara_handler_and_real_jobs(tmp_path):
    root = init_mmar(tmp_path / "cls", "classification_2d", synthetic_data=8).root
    store = f"sqlite:///{tmp_path / 'byoc.db'}"
    (root / "BYOC").mkdir(exist_ok=True)
    text = (FILES / "locked_mlflow.py").read_text().splitlines()
    (root / "BYOC" / "locked_mlflow.py").write_text(
        "\n".join(f'TRACKING_URI = "{store}"' if ln.startswith("TRACKING_URI = ") else ln for ln in text) + "\n")
    automl = json.loads((root / "config" / "config_automl.json").read_text())
    automl.setdefault("handlers", []).append({"path": "locked_mlflow.LockedMLflowHandler"})
    (root / "config" / "config_automl.json").write_text(json.dumps(automl, indent=2))

    env = {k: v for k, v in os.environ.items() if k != "MMAR_ROOT"}
    env.update({"MMAR_AUTOML": f"{sys.executable} -m mmar_automl", "OMP_NUM_THREADS": "1"})
    cmd = [str(root / "commands" / "automl.sh"), "config_train", "--seed", "0", "--max-jobs", "2",
           "--workers", "cpu", "--no-mlflow", "--set", "epochs=2", "--set", "num_interval_per_valid=1"]
    proc = subprocess.run(cmd, cwd=root / "commands", env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # The template's PRLs end in "@skipAugmentation" and "init_features,growth_rate": MLflow refuses "@" and ","
    # in a param name, so this handler's log_param(k.split(":")[1], ...) fails on every job, as it would have
    # in Clara (docs/byoc.md, item 8): one warning per job, and the search goes on.
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 2 and all("handler LockedMLflowHandler failed on end_job: MlflowException: Invalid "
                                      'value "@skipAugmentation"' in w for w in warnings), proc.stderr

    run_dir = root / "automl" / "config_train"
    ended = [json.loads(ln)["job"] for ln in (run_dir / "journal.jsonl").read_text().splitlines()
             if json.loads(ln)["op"] == "job_ended"]
    assert len(ended) == 2 and all(j["state"] == "COMPLETE" and j["score"] is not None for j in ended)
    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs([client.get_experiment_by_name("Default").experiment_id])
    by_name = {f"W{j['worker']}_{j['worker_seq']}_J{j['number']}": j for j in ended}
    assert sorted(r.info.run_name for r in runs) == sorted(by_name)
    assert all(run.info.status == "FAILED" for run in runs)  # mlflow.start_run() ended them on the error
    seen = [json.loads(ln) for ln in (root / "events.jsonl").read_text().splitlines()]
    assert sorted(e[1] for e in seen if e[0] == "start_job") == sorted(by_name)
    assert [e[0] for e in seen][0] == "startup" and [e[0] for e in seen][-1] == "shutdown"
