#!/usr/bin/env bash
# Clara's export.sh: write the TorchScript model MMAR_TORCHSCRIPT (models/model.ts) from the trained
# checkpoint MMAR_CKPT (models/model.pt), for infer.sh and for deployment.
set -eu
. "$(dirname "${BASH_SOURCE[0]}")/set_env.sh"
mmar_automl export "$MMAR_ROOT" "$@"
