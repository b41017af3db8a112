"""The default controller (no config_automl.json): the rule of controllers/default.py, and through the
CLI its choice printed at start, journaled, and kept on resume."""

from __future__ import annotations

import json
import subprocess

import pytest

import controller_spaces as spaces
from mmar_automl.controllers.default import choose_default, is_conditional
from test_controllers_cli import _cli, _env, _events
from test_optuna_study_file import _mmar


def test_enum_only_space_that_fits_the_budget_gets_the_grid():
    space = spaces.enum_only()                                   # 2 x 3 = 6 combinations
    assert choose_default(space, None).spec["name"] == "GridController"
    assert choose_default(space, 6).spec["name"] == "GridController"
    too_big = choose_default(space, 5).spec                      # the grid would not finish
    assert too_big["name"] == "OptunaController" and "n_trials" not in too_big["args"]
    assert choose_default(space, None, warm_start=True).spec["name"] == "OptunaController"


def test_small_int_ranges_count_as_grid_but_floats_do_not():
    scaled = spaces.parsed(spaces.PARSED_SCALED)
    assert choose_default(scaled, 20).spec["args"]["sampler"] == "gp"
    ints_only = spaces.parsed({"batch": 2, "search": [
        {"domain": "net", "type": "int", "args": ["batch"], "targets": [2, 8], "step": 2}]})
    assert choose_default(ints_only, None).spec["name"] == "GridController"


def test_gp_within_budget_sampling_inactive_dimensions_of_conditional_spaces_and_tpe_beyond():
    cond = spaces.conditional()
    assert is_conditional(cond) and not is_conditional(spaces.mixed())
    assert is_conditional(spaces.parsed(spaces.PARSED_CONDITIONAL))
    flat = choose_default(cond, 20)
    assert flat.spec["args"]["sampler"] == "gp" and flat.spec["args"]["sample_inactive"] is True
    assert "conditional" in flat.reason
    gp = choose_default(spaces.float_only(), 20)
    assert gp.spec["args"]["sampler"] == "gp" and "GP" in gp.reason and "sample_inactive" not in gp.spec["args"]
    assert choose_default(spaces.float_only(), None).spec["args"]["n_trials"] == 30
    assert choose_default(spaces.float_only(), 500).spec["args"]["sampler"] == "tpe"   # GP refits cost too much
    tpe = choose_default(cond, 500).spec["args"]
    assert tpe["sampler"] == "tpe" and tpe["sampler_args"]["group"] and tpe["sampler_args"]["constant_liar"]
    assert "sample_inactive" not in tpe           # define-by-run: TPE's group mode models each branch apart


@pytest.mark.slow
def test_default_choice_printed_journaled_and_kept_on_resume(tmp_path):
    mmar = _mmar(tmp_path / "m", None)               # no config_automl.json
    first = subprocess.run(_cli(mmar, "--seed", "1", "--workers", "1", "--max-jobs", "3", "--run-id", "d"),
                           env=_env(), capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    line = next(x for x in first.stderr.splitlines() if x.startswith("controller: "))
    assert "OptunaController(sampler=gp, start_at_center=True, n_startup_trials=5)" \
        in line and "default:" in line
    header = _events(mmar, "d")[0]
    assert header["controller"]["args"]["sampler"] == "gp" and "GP" in header["controller_choice"]
    # --max-jobs 500 would pick TPE for a new run; the resumed run keeps the journaled GP.
    again = subprocess.run(_cli(mmar, "--resume", "d", "--max-jobs", "500", "--time-limit", "3"),
                           env=_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode in (0, 130), again.stderr
    assert "sampler=gp" in next(x for x in again.stderr.splitlines() if x.startswith("controller: "))
    assert json.dumps(_events(mmar, "d")[0]["controller"]) == json.dumps(header["controller"])


@pytest.mark.parametrize("space_name", ["float_only", "parsed_conditional"])
def test_default_sampler_with_four_workers_sees_running_jobs_and_replays(space_name, monkeypatch):
    """The default's sampler asks while three jobs run: their trials are RUNNING in the study, which
    TPE's constant liar and the GP sampler both condition on (Optuna 5.0). A resume replays it
    identically."""
    from fake_executor import FakeRun, replay
    from mmar_automl.controllers import OptunaController

    space = spaces.ALL[space_name]()
    spec = choose_default(space, 20).spec["args"]
    args = {k: v for k, v in spec.items() if k != "n_trials"}
    assert spec["sampler"] == "gp"
    running_at_ask: list[int] = []
    real_ask = OptunaController._ask

    def ask(self, count):
        running_at_ask.append(len(self._trials))      # asked, not yet told: RUNNING in the study
        return real_ask(self, count)

    monkeypatch.setattr(OptunaController, "_ask", ask)
    live = FakeRun(OptunaController(seed=3, **args), space, workers=4, seed=3).run(8)
    assert running_at_ask[1:] and min(running_at_ask[1:]) == 3     # every later ask: 3 jobs running
    cut = 5
    resumed = replay(OptunaController(seed=3, **args), space, live.journal[:cut], workers=4, seed=3)
    assert [(r.rec_id, r.point) for r in resumed] == [(r.rec_id, r.point) for r in live.issued[:len(resumed)]]
