#!/usr/bin/env bash
# Search hyperparameters over the `search` blocks of config/config_train.json with the controller and
# handlers of config/config_automl.json; jobs go to automl/<run_id>/.
# Extra arguments go to `mmar-automl run`, e.g. ./automl.sh --workers 0:1 or ./automl.sh --resume
set -eu
. "$(dirname "${BASH_SOURCE[0]}")/set_env.sh"
mmar_automl run "$MMAR_ROOT" "$@"
