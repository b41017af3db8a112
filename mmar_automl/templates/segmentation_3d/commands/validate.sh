#!/usr/bin/env bash
# Check config/config_train.json and config/config_automl.json and print the search space they define
# (dimensions, grid size) without training anything.
set -eu
. "$(dirname "${BASH_SOURCE[0]}")/set_env.sh"
mmar_automl validate "$MMAR_ROOT" "$@"
