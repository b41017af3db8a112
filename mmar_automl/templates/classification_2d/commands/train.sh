#!/usr/bin/env bash
# Train this MMAR once at the values written in config/config_train.json (no search).
# Extra arguments go to `mmar-automl train`, e.g. ./train.sh --set epochs=2
set -eu
. "$(dirname "${BASH_SOURCE[0]}")/set_env.sh"
mmar_automl train "$MMAR_ROOT" "$@"
