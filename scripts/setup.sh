#!/usr/bin/env bash
# Sets up a fresh machine for awkward-bridge: Julia (scripts/install-julia.sh) and a Python
# virtual environment in .venv with the package, its test dependencies, and the Dask and
# example extras that tests exercise. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-julia.sh

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test,dask,examples]"
echo "setup: $(.venv/bin/python --version), $(julia --version), .venv ready"
