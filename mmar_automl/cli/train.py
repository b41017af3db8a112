"""`mmar-automl train MMAR [--config PATH] [--set KEY=VALUE ...] [--device cpu|cuda]`: one training
run of a Clara 4.x config_train.json with MONAI. Thin: the work is ``mmar_automl.train.run.main``, which
the outer loop's job processes call too; torch and monai are imported only when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mmar_automl.cli import app


@app.command(context_settings={"allow_interspersed_args": True})
def train(
    mmar_root: Path = typer.Argument(..., metavar="MMAR", help="The MMAR folder (holds config/config_train.json), or a MONAI bundle (configs/train.json|yaml, docs/bundles.md)."),
    extra: Optional[list[str]] = typer.Argument(
        None, metavar="[KEY=VALUE]...", help="More --set overrides: --set epochs=2 num_interval_per_valid=1."),
    config: Optional[Path] = typer.Option(
        None, "--config", metavar="FILE", help="The train config [default: MMAR/config/config_train.json]."),
    overrides: Optional[list[str]] = typer.Option(
        None, "--set", metavar="KEY=VALUE",
        help="Override a first-level config key or environment.json variable (epochs=2), or a JSON path "
        "(train.model.args.channels=[8,16,32]); several pairs may follow one --set. Values are JSON when they "
        "parse, else strings. An unknown key is an error."),
    device: Optional[str] = typer.Option(
        None, "--device", metavar="cpu|cuda", help="cpu or cuda [default: cuda when use_gpu is true and a GPU is visible]."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the trained network (docs/gpu.md)."),
    fast_paths: bool = typer.Option(
        True, "--fast-paths/--no-fast-paths",
        help="The config's fast_paths keys (bf16 AMP, channels_last_3d, ...; all off unless a key turns one on, docs/gpu.md); --no-fast-paths turns them all off."),
    nproc: Optional[int] = typer.Option(
        None, "--nproc", metavar="N", min=1,
        help="Train as N DistributedDataParallel processes (one per visible GPU; gloo ranks on the CPU), as "
        "Clara's train_multi_gpu.sh [default: 1, or every visible GPU when the config says multi_gpu: true]."),
) -> int:
    """Train one MMAR: writes models/model.pt, train_stats.json, metrics.jsonl (and TensorBoard events)."""
    from mmar_automl.config.overrides import set_items
    from mmar_automl.errors import UsageError

    pairs = set_items(overrides, extra, "train")
    if device not in (None, "cpu", "cuda"):
        raise UsageError(f"train: --device must be cpu or cuda, got {device!r}")

    from mmar_automl.bundle import is_bundle

    if is_bundle(mmar_root):  # a MONAI bundle: monai.bundle's ConfigWorkflow trains it (docs/bundles.md)
        from mmar_automl.bundle.job import train as train_bundle

        code = train_bundle(mmar_root, config=config, overrides=pairs, device=device)
        if code:
            raise typer.Exit(code)
        return code
    from mmar_automl.train.run import train as run_training

    argv_device = device
    code = run_training(mmar_root, config=config, overrides=pairs, device=argv_device, compile=compile,
                        fast_paths=fast_paths, nproc=nproc)
    if code:
        raise typer.Exit(code)
    return code
