"""Fast tests of the Ray backend's pieces that need no cluster: shipping, environments, options."""

from __future__ import annotations

import io
import os
import sys
import tarfile
import time
from pathlib import Path

import pytest

from mmar_automl.backends import check_backend
from mmar_automl.backends._ray_node import job_folder_visible, node_environment
from mmar_automl.backends._ship import manifest, pack, unpack
from mmar_automl.errors import UsageError
from mmar_automl.backends.protocol import JobSpec


def _job_folder(root: Path) -> Path:
    (root / "config").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "custom").mkdir()
    (root / "config" / "config_train.json").write_text('{"a": 1}')
    (root / "custom" / "net.py").write_text("X = 1\n")
    (root / "models" / "pretrained.pt").write_bytes(b"w" * 5000)
    (root / "automl_job.json").write_text('{"job_uid": "abc"}')
    os.symlink("/data/shared/set", root / "data_link")
    return root


def test_pack_unpack_round_trip_and_outputs_only(tmp_path):
    src = _job_folder(tmp_path / "orch" / "W1_1_J1")
    (src / "empty").mkdir()
    node = tmp_path / "node" / "W1_1_J1"
    unpack(pack(src), node)
    assert manifest(node).keys() == manifest(src).keys()
    assert (node / "models" / "pretrained.pt").read_bytes() == b"w" * 5000
    assert os.readlink(node / "data_link") == "/data/shared/set"
    assert (node / "empty").is_dir()
    inputs = manifest(node)
    # the job writes outputs and rewrites its config; the pretrained checkpoint is left alone
    time.sleep(0.01)
    (node / "models" / "metrics.jsonl").write_text('{"kind": "end"}\n')
    (node / "models" / "model.pt").write_bytes(b"m")
    (node / "log.txt").write_text("done\n")
    (node / "config" / "config_train.json").write_text('{"a": 2}')
    back = pack(node, unchanged=inputs)
    names = sorted(tarfile.open(fileobj=io.BytesIO(back)).getnames())
    assert names == ["config/config_train.json", "log.txt", "models/metrics.jsonl", "models/model.pt"]
    written = unpack(back, src)
    assert sorted(written) == names
    assert (src / "config" / "config_train.json").read_text() == '{"a": 2}'
    assert (src / "models" / "model.pt").read_bytes() == b"m"
    assert (src / "models" / "pretrained.pt").read_bytes() == b"w" * 5000


@pytest.mark.parametrize("name", ["../evil.txt", "/abs/evil.txt", "models/../../evil.txt"])
def test_unpack_refuses_paths_outside_the_folder(tmp_path, name):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(ValueError, match="refusing"):
        unpack(buf.getvalue(), tmp_path / "job")
    assert not (tmp_path / "evil.txt").exists()


def test_unpack_refuses_a_relative_link_out_of_the_folder(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("models/link")
        info.type, info.linkname = tarfile.SYMTYPE, "../../../etc"
        tar.addfile(info)
    with pytest.raises(ValueError, match="refusing link"):
        unpack(buf.getvalue(), tmp_path / "job")


def test_job_folder_visible_only_for_this_job(tmp_path):
    folder = _job_folder(tmp_path / "W1_1_J1")
    assert job_folder_visible(str(folder), "abc")
    assert not job_folder_visible(str(folder), "another-uid")    # same path, another run's folder
    assert not job_folder_visible(str(tmp_path / "missing"), "abc")


def test_node_environment():
    job = {"MMAR_AUTOML_JOB_ENTRY": "x:main", "PYTHONPATH": "/shared/code", "HOSTNAME": "orchestrator",
           "CUDA_VISIBLE_DEVICES": "3", "CUDA_DEVICE_ORDER": "PCI_BUS_ID", "RAY_ADDRESS": "orch:6379", "HOME": "/h"}
    node = {"HOSTNAME": "node7", "PATH": "/usr/bin", "RAY_RAYLET_PID": "12", "HOME": "/node-home"}
    env = node_environment(job, node, ["0", "2"])
    assert env["CUDA_VISIBLE_DEVICES"] == "0,2"          # Ray's GPUs, not the orchestrator's worker index
    assert env["HOSTNAME"] == "node7" and env["PATH"] == "/usr/bin"
    assert env["MMAR_AUTOML_JOB_ENTRY"] == "x:main" and env["PYTHONPATH"] == "/shared/code"
    assert not any(k.startswith("RAY_") for k in env)
    assert node_environment(job, node, [])["CUDA_VISIBLE_DEVICES"] == ""   # a CPU job sees no GPU
    # Ray numbers GPUs in the node's CUDA order, not in the orchestrator's PCI_BUS_ID order
    assert "CUDA_DEVICE_ORDER" not in env
    assert node_environment(job, {**node, "CUDA_DEVICE_ORDER": "FASTEST_FIRST"}, ["1"])["CUDA_DEVICE_ORDER"] == \
        "FASTEST_FIRST"


def test_gpu_count_of_a_job():
    from mmar_automl.backends.ray import job_gpu_count

    def spec(visible: str) -> JobSpec:
        return JobSpec("u", "m:f", [], "/tmp", {"CUDA_VISIBLE_DEVICES": visible}, "/tmp/log.txt")

    assert [job_gpu_count(spec(v)) for v in ("", "0", "2,3", "0,1,2,3")] == [0, 1, 2, 4]


def test_backend_option():
    assert check_backend(None) == "local" and check_backend("Ray", "auto") == "ray"
    with pytest.raises(UsageError, match="expected one of local, ray"):
        check_backend("slurm")
    with pytest.raises(UsageError, match="only applies to --backend ray"):
        check_backend("local", "10.0.0.1:6379")


# -- the CLI without a cluster: one line, exit 2, nothing created ------------------------------------------

def _mmar(tmp_path: Path) -> Path:
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_fixtures", Path(__file__).parents[1] / "run" / "conftest.py")
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)
    return fixtures.write_mmar(tmp_path / "mmar", fixtures.light_config())


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_without_ray_installed_the_cli_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    from mmar_automl.cli import main

    mmar = _mmar(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)   # `import ray` raises ImportError, as without the extra
    assert main(["run", str(mmar), "--no-mlflow", "--backend", "ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'mmar-automl[ray]'" in err[0]
    assert not (mmar / "automl").exists()


@pytest.mark.parametrize("args, message", [
    (["--backend", "ray", "--ray-address", "127.0.0.1:{port}"], "no Ray cluster answers there"),
    (["--backend", "ray", "--ray-address", "nonsense"], "expected auto, local, HOST:PORT"),
    (["--backend", "slurm"], "expected one of local, ray"),
    (["--ray-address", "127.0.0.1:6379"], "only applies to --backend ray"),
])
def test_bad_backend_options_exit_2_with_one_line(tmp_path, capsys, args, message):
    pytest.importorskip("ray")
    from mmar_automl.cli import main

    mmar = _mmar(tmp_path)
    args = [a.format(port=_free_port()) for a in args]
    assert main(["run", str(mmar), "--no-mlflow", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (mmar / "automl").exists()


# -- --workers on a cluster: indices count GPUs, Ray places them -------------------------------------------

def _backend(*nodes: dict):
    from mmar_automl.backends.ray import RayBackend

    backend = RayBackend("auto")
    backend.alive_nodes = lambda: [{"id": f"n{k}", "ip": "10.0.0.1", "resources": r} for k, r in enumerate(nodes)]
    return backend


def test_workers_on_a_cluster():
    from mmar_automl.backends import ray_workers

    two_by_two = _backend({"CPU": 8, "GPU": 2}, {"CPU": 8, "GPU": 2})
    assert [w.gpus for w in ray_workers(None, two_by_two)] == [[0], [1], [2], [3]]   # one job per cluster GPU
    assert [len(w.gpus) for w in ray_workers("0,1:2,3", two_by_two)] == [2, 2]
    assert [w.gpus for w in ray_workers("cpu:cpu", two_by_two)] == [[], []]
    with pytest.raises(UsageError, match="the Ray cluster has 4 GPU"):
        ray_workers("0:5", two_by_two)
    with pytest.raises(UsageError, match="asks for 3 GPU.*largest has 2"):    # no node has 3 GPUs
        ray_workers("0,1,2", two_by_two)
    cpus_only = _backend({"CPU": 2}, {"CPU": 3})
    assert [w.gpus for w in ray_workers(None, cpus_only)] == [[]] * 5             # one job per cluster CPU
    with pytest.raises(UsageError, match="asks for 1 GPU.* and 1 CPU"):                # its GPU node has no CPU
        ray_workers("0", _backend({"CPU": 0, "GPU": 1}, {"CPU": 4}))


def test_backend_modules_import_no_ray_nor_torch():
    import subprocess

    code = ("import sys\n"
            "import mmar_automl.backends, mmar_automl.backends.ray, mmar_automl.backends._ray_node, "
            "mmar_automl.backends._ship\n"
            "print(sorted(m for m in ('ray', 'torch', 'monai', 'mlflow', 'numpy') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_auto_with_a_dead_cluster_address_exits_2_at_once(tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray")
    from mmar_automl.cli import main

    mmar = _mmar(tmp_path)
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{_free_port()}")   # e.g. left over from a stopped cluster
    assert main(["run", str(mmar), "--no-mlflow", "--backend", "ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--ray-address auto (= " in err[0] and "no Ray cluster answers there" in err[0]
    assert not (mmar / "automl").exists()
