#!/usr/bin/env bash
# Sourced by the other commands (Clara style): MMAR_ROOT is the folder above commands/, so the MMAR
# can be moved or zipped; its custom/ and BYOC/ folders go on PYTHONPATH for `path` components.
MMAR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MMAR_ROOT
export PYTHONPATH="$MMAR_ROOT/custom:$MMAR_ROOT/BYOC${PYTHONPATH:+:$PYTHONPATH}"

# The mmar-automl command: $MMAR_AUTOML if set, else `mmar-automl` on PATH, else the Python that
# created this MMAR with `mmar-automl init` (so the scripts work without activating its venv).
mmar_automl() {
    if [ -n "${MMAR_AUTOML:-}" ]; then
        $MMAR_AUTOML "$@"
    elif command -v mmar-automl >/dev/null 2>&1; then
        mmar-automl "$@"
    else
        "{{PYTHON}}" -m mmar_automl "$@"
    fi
}
