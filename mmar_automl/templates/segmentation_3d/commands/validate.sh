#!/usr/bin/env bash
# Clara's validate.sh: evaluate the trained model (MMAR_CKPT) with config/config_validation.json over the
# validation datalist; metrics go to MMAR_EVAL_OUTPUT_PATH, the key metric is printed.
# Extra arguments go to `mmar-automl evaluate`, e.g. ./validate.sh --set MMAR_CKPT=models/other.pt
set -eu
. "$(dirname "${BASH_SOURCE[0]}")/set_env.sh"
mmar_automl evaluate "$MMAR_ROOT" --config config/config_validation.json "$@"
