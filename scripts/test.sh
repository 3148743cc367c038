#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs every test: the Julia package's own suite, then pytest.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

AWKWARD_BRIDGE_LIBZMQ=$(.venv/bin/python -c 'from bridge.client.launcher import find_libzmq; print(find_libzmq())')
export AWKWARD_BRIDGE_LIBZMQ

echo "== Julia tests (julia_server/test/runtests.jl)"
julia --startup-file=no --threads=2 --project=julia_server julia_server/test/runtests.jl

echo "== Python tests (pytest)"
.venv/bin/python -m pytest "$@"
