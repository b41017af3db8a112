"""GPU benchmark of mmar-automl (issues 8, 19): one script, one GPU machine, under 10 minutes; a table and JSON.

(a) training samples/s of the segmentation_3d template sized up (UNet 16..256 with BatchNorm, 96^3
    volumes, batch 8) with mmar-automl's trainer, one fast path at a time and all together, versus a plain
    MONAI tutorial-style loop (same model, loss, optimizer, data, transforms and batch size; fp32, fp16
    autocast + GradScaler, bf16 autocast, bf16 + channels_last_3d, and an InstanceNorm UNet in bf16 with
    and without channels_last_3d: the norm types the channels_last rule is about), all in one process (a
    child of this script, so that its GPU memory is gone before (b)). "trainer, bf16" is compared with
    "plain loop bf16": the same AMP, no other path;
(b) trials per hour of a 12-job search of the template (UNet 8..64 as searched, 64^3, batch 4) with
    ``--jobs-per-gpu 1`` versus ``auto``, each a real ``mmar-automl run`` (launcher, job processes,
    journal; ``--no-mlflow``: MLflow is not carried to the GPU machine), both running the same jobs on the
    bf16 path (``amp`` on, ``fast_paths.amp_dtype: auto``, the template's determinism and
    ``cudnn_benchmark: false`` dropped) to the end: no time limit cuts either (a run the safety limit cut
    is reported and not compared). Trials/hour over the whole span and after the first job ended (``auto``
    runs one job alone until a peak is measured; a long search pays that once);
(c) what each search of (b) did with the GPU: the SM activity of the GPU(s) it ran on (NVML GPM
    ``SM_UTIL``, Hopper and later; elsewhere NVML's utilisation, which counts any kernel running and is
    labelled so) sampled between its first job's start and its last job's end, and the training samples/s
    of the whole search (epochs x training volumes of its complete jobs over the span);
(d) on a machine with 2+ GPUs (``--parts d``, or a,b,d): one DDP job over 2 GPUs against the same job on
    one GPU (scripts/bench_ddp.py: samples/s, speed-up, scaling efficiency; docs/multi-gpu.md).

Targets (issue 8): trainer >= 2.5x the plain fp32 loop; auto >= 3x the trials/hour of one job per GPU
(after the first job); SM activity >= 85% during the packed search. Samples/s count the epochs after the
first (cuDNN autotuning, caching and allocator warm-up happen in the first).

    PYTHONUNBUFFERED=1 python3 scripts/bench_gpu.py [--json out.json] [--parts a,b] [--with-compile]
    .venv/bin/python scripts/bench_gpu.py --cpu-dry-run     # tiny sizes on the CPU: checks the script end to end

docs/gpu.md gives the device command line (wheels from scripts/gpu_wheels.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SIZES: dict[str, dict[str, Any]] = {
    # GPU: the measurement set-up for (a); "small template jobs" for (b)
    "gpu": {"a_size": 96, "a_volumes": 48, "a_batch": 8, "a_epochs": 6, "a_channels": [16, 32, 64, 128, 256],
            "a_strides": [2, 2, 2, 2], "b_size": 64, "b_volumes": 40, "b_jobs": 12, "b_epochs": 8, "b_batch": 4,
            "b_valid_every": 4, "modes": ["auto", "1"]},
    # --cpu-dry-run: every code path, tiny sizes (a 2-core CPU); "2" stands for auto (auto keeps 1 on CPUs)
    "cpu": {"a_size": 32, "a_volumes": 6, "a_batch": 2, "a_epochs": 2, "a_channels": [4, 8, 16], "a_strides": [2, 2],
            "b_size": 32, "b_volumes": 6, "b_jobs": 4, "b_epochs": 2, "b_batch": 2, "b_valid_every": 1,
            "modes": ["2", "1"]},
}
# The fast-path keys of each trainer row of (a) (every path is off by default: docs/gpu.md).
LOADER_OVERLAP = {"thread_loader": True, "pin_memory": True, "non_blocking": True}
TRAINER_ROWS: dict[str, dict[str, Any] | None] = {
    "trainer, fast paths off, fp32": None,
    "trainer, config amp (MONAI fp16 + GradScaler)": {},
    "trainer, bf16": {"amp_dtype": "bf16"},
    "trainer, bf16 + channels_last": {"amp_dtype": "bf16", "channels_last": True},
    "trainer, bf16 + loader overlap": {"amp_dtype": "bf16", **LOADER_OVERLAP},
    "trainer, bf16 + cudnn_benchmark": {"amp_dtype": "bf16", "cudnn_benchmark": True},
    "trainer, every path": {"amp_dtype": "bf16", "channels_last": True, "cudnn_benchmark": True, "tf32": True,
                            **LOADER_OVERLAP},
}
TARGETS = {"trainer_vs_plain_fp32": 2.5, "auto_vs_one_trials_per_hour": 3.0, "gpu_util_pct": 85.0}
TEMPLATE = "segmentation_3d"
GIB = 2**30


# -- shared ----------------------------------------------------------------------------------------------

def make_mmar(root: Path, volumes: int, size: int, seed: int = 0) -> Path:
    """The segmentation_3d template with ``volumes`` synthetic pairs of ``size``^3 (3/4 train, 1/4 validation)."""
    from mmar_automl.scaffold.init import init_mmar
    from mmar_automl.config.mmar import Mmar
    from mmar_automl.scaffold.synthetic import SyntheticSpec, write_dataset

    init_mmar(root, TEMPLATE, force=True)
    env = Mmar.at(root).absolute_environment()
    write_dataset(SyntheticSpec("segmentation", volumes, size, seed=seed, noise=0.5), Path(env["DATA_ROOT"]),
                  Path(env["DATASET_JSON"]))
    return root


def blocked_imports(folder: Path) -> Path:
    """A folder that makes ``import mlflow`` fail, as on the GPU machine (for --cpu-dry-run)."""
    pkg = folder / "mlflow"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text('raise ImportError("mlflow is not installed (bench_gpu.py --cpu-dry-run)")\n')
    return folder


def child_env(extra_path: list[Path]) -> dict[str, str]:
    env = dict(os.environ)
    parts = [str(p) for p in extra_path] + [str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("MMAR_AUTOML_FAST_PATHS", None)
    return env


# -- (a) samples/s, in one process ---------------------------------------------------------------------------

def part_a(sizes: dict[str, Any], device: str, work: Path, with_compile: bool) -> dict[str, Any]:
    import torch

    from mmar_automl.config.mmar import Mmar

    t0 = time.monotonic()
    root = make_mmar(work / "mmar_a", sizes["a_volumes"], sizes["a_size"])
    made = time.monotonic() - t0
    env = Mmar.at(root).absolute_environment()
    gpu = device == "cuda"
    rows: list[dict[str, Any]] = []
    data = _plain_data(env, sizes)
    bf16 = torch.bfloat16
    plain_rows = [("plain loop fp32", None, "batch", False), ("plain loop bf16", bf16, "batch", False),
                  ("plain loop bf16 + channels_last", bf16, "batch", True),
                  ("plain loop bf16, InstanceNorm", bf16, "instance", False),
                  ("plain loop bf16 + channels_last, InstanceNorm", bf16, "instance", True)]
    if gpu:  # the tutorials' AMP (the CPU autocasts only in bf16)
        plain_rows.insert(1, ("plain loop fp16 + GradScaler", torch.float16, "batch", False))
    for label, dtype, norm, cl in plain_rows:
        rows.append(_guard(label, lambda dtype=dtype, norm=norm, cl=cl: _plain(sizes, device, data, dtype, norm, cl)))
    trainer_rows = dict(TRAINER_ROWS)
    if with_compile:
        trainer_rows["trainer, every path + --compile"] = trainer_rows["trainer, every path"]
    for label, keys in trainer_rows.items():
        rows.append(_guard(label, lambda keys=keys, label=label: _trainer(
            sizes, device, root, keys, compile="--compile" in label)))
    base = rows[0].get("samples_per_s")
    for row in rows:
        sps = row.get("samples_per_s")
        row["vs_plain_fp32"] = round(sps / base, 3) if sps and base else None
    info = {"device": torch.cuda.get_device_name(0) if gpu else "cpu", "torch": torch.__version__,
            "bf16_native": bool(gpu and torch.cuda.is_bf16_supported(including_emulation=False))}
    try:
        import monai

        info["monai"] = monai.__version__
    except ImportError:  # pragma: no cover
        pass
    return {"rows": rows, "data_s": round(made, 1), "info": info,
            "setup": {k: v for k, v in sizes.items() if k.startswith("a_")}}


def _guard(label: str, fn: Any) -> dict[str, Any]:
    """One row; an exception is the row's result (the other rows still run)."""
    _reset()
    try:
        row = fn()
    except Exception as err:  # noqa: BLE001 - a benchmark row that fails is reported, not fatal
        row = {"error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}
    print(f"(a) {label}: {row}", flush=True)
    return {"row": label, **row}


def _reset() -> None:
    """Each row starts from torch's defaults (the trainer sets cudnn.benchmark, TF32, determinism)."""
    import torch

    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = False
    torch.use_deterministic_algorithms(False)
    torch.set_float32_matmul_precision("highest")
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _plain_data(env: dict[str, Any], sizes: dict[str, Any]) -> Any:
    """The template's train transforms and CacheDataset, written as a tutorial would (built once)."""
    from monai.data import CacheDataset, load_decathlon_datalist
    from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, RandFlipd, ScaleIntensityd, ToTensord

    files = load_decathlon_datalist(env["DATASET_JSON"], True, "training", base_dir=env["DATA_ROOT"])
    keys = ["image", "label"]
    transforms = Compose([LoadImaged(keys), EnsureChannelFirstd(keys), ScaleIntensityd("image"),
                          RandFlipd(keys, prob=0.5, spatial_axis=[0]), ToTensord(keys)])
    return CacheDataset(files, transforms, cache_rate=1.0, num_workers=0, progress=False)


def _plain(sizes: dict[str, Any], device: str, dataset: Any, dtype: Any, norm: str = "batch",
           channels_last: bool = False) -> dict[str, Any]:
    """The MONAI 3-D segmentation tutorial's loop: DataLoader, .to(device), zero_grad, forward, loss,
    backward, step, loss.item(); with AMP: autocast (+ GradScaler for fp16); ``channels_last``: the model
    and each batch in channels_last_3d (the measurement behind the channels_last rule, per norm type)."""
    import torch
    from monai.data import DataLoader
    from monai.losses import DiceLoss
    from monai.networks.nets import UNet

    torch.manual_seed(0)
    loader = DataLoader(dataset, batch_size=sizes["a_batch"], shuffle=True, num_workers=0)
    model = UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=sizes["a_channels"],
                 strides=sizes["a_strides"], num_res_units=1, norm=norm).to(device)
    layout = torch.channels_last_3d if channels_last else torch.contiguous_format
    model = model.to(memory_format=layout)
    loss_fn = DiceLoss(include_background=False, to_onehot_y=True, softmax=True)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    scaler = torch.amp.GradScaler("cuda") if (dtype == torch.float16 and device == "cuda") else None
    times, counts, losses = [], [], []
    for _ in range(sizes["a_epochs"]):
        model.train()
        start, seen, total = time.perf_counter(), 0, 0.0
        for batch in loader:
            inputs = batch["image"].to(device).contiguous(memory_format=layout)
            labels = batch["label"].to(device)
            optimizer.zero_grad()
            if dtype is not None:
                with torch.autocast(device, dtype=dtype):
                    loss = loss_fn(model(inputs), labels)
            else:
                loss = loss_fn(model(inputs), labels)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            total += loss.item()
            seen += inputs.shape[0]
        times.append(time.perf_counter() - start)
        counts.append(seen)
        losses.append(total)
    return _rate(times, counts) | {"peak_gib": _peak_gib(device), "first_epoch_s": round(times[0], 3)}


def _trainer(sizes: dict[str, Any], device: str, root: Path, keys: dict[str, Any] | None,
             compile: bool = False) -> dict[str, Any]:
    """mmar-automl's trainer on the template, sized like the plain loop, with the fast-path ``keys``
    (None: none, AMP off; a dict: the config's amp on and these keys). Validation is never reached and the
    train metric is off (the plain loop computes neither); determinism and cudnn_benchmark=false of the
    template are dropped in every trainer row, as the plain loop has neither."""
    from mmar_automl.train.run import train

    overrides = [
        f"epochs={sizes['a_epochs']}", "num_interval_per_valid=100000", "determinism={}", "cudnn_benchmark=null",
        f"train.model.args.channels={json.dumps(sizes['a_channels'])}",
        f"train.model.args.strides={json.dumps(sizes['a_strides'])}",
        f"train.dataloader.args.batch_size={sizes['a_batch']}",
        "train.trainer.args.key_train_metric=null", "train.trainer.args.postprocessing=null",
        f"amp={'false' if keys is None else 'true'}", f"fast_paths={json.dumps(keys or {})}",
    ]
    code = train(root, overrides=overrides, device=device, fast_paths=keys is not None, compile=compile)
    from mmar_automl.run.outputs import JobOutputs

    outputs = JobOutputs.of(root)
    lines = outputs.metrics()
    stats = outputs.stats() or {}
    if code != 0:
        return {"error": f"exit {code}: {stats.get('reason')}"}
    epochs = [x for x in lines if x["kind"] == "train"]
    samples = _train_count(root)  # every training volume once per epoch (the template's loader keeps the last batch)
    times = [x["epoch_time"] for x in epochs]
    peak = stats.get("peak_gpu_memory_bytes")
    return _rate(times, [samples] * len(times)) | {
        "peak_gib": round(peak / GIB, 2) if peak else None, "first_epoch_s": round(times[0], 3),
        "fast_paths": stats.get("fast_paths"), "amp": stats.get("amp")}


def _train_count(root: Path) -> int:
    from mmar_automl.config.mmar import Mmar

    datalist = json.loads(Path(Mmar.at(root).absolute_environment()["DATASET_JSON"]).read_text())
    return len(datalist["training"])


def _rate(times: list[float], counts: list[int]) -> dict[str, Any]:
    later_t, later_n = (times[1:], counts[1:]) if len(times) > 1 else (times, counts)
    seconds = sum(later_t)
    return {"samples_per_s": round(sum(later_n) / seconds, 2) if seconds > 0 else None,
            "epochs_timed": len(later_t), "seconds_timed": round(seconds, 3)}


def _peak_gib(device: str) -> float | None:
    import torch

    return round(torch.cuda.max_memory_reserved() / GIB, 2) if device == "cuda" else None


# -- (b)+(c) trials per hour and GPU utilisation ---------------------------------------------------------------

class UtilSampler(threading.Thread):
    """Every ``interval`` s, the SM activity of the GPUs the searches run on (NVML GPM ``SM_UTIL``: the share of
    SMs busy, where the GPU has GPM, Hopper and later) or else NVML's utilisation (the share of time *any*
    kernel ran: a small kernel counts as 100%, so packed jobs reach 85% without filling the GPU; labelled
    ``kernel_active`` then). Nothing where there is no NVML."""

    def __init__(self, interval: float = 0.25):
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, float, float]] = []  # (time, mean activity %, memory used GiB)
        self.metric = "none"
        self._halt = threading.Event()
        self._handles: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in _search_gpus()]
            self.metric = "sm_util" if self._handles and all(_has_gpm(pynvml, h) for h in self._handles) else "kernel_active"
        except Exception:  # noqa: BLE001 - no NVML: no samples
            self._nvml = None

    def run(self) -> None:
        if not self._handles:
            return
        nvml = self._nvml
        last = [self._gpm_sample(h) for h in self._handles] if self.metric == "sm_util" else []
        while not self._halt.wait(self.interval):
            if self.metric == "sm_util":
                now = [self._gpm_sample(h) for h in self._handles]
                values = [_gpm_sm_util(nvml, a, b) for a, b in zip(last, now)]
                for sample in last:
                    nvml.nvmlGpmSampleFree(sample)
                last = now
            else:
                values = [float(nvml.nvmlDeviceGetUtilizationRates(h).gpu) for h in self._handles]
            used = sum(nvml.nvmlDeviceGetMemoryInfo(h).used for h in self._handles)
            self.samples.append((time.time(), sum(values) / len(values), used / GIB))

    def _gpm_sample(self, handle: Any) -> Any:
        sample = self._nvml.nvmlGpmSampleAlloc()
        self._nvml.nvmlGpmSampleGet(handle, sample)
        return sample

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def mean_between(self, start: float, end: float) -> tuple[float | None, float | None]:
        window = [s for s in self.samples if start <= s[0] <= end]
        if not window:
            return None, None
        return round(sum(s[1] for s in window) / len(window), 1), round(max(s[2] for s in window), 2)


def _search_gpus() -> list[int]:
    """The NVML indices of the GPUs a search here runs on: those CUDA_VISIBLE_DEVICES names, else all."""
    from mmar_automl.run.workers import discover_gpus

    return sorted(g.nvml_index for g in discover_gpus())


def _has_gpm(pynvml: Any, handle: Any) -> bool:
    try:
        return bool(pynvml.nvmlGpmQueryDeviceSupport(handle).isSupportedDevice)
    except Exception:  # noqa: BLE001 - an older driver or GPU: no GPM
        return False


def _gpm_sm_util(pynvml: Any, first: Any, second: Any) -> float:
    """GPM's SM_UTIL between two samples (percent of SMs busy)."""
    request = pynvml.c_nvmlGpmMetricsGet_t()
    request.version = pynvml.NVML_GPM_METRICS_GET_VERSION
    request.numMetrics = 1
    request.sample1, request.sample2 = first, second
    request.metrics[0].metricId = pynvml.NVML_GPM_METRIC_SM_UTIL
    pynvml.nvmlGpmMetricsGet(request)
    return float(request.metrics[0].value)


def part_b(sizes: dict[str, Any], dry: bool, work: Path, env: dict[str, str], deadline: float) -> dict[str, Any]:
    root = make_mmar(work / "mmar_b", sizes["b_volumes"], sizes["b_size"], seed=1)
    automl = work / "config_automl_bench.json"
    automl.write_text(json.dumps({
        "controller": {"name": "RandomController", "args": {"num_samples": sizes["b_jobs"]}},
        "handlers": [{"name": "StatsHandler"}],
    }))
    size = sizes["b_size"]
    # The jobs run the bf16 path (what a GPU search would use), not the template's fp32 deterministic one.
    overrides = [f"epochs={sizes['b_epochs']}", f"num_interval_per_valid={sizes['b_valid_every']}",
                 f"train.dataloader.args.batch_size={sizes['b_batch']}",
                 f"validate.inferer.args.roi_size=[{size},{size},{size}]",
                 "amp=true", "determinism={}", "cudnn_benchmark=null", 'fast_paths={"amp_dtype": "auto"}']
    runs = []
    for k, mode in enumerate(sizes["modes"]):
        left = deadline - time.monotonic()
        if left < 30:
            runs.append({"jobs_per_gpu": mode, "error": "skipped: the benchmark's time budget is spent"})
            continue
        # A safety limit only (the budget left, shared by the runs still to come): both runs are sized to end
        # well before it; a run it cut has fewer COMPLETE jobs and is not compared.
        runs.append(_search(root, automl, mode, overrides, dry, env, (left - 20) / (len(sizes["modes"]) - k), work))
        print(f"(b) --jobs-per-gpu {mode}: {runs[-1]}", flush=True)
    one = next((r for r in runs if r["jobs_per_gpu"] == "1"), {})
    for r in runs:
        whole = (r.get("trials_per_hour"), one.get("trials_per_hour"))
        steady = (r.get("trials_per_hour_after_first"), one.get("trials_per_hour_after_first"))
        comparable = r.get("complete") == sizes["b_jobs"] and one.get("complete") == sizes["b_jobs"]
        r["vs_one"] = round(whole[0] / whole[1], 2) if comparable and all(whole) else None
        r["vs_one_after_first"] = round(steady[0] / steady[1], 2) if comparable and all(steady) else None
    return {"runs": runs, "setup": {k: v for k, v in sizes.items() if k.startswith("b_")}}


def _search(root: Path, automl: Path, mode: str, overrides: list[str], dry: bool, env: dict[str, str],
            time_limit: float, work: Path) -> dict[str, Any]:
    from mmar_automl.config.mmar import Mmar

    run_id = f"bench_jobs_per_gpu_{mode}"
    cmd = [sys.executable, "-m", "mmar_automl", "run", str(root), "--no-mlflow", "--seed", "7", "--run-id", run_id,
           "--automl-config", str(automl), "--jobs-per-gpu", mode, "--time-limit", str(int(time_limit))]
    if dry:
        cmd += ["--workers", "cpu"]
    for item in overrides:
        cmd += ["--set", item]
    log = work / f"run_{mode}.log"
    shutil.rmtree(root / "automl" / run_id, ignore_errors=True)  # a kept --work folder: a fresh run, not a resume
    sampler = UtilSampler()
    sampler.start()
    started = time.time()
    with open(log, "w") as out:
        try:
            code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=time_limit + 90).returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    wall = time.time() - started
    sampler.stop()
    result: dict[str, Any] = {"jobs_per_gpu": mode, "exit": code, "wall_s": round(wall, 1)}
    journal = Mmar.at(root).run_dir(run_id) / "journal.jsonl"
    if not journal.exists():
        result["error"] = "no journal: " + " | ".join(log.read_text().strip().splitlines()[-3:])
        return result
    ended = [json.loads(x)["job"] for x in journal.read_text().splitlines() if '"op": "job_ended"' in x]
    complete = [j for j in ended if j["state"] == "COMPLETE"]
    if not ended:
        result["error"] = "no job ended: " + " | ".join(log.read_text().strip().splitlines()[-3:])
        return result
    first = min(j["started_at"] for j in ended)
    last = max(j["ended_at"] for j in ended)
    span = last - first
    first_end = min(j["ended_at"] for j in ended)
    after = [j for j in complete if j["ended_at"] > first_end]
    util, mem = sampler.mean_between(first, last)
    train_volumes = _train_count(root)
    peaks = [_job_peak(Path(j["folder"])) for j in complete]
    peaks = [p for p in peaks if p]
    result.update({
        "jobs_ended": len(ended), "complete": len(complete),
        "failed": [f"{j['state']}: {j.get('reason')}" for j in ended if j["state"] != "COMPLETE"][:3],
        "span_s": round(span, 1), "trials_per_hour": round(len(complete) / span * 3600, 1) if span > 0 else None,
        "trials_per_hour_after_first": (round(len(after) / (last - first_end) * 3600, 1)
                                        if after and last > first_end else None),
        "search_samples_per_s": round(len(complete) * _epochs_of(overrides) * train_volumes / span, 1) if span > 0 else None,
        "gpu_metric": sampler.metric,
        "trials_per_hour_wall": round(len(complete) / wall * 3600, 1) if wall > 0 else None,
        "max_concurrent": _max_concurrent(ended), "mean_job_s": round(sum(j["ended_at"] - j["started_at"] for j in ended)
                                                                       / len(ended), 1),
        "gpu_util_mean_pct": util, "gpu_mem_used_max_gib": mem,
        "job_peak_gib_mean": round(sum(peaks) / len(peaks) / GIB, 2) if peaks else None,
    })
    return result


def _epochs_of(overrides: list[str]) -> int:
    return int(next(item.split("=", 1)[1] for item in overrides if item.startswith("epochs=")))


def _job_peak(folder: Path) -> int | None:
    from mmar_automl.run.outputs import JobOutputs

    return (JobOutputs.of(folder).stats() or {}).get("peak_gpu_memory_bytes")


def _max_concurrent(jobs: list[dict[str, Any]]) -> int:
    events = sorted([(j["started_at"], 1) for j in jobs] + [(j["ended_at"], -1) for j in jobs])
    now = best = 0
    for _, delta in events:
        now += delta
        best = max(best, now)
    return best


# -- report ------------------------------------------------------------------------------------------------

def verdicts(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if a:
        trainer = [r for r in a["rows"] if r["row"].startswith("trainer") and r.get("vs_plain_fp32")]
        best = max(trainer, key=lambda r: r["vs_plain_fp32"], default=None)
        if best:
            out["trainer_vs_plain_fp32"] = {"value": best["vs_plain_fp32"], "row": best["row"],
                                            "target": TARGETS["trainer_vs_plain_fp32"],
                                            "met": best["vs_plain_fp32"] >= TARGETS["trainer_vs_plain_fp32"]}
    if b:
        packed = [r for r in b["runs"] if r["jobs_per_gpu"] != "1"]
        if packed and packed[-1].get("vs_one_after_first"):
            value = packed[-1]["vs_one_after_first"]
            out["auto_vs_one_trials_per_hour"] = {"value": value, "row": "after the first job",
                                                  "target": TARGETS["auto_vs_one_trials_per_hour"],
                                                  "met": value >= TARGETS["auto_vs_one_trials_per_hour"]}
        if packed and packed[-1].get("gpu_util_mean_pct") is not None:
            value = packed[-1]["gpu_util_mean_pct"]
            out["gpu_util_pct"] = {"value": value, "target": TARGETS["gpu_util_pct"], "row": packed[-1]["gpu_metric"],
                                   "met": value >= TARGETS["gpu_util_pct"] and packed[-1]["gpu_metric"] == "sm_util"}
    return out


def print_table(report: dict[str, Any]) -> None:
    a, b = report.get("a"), report.get("b")
    if a:
        s = a["setup"]
        print(f"\n(a) training samples/s, {TEMPLATE}: UNet {s['a_channels'][0]}..{s['a_channels'][-1]}, "
              f"{s['a_size']}^3, batch {s['a_batch']}, {s['a_epochs']} epochs (first not timed); {a['info']}")
        print(f"{'row':<48} {'samples/s':>10} {'x plain fp32':>12} {'peak GiB':>9} {'epoch 1 s':>9}")
        for r in a["rows"]:
            if "error" in r:
                print(f"{r['row']:<48} error: {r['error']}")
                continue
            print(f"{r['row']:<48} {_f(r['samples_per_s']):>10} {_f(r['vs_plain_fp32']):>12} {_f(r.get('peak_gib')):>9} "
                  f"{_f(r.get('first_epoch_s')):>9}")
    if b:
        s = b["setup"]
        print(f"\n(b)+(c) {s['b_jobs']}-job search of {TEMPLATE}: {s['b_size']}^3, batch {s['b_batch']}, "
              f"{s['b_epochs']} epochs, validation every {s['b_valid_every']}")
        print(f"{'jobs/GPU':<9} {'done':>5} {'span s':>7} {'trials/h':>9} {'x 1/GPU':>8} {'after 1st':>9} {'x 1/GPU':>8} "
              f"{'wall s':>7} {'max conc':>8} {'job s':>6} {'samples/s':>9} {'GPU %':>6} {'metric':>13} {'job peak GiB':>12}")
        for r in b["runs"]:
            if "error" in r:
                print(f"{r['jobs_per_gpu']:<9} error: {r['error']}")
                continue
            print(f"{r['jobs_per_gpu']:<9} {r['complete']:>5} {_f(r['span_s']):>7} {_f(r['trials_per_hour']):>9} "
                  f"{_f(r['vs_one']):>8} {_f(r['trials_per_hour_after_first']):>9} {_f(r['vs_one_after_first']):>8} "
                  f"{_f(r['wall_s']):>7} {r['max_concurrent']:>8} {_f(r['mean_job_s']):>6} "
                  f"{_f(r['search_samples_per_s']):>9} {_f(r['gpu_util_mean_pct']):>6} {r['gpu_metric']:>13} "
                  f"{_f(r['job_peak_gib_mean']):>12}")
            for reason in r.get("failed") or []:
                print(f"          not complete: {reason}")
    if report.get("targets"):
        print("\ntargets (issue 8)" + (": a CPU dry run checks the script, its figures are no measurement"
                                        if report.get("cpu_dry_run") else ":"))
        for name, v in report["targets"].items():
            print(f"  {name}: {v['value']} (target >= {v['target']}) {'MET' if v['met'] else 'NOT MET'}"
                  + (f" [{v['row']}]" if v.get("row") else ""))
    print(f"\ntotal {report['total_s']:.0f} s")


def _f(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if isinstance(value, float) and abs(value) < 100 else str(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-dry-run", action="store_true", help="tiny sizes on the CPU, every code path")
    parser.add_argument("--parts", default="a,b", help="a, b, d (2+ GPUs: DDP scaling) or a list [a,b]")
    parser.add_argument("--json", default=None, help="also write the report here")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for the whole script [450]")
    parser.add_argument("--with-compile", action="store_true", help="(a): one more row with --compile")
    parser.add_argument("--size", action="append", default=[], metavar="KEY=JSON",
                        help="override a size, e.g. --size a_size=64 --size 'a_channels=[8,16,32]' (keys: SIZES)")
    parser.add_argument("--part-a-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work", default=None, help="keep the MMARs and logs here (default: a temporary folder)")
    args = parser.parse_args()
    sizes = dict(SIZES["cpu" if args.cpu_dry_run else "gpu"])
    for item in args.size:
        key, _, value = item.partition("=")
        if key not in sizes:
            parser.error(f"--size {item}: unknown key; known: {', '.join(sizes)}")
        sizes[key] = json.loads(value)
    started = time.monotonic()
    deadline = started + args.budget

    if args.part_a_child:  # the child process of (a)
        import torch

        device = "cuda" if (torch.cuda.is_available() and not args.cpu_dry_run) else "cpu"
        result = part_a(sizes, device, Path(args.work), args.with_compile)
        Path(args.part_a_child).write_text(json.dumps(result))
        return 0

    if not args.cpu_dry_run and not _nvml_gpus():
        print("no GPU found by NVML: run with --cpu-dry-run on a machine without one", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        extra = [blocked_imports(work / "blocked")] if args.cpu_dry_run else []
        env = child_env(extra)
        report: dict[str, Any] = {"cpu_dry_run": args.cpu_dry_run, "targets_wanted": TARGETS}
        parts = {p.strip() for p in args.parts.split(",")}
        if "a" in parts:
            out = work / "part_a.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--part-a-child", str(out), "--work", str(work)]
            cmd += ["--cpu-dry-run"] if args.cpu_dry_run else []
            cmd += ["--with-compile"] if args.with_compile else []
            for item in args.size:
                cmd += ["--size", item]
            t0 = time.monotonic()
            log = work / "part_a.log"
            with open(log, "w") as f:
                code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                                      timeout=max(60.0, deadline - time.monotonic())).returncode
            if code == 0 and out.exists():
                report["a"] = json.loads(out.read_text())
                report["a"]["total_s"] = round(time.monotonic() - t0, 1)
            else:
                report["a_error"] = f"exit {code}: " + " | ".join(log.read_text().strip().splitlines()[-5:])
                print(report["a_error"], file=sys.stderr)
        if "b" in parts:
            report["b"] = part_b(sizes, args.cpu_dry_run, work, env, deadline)
        if "d" in parts:
            report["d"] = part_d(args.cpu_dry_run, env, deadline)
        report["targets"] = verdicts(report.get("a"), report.get("b"))
        report["total_s"] = round(time.monotonic() - started, 1)
        print_table(report)
        print(json.dumps(report, indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))
    failed = "a_error" in report or any("error" in r for r in (report.get("b") or {}).get("runs", []))
    failed = failed or "error" in (report.get("d") or {})
    return 1 if failed else 0


def part_d(dry: bool, env: dict[str, str], deadline: float) -> dict[str, Any]:
    """DDP scaling: scripts/bench_ddp.py (1 rank vs 2 ranks of the same job); gloo on the CPU in a dry run."""
    if not dry and _nvml_gpus() < 2:
        return {"error": "needs 2+ GPUs"}
    args = ["--device", "cpu", "--items", "8", "--epochs", "2"] if dry else ["--device", "cuda", "--items", "32"]
    cmd = [sys.executable, str(Path(__file__).resolve().parent / "bench_ddp.py"), "--nproc", "2", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=max(60.0, deadline - time.monotonic()))
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"}
    print(done.stdout.strip())
    return json.loads(done.stdout.strip().splitlines()[-1])


def _nvml_gpus() -> int:
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetCount()
    except Exception:  # noqa: BLE001
        return 0


if __name__ == "__main__":
    sys.exit(main())
