#!/usr/bin/env bash
# Check config/config_train.json, config/config_automl.json and config/environment.json as `automl.sh`
# would use them and print the search space they define (dimensions, grid size), training nothing.
# Extra arguments go to `mmar-automl validate`, e.g. ./check_config.sh --json or ./check_config.sh --set epochs=2
set -eu
. "$(dirname "${BASH_SOURCE[0]}")/set_env.sh"
mmar_automl validate "$MMAR_ROOT" "$@"
