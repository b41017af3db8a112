#!/usr/bin/env bash
# Wheels that scripts/bench_gpu.py needs on a GPU machine with no network (Python 3.12, manylinux x86_64):
# what the machine's image lacks of mmar-automl's dependencies (monai, ignite, nibabel, optuna, jsonschema)
# and typer at our pinned version, each with the requirements the image does not already hold
# (its torch, numpy, packaging, pyyaml, tqdm, attrs, markupsafe, markdown-it-py, pygments, nvidia-ml-py,
# scikit-image and tensorboard are used as they are; rich and typing-extensions come along at our versions
# because typer/pydantic need recent ones). MLflow is left out (about 40 MiB with its own needs): bench_gpu.py runs its
# searches with --no-mlflow. One version of each package: two stop the whole install.
#
#   bash scripts/gpu_wheels.sh            # -> .whl/ (ignored by git), prints the size and Requires-Dist
#
# On the GPU machine (docs/gpu.md):
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.whl
PY=${PYTHON:-.venv/bin/python}
PACKAGES=(
  monai==1.6.1
  pytorch-ignite==0.5.5
  nibabel==5.4.2
  optuna==5.0.0 alembic==1.20.1 sqlalchemy==2.1.9 mako==1.4.3 colorlog==6.12.0
  jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1
  typer==0.29.1 annotated-doc==0.0.7 shellingham==1.5.4 rich==15.0.0 typing-extensions==4.16.0
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
)
mkdir -p "$DEST"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64 \
         manylinux_2_24_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64 manylinux_2_35_x86_64; do
  platforms+=(--platform "$p")
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d "$DEST" "${PACKAGES[@]}"
echo "wheels in $DEST:"
ls -1 "$DEST"
echo "total: $(du -sh "$DEST" | cut -f1)"
echo "Requires-Dist (non-extra) of each, to check against the list above and the image's packages:"
for w in "$DEST"/*.whl; do
  reqs=$(unzip -p "$w" '*.dist-info/METADATA' | grep '^Requires-Dist' | grep -v 'extra ==' | sed 's/^Requires-Dist: //' | tr '\n' ';' || true)
  echo "  $(basename "$w"): ${reqs:-none}"
done
