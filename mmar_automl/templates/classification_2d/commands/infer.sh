#!/usr/bin/env bash
# Clara's infer.sh: run the exported TorchScript model (MMAR_TORCHSCRIPT, written by export.sh) with
# config/config_inference.json; predictions go to MMAR_EVAL_OUTPUT_PATH.
set -eu
. "$(dirname "${BASH_SOURCE[0]}")/set_env.sh"
mmar_automl evaluate "$MMAR_ROOT" --config config/config_inference.json "$@"
