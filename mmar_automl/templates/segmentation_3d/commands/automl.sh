#!/usr/bin/env bash
# Clara's automl.sh: `./automl.sh NAME [more options]` searches with config/NAME.json as the train config
# and names the run NAME (its folder: automl/NAME, or <work_dir>/NAME when config_automl.json's MMARHandler
# has a work_dir). Unlike Clara's script it never deletes an existing run folder: run NAME again with
# `mmar-automl run "$MMAR_ROOT" --resume NAME`, or pick another NAME. Without NAME: config/config_train.json
# and a timestamp as the run id. More KEY=VALUE pairs (Clara's: workers=0:1 traceout=both) and options go
# to `mmar-automl run`, e.g. ./automl.sh NAME workers=0:1 or ./automl.sh NAME --max-jobs 8
set -eu
. "$(dirname "${BASH_SOURCE[0]}")/set_env.sh"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ] && [ "${1#*=}" = "$1" ]; then
    NAME="$1"
    shift
    mmar_automl run "$MMAR_ROOT" --set run_id="$NAME" trainconf="$NAME.json" "$@"
else
    mmar_automl run "$MMAR_ROOT" "$@"
fi
