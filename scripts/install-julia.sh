#!/usr/bin/env bash
# Installs Julia 1.5.3 from Debian bullseye on a Debian bookworm machine (no Julia registry is
# reachable here, so the server needs only Julia's standard library). Skips when a working
# `julia` is already on PATH. bullseye's libunwind8 is forced: with bookworm's 1.6, Julia 1.5.3
# segfaults on every exception thrown from compiled code.
set -euo pipefail

julia_ok() {
  command -v julia >/dev/null 2>&1 &&
    julia --startup-file=no -e 'f()=error("x"); try f() catch; println("ok") end' 2>/dev/null | grep -qx ok
}

if julia_ok; then
  echo "julia: $(julia --version) already works"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "No julia on PATH and no apt-get: install Julia >= 1.5 (https://julialang.org/downloads) or set AWKWARD_BRIDGE_JULIA." >&2
  exit 1
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

if ! grep -rqs bullseye /etc/apt/sources.list /etc/apt/sources.list.d/; then
  $sudo tee /etc/apt/sources.list.d/bullseye.list >/dev/null <<'LIST'
deb http://deb.debian.org/debian bullseye main
LIST
  $sudo tee /etc/apt/preferences.d/bullseye-pin >/dev/null <<'PIN'
Package: *
Pin: release n=bullseye
Pin-Priority: 100
PIN
fi

$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --allow-downgrades -t bullseye julia libunwind8/bullseye

julia_ok || { echo "julia installed but an exception test failed (check libunwind8 version)" >&2; exit 1; }
echo "julia: $(julia --version) works"
