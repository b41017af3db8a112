"""A job's best checkpoint as an MLflow PyTorch model (the ``mlflow.pytorch`` flavour), so that the
best job's model can be registered from MLflow's UI.

``model.pt`` holds a state_dict (key ``model``); an MLflow PyTorch model needs the network itself. The
network is rebuilt from the job's concrete config (``train.model``, with the run's ``--set`` values)
by the trainer's own builder (a bundle job's: the trainer's ``network`` by MONAI's ConfigParser), the weights are loaded, and ``mlflow.pytorch.save_model`` writes the
model folder ``<job>/<MMAR_CKPT_DIR>/mlflow_model``. That needs torch and monai, which the
orchestrator never imports, so it runs in a subprocess:
``python -m mmar_automl.tracking.pytorch_model JOB_FOLDER [KEY=VALUE ...]``.
The folder is saved once and reused (a replay or ``sync`` uploads the same files).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

MODEL_DIR = "mlflow_model"
TIMEOUT = 280.0


def model_dir(folder: str | Path) -> Path:
    from mmar_automl.run.outputs import JobOutputs

    return JobOutputs.of(folder).ckpt_dir / MODEL_DIR


def save_in_subprocess(folder: str | Path, overrides: dict[str, str] | None = None) -> tuple[Path | None, str]:
    """``(the saved model folder, "")``, or ``(None, why)`` when it could not be saved."""
    out = model_dir(folder)
    if (out / "MLmodel").is_file():
        return out, ""
    from mmar_automl.run.outputs import JobOutputs

    if not JobOutputs.of(folder).model_file.is_file():
        return None, "the job has no model.pt"
    args = [f"{k}={v}" for k, v in (overrides or {}).items()]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "CUDA_VISIBLE_DEVICES": ""}
    try:
        done = subprocess.run([sys.executable, "-m", "mmar_automl.tracking.pytorch_model", str(folder), *args],
                              capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=str(folder))
    except subprocess.TimeoutExpired:
        return None, f"saving the model took over {TIMEOUT:.0f} s"
    if done.returncode != 0 or not (out / "MLmodel").is_file():
        lines = (done.stderr or done.stdout or "").strip().splitlines()
        return None, (lines[-1] if lines else f"exit {done.returncode}")[:300]
    return out, ""


def save(folder: str | Path, overrides: list[str]) -> Path:
    """Rebuild the job's network, load its best weights, save the MLflow model folder; returns it."""
    import torch

    import mlflow.pytorch
    from mmar_automl.config.mmar import Mmar
    from mmar_automl.run.outputs import JobOutputs
    from mmar_automl.train.resolver import Builder
    from mmar_automl.train.run import _inside_mmar
    from mmar_automl.train.wiring import wire

    from mmar_automl.bundle import is_bundle

    folder = Path(folder).resolve()
    with _inside_mmar(folder):
        if is_bundle(folder):
            network = _bundle_network(folder, overrides)
        else:
            mmar = Mmar.open(folder, overrides=overrides)  # the job folder's config holds them already: idempotent
            conf = wire(mmar.substituted_config(), mmar.variables())
            network = Builder(conf, str(mmar.train_config_file), mmar.root, "cpu", warn=lambda _m: None).get("train", "model")
        state = torch.load(JobOutputs.of(folder).model_file, map_location="cpu", weights_only=False)
        network.load_state_dict(state["model"] if isinstance(state, dict) and "model" in state else state)
        network.eval()
        out = model_dir(folder)
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        import monai

        # Explicit requirements: MLflow would otherwise infer them by loading the model in yet another process.
        # pickle: the pt2 format (the default) needs an input example, which a config does not give.
        mlflow.pytorch.save_model(network, str(tmp), serialization_format="pickle", pip_requirements=[f"torch=={torch.__version__.split('+')[0]}",
                                                                       f"monai=={monai.__version__}"],
                                  metadata={"source": "mmar-automl", "job_folder": str(Path(folder).resolve()),
                                            "epoch": json.dumps(state.get("epoch") if isinstance(state, dict) else None)})
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    return out


def _bundle_network(folder: str | Path, overrides: list[str]) -> object:
    """A bundle job's network as MONAI builds it: the trainer's ``network`` of the job's concrete
    configs/train.json (the point and --set values are in it already), on the CPU."""
    from monai.bundle import ConfigParser

    from mmar_automl.bundle.project import Bundle, trainer_id

    bundle = Bundle.open(folder, overrides=overrides)
    conf = bundle.train_config
    assert conf is not None
    conf["bundle_root"] = str(bundle.root)
    conf["device"] = "$torch.device('cpu')"
    parser = ConfigParser(conf)
    return parser.get_parsed_content(f"{trainer_id(conf)}#network").to("cpu")


def main(argv: list[str]) -> int:
    try:
        print(save(argv[0], argv[1:]))
    except Exception as err:  # noqa: BLE001 - one line for the caller's warning
        print(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
