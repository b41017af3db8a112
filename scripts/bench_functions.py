"""The black-box functions of scripts/bench_search.py, and the job entry that scores one of them.

Each function is a config_train.json with search blocks (the space is parsed from it, as a user's
MMAR would be) and ``f(config)``, which reads the job's *concrete* config (what a training job sees)
and returns a value to minimise; the job's score is ``-f``. ``f_min`` is the known minimum (or the
best value found by a dense search, noted), used for regret.

Pure Python (math only): the job entry runs in every job process, which must start fast.

    job entry: MMAR_AUTOML_JOB_ENTRY=bench_functions:main  (PYTHONPATH=scripts)
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Function:
    name: str
    kind: str                         # what the space holds, for the table
    config: dict[str, Any]            # config_train.json with search blocks
    f: Callable[[dict[str, Any]], float]
    f_min: float


def _float(name: str, low: float, high: float, log: bool = False) -> dict[str, Any]:
    entry = {"domain": "x", "type": "float", "args": [name], "targets": [low, high]}
    return {**entry, "log": True} if log else entry


def _int(name: str, low: int, high: int, step: int = 1, log: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"domain": "x", "type": "int", "args": [name], "targets": [low, high]}
    if step != 1:
        entry["step"] = step
    if log:
        entry["log"] = True
    return entry


def _top(entries: list[dict[str, Any]], **fixed: Any) -> dict[str, Any]:
    """A config whose searched values are first-level keys (their defaults: each range's low end)."""
    keys = {e["args"][0]: e["targets"][0] for e in entries}
    return {**keys, **fixed, "search": entries}


# -- classic test functions -------------------------------------------------------------------------

def branin(x1: float, x2: float) -> float:
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_H_A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
_H_P = [[0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886], [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
        [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650], [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381]]
_H_ALPHA = [1.0, 1.2, 3.0, 3.2]


def hartmann6(x: list[float]) -> float:
    return -sum(a * math.exp(-sum(_H_A[i][j] * (x[j] - _H_P[i][j]) ** 2 for j in range(6)))
                for i, a in enumerate(_H_ALPHA))


def levy(x: list[float]) -> float:
    w = [1 + (v - 1) / 4 for v in x]
    out = math.sin(math.pi * w[0]) ** 2 + (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    for wi in w[:-1]:
        out += (wi - 1) ** 2 * (1 + 10 * math.sin(math.pi * wi + 1) ** 2)
    return out


def styblinski_tang(x: list[float]) -> float:
    return sum(v ** 4 - 16 * v ** 2 + 5 * v for v in x) / 2


# -- the suite ---------------------------------------------------------------------------------------

HARTMANN = [f"h{j}" for j in range(6)]
LEVY = [f"l{j}" for j in range(10)]
STANG = [f"s{j}" for j in range(4)]


def _training_like(c: dict[str, Any]) -> float:
    """A learning-rate/weight-decay/momentum landscape: a valley in log10(lr) whose best position moves
    with the momentum, and a weaker one in log10(weight decay). Minimum 0 at momentum 0.9,
    lr 10^-2.6, weight decay 10^-4.2."""
    lr, wd, m = math.log10(c["lr"]), math.log10(c["wd"]), c["momentum"]
    best_lr = -2.0 - 1.5 * (m - 0.5)
    return (lr - best_lr) ** 2 + 0.3 * (wd + 4.2) ** 2 + 0.5 * (m - 0.9) ** 2


def _int_net(c: dict[str, Any]) -> float:
    """Integer and log-integer hyperparameters of a network: filters (log scale), depth, batch size
    (step 4), with an optimum at filters 48, depth 4, batch 20, and an interaction depth x filters."""
    f, d, b = math.log2(c["filters"]), c["depth"], c["batch"]
    return (f - math.log2(48)) ** 2 + 0.3 * (d - 4) ** 2 + 0.02 * (b - 20) ** 2 + 0.1 * (d - 4) * (f - math.log2(48))


_ENUM_TABLE = random.Random(1234)
_ENUM_COST = {
    "act": {k: _ENUM_TABLE.uniform(0, 1) for k in ("relu", "prelu", "elu", "gelu")},
    "norm": {k: _ENUM_TABLE.uniform(0, 1) for k in ("batch", "instance", "group")},
    "channels": {k: _ENUM_TABLE.uniform(0, 1) for k in ("8", "16", "32", "64", "128")},
    "pair": {(a, n): _ENUM_TABLE.uniform(0, 0.6) for a in ("relu", "prelu", "elu", "gelu")
             for n in ("batch", "instance", "group")},
}


def _enum(c: dict[str, Any]) -> float:
    m = c["train"]["model"]["args"]
    act, norm, ch = m["act"], m["norm"], str(m["channels"][0])
    cost = _ENUM_COST
    return cost["act"][act] + cost["norm"][norm] + cost["channels"][ch] + cost["pair"][(act, norm)]


def _enum_min() -> float:
    return min(_ENUM_COST["act"][a] + _ENUM_COST["norm"][n] + _ENUM_COST["channels"][c] + _ENUM_COST["pair"][(a, n)]
               for a in _ENUM_COST["act"] for n in _ENUM_COST["norm"] for c in _ENUM_COST["channels"])


_ACT_OFFSET = {"relu": 0.5, "prelu": 0.0, "elu": 0.8}

MIXED_CONFIG = {
    "learning_rate": 0.001, "epochs_x": 8,
    "search": [_float("learning_rate", 1e-5, 1e-1, log=True), _int("epochs_x", 2, 20)],
    "train": {"model": {"name": "UNet", "args": {"act": "relu", "x1": 0.5, "x2": 0.5}, "search": [
        {"domain": "net", "type": "enum", "args": ["act"], "targets": [["relu"], ["prelu"], ["elu"]]},
        {"domain": "net", "type": "float", "args": ["x1"], "targets": [0, 1]},
        {"domain": "net", "type": "float", "args": ["x2"], "targets": [0, 1]}]}},
}


def _mixed(c: dict[str, Any]) -> float:
    m = c["train"]["model"]["args"]
    base = branin(-5 + 15 * m["x1"], 15 * m["x2"]) / 50
    return (base + _ACT_OFFSET[m["act"]] + 0.2 * (math.log10(c["learning_rate"]) + 3.3) ** 2
            + 0.01 * (c["epochs_x"] - 14) ** 2)


CONDITIONAL_CONFIG = {
    "learning_rate": 0.001,
    "search": [{"domain": "transform", "type": "enum", "args": ["@noiseOff"], "targets": [[True], [False]]},
               {"domain": "loss", "type": "enum", "args": ["offDice", "offFocal"],
                "targets": [[False, True], [True, False]]},
               _float("learning_rate", 1e-5, 1e-1, log=True)],
    "train": {
        "loss": [{"name": "DiceLoss", "args": {"smooth": 0.5}, "apply": {"@disabled": "offDice"},
                  "search": [{"domain": "loss", "type": "float", "args": ["smooth"], "targets": [0, 1]}]},
                 {"name": "FocalLoss", "args": {"gamma": 2.0}, "apply": {"@disabled": "offFocal"},
                  "search": [{"domain": "loss", "type": "float", "args": ["gamma"], "targets": [0.5, 5.0]}]}],
        "pre_transforms": [{"name": "RandGaussianNoised", "args": {"prob": 0.1}, "apply": {"@disabled": "noiseOff"},
                            "search": [{"domain": "transform", "type": "float", "args": ["prob"], "targets": [0, 1]}]}],
    },
}


def _conditional(c: dict[str, Any]) -> float:
    t = c["train"]
    value = 0.3 * (math.log10(c["learning_rate"]) + 3) ** 2
    dice, focal = t["loss"]
    if not dice.get("disabled"):
        value += 0.2 + 2 * (dice["args"]["smooth"] - 0.2) ** 2
    if not focal.get("disabled"):
        value += 0.05 + 0.3 * (focal["args"]["gamma"] - 3.5) ** 2
    noise = t["pre_transforms"][0]
    if not noise.get("disabled"):
        value += 2 * (noise["args"]["prob"] - 0.7) ** 2 - 0.3
    return value


ENUM_CONFIG = {"train": {"model": {"name": "UNet", "args": {"act": "relu", "norm": "batch", "channels": [8, 16]},
    "search": [{"domain": "net", "type": "enum", "args": ["act"], "targets": [[a] for a in _ENUM_COST["act"]]},
               {"domain": "net", "type": "enum", "args": ["norm"], "targets": [[n] for n in _ENUM_COST["norm"]]},
               {"domain": "net", "type": "enum", "args": ["channels"],
                "targets": [[[int(c), 2 * int(c)]] for c in _ENUM_COST["channels"]]}]}}}

SMALL_ENUM_CONFIG = {"train": {"model": {"name": "UNet", "args": {"act": "relu", "norm": "batch", "channels": [8, 16]},
    "search": [{"domain": "net", "type": "enum", "args": ["act"], "targets": [["relu"], ["prelu"], ["elu"]]},
               {"domain": "net", "type": "enum", "args": ["norm"], "targets": [["batch"], ["instance"], ["group"]]}]}}}


def _small_enum(c: dict[str, Any]) -> float:
    m = c["train"]["model"]["args"]
    return _ENUM_COST["act"][m["act"]] + _ENUM_COST["norm"][m["norm"]] + _ENUM_COST["pair"][(m["act"], m["norm"])]


FUNCTIONS: dict[str, Function] = {f.name: f for f in (
    Function("branin", "2 float", _top([_float("x1", -5, 10), _float("x2", 0, 15)]),
             lambda c: branin(c["x1"], c["x2"]), 0.397887),
    Function("hartmann6", "6 float", _top([_float(n, 0, 1) for n in HARTMANN]),
             lambda c: hartmann6([c[n] for n in HARTMANN]), -3.32237),
    Function("levy10", "10 float", _top([_float(n, -10, 10) for n in LEVY]),
             lambda c: levy([c[n] for n in LEVY]), 0.0),
    Function("training3", "3 float, 2 log", _top([_float("lr", 1e-6, 1.0, log=True), _float("wd", 1e-7, 1e-1, log=True),
                                                  _float("momentum", 0.5, 0.99)]), _training_like, 0.0),
    Function("intnet3", "3 int (log, step)", _top([_int("filters", 4, 512, log=True), _int("depth", 1, 8),
                                                   _int("batch", 4, 64, step=4)]), _int_net, 0.0),
    Function("stang4int", "4 int", _top([_int(n, -5, 5) for n in STANG]),
             lambda c: styblinski_tang([c[n] for n in STANG]), -39.0 * 4),
    Function("enum60", "3 enum (60)", ENUM_CONFIG, _enum, _enum_min()),
    Function("enum9", "2 enum (9)", SMALL_ENUM_CONFIG, _small_enum,
             min(_ENUM_COST["act"][a] + _ENUM_COST["norm"][n] + _ENUM_COST["pair"][(a, n)]
                 for a in ("relu", "prelu", "elu") for n in _ENUM_COST["norm"])),
    Function("mixed6", "enum, 2 float, log, int", MIXED_CONFIG, _mixed, 0.397887 / 50),
    Function("conditional6", "2 switches, 3 conditional, log", CONDITIONAL_CONFIG, _conditional, 0.05 - 0.3),
)}


# -- the job entry -------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    """Score one job: the trainer's contract (models/metrics.jsonl, models/train_stats.json), score = -f.
    ``bench_function`` (a fixed first-level key) names the function; ``bench_sleep`` (seconds, drawn
    per job from the job folder's name so that parallel jobs finish out of order) emulates training."""
    root = Path(argv[0])
    config = json.loads((root / "config" / "config_train.json").read_text())
    fn = FUNCTIONS[config["bench_function"]]
    sleep = float(config.get("bench_sleep", 0.0))
    if sleep:
        time.sleep(sleep * random.Random(root.name).uniform(0.5, 1.5))
    value = fn.f(config)
    noise = float(config.get("bench_noise", 0.0))
    # a training run's score is noisy: add N(0, noise), drawn per job (folder path: same on a resume)
    score = -(value + (random.Random(str(root)).gauss(0.0, noise) if noise else 0.0))
    models = root / "models"
    models.mkdir(exist_ok=True)
    with open(models / "metrics.jsonl", "a") as out:
        out.write(json.dumps({"kind": "validation", "epoch": 1, "iteration": 1, "key_metric": "val_score",
                              "metrics": {"val_score": score}, "time": 0.0}) + "\n")
        out.write(json.dumps({"kind": "end", "status": "complete", "reason": "", "time": 0.0}) + "\n")
    stats = {"best_validation_metric": score, "best_validation_epoch": 1, "key_metric": "val_score",
             "total_epochs": 1, "total_iterations": 1, "total_time": 0.0,
             "validations": [{"epoch": 1, "iteration": 1, "metrics": {"val_score": score}}],
             "status": "complete", "reason": "", "bench_true_value": value}
    tmp = models / "train_stats.json.tmp"
    tmp.write_text(json.dumps(stats))
    os.replace(tmp, models / "train_stats.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
