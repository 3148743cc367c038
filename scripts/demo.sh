#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the seed talk's demo: path_length over a
# 1048576 * var * float32 array in Julia through the bridge, against ak.sum and a Python loop.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
.venv/bin/awkward-bridge demo "$@"
