#!/usr/bin/env bash
# Builds docker/Dockerfile and runs the farm of docker/compose.yaml with podman, then checks it:
# every client's answer, a killed client's leases reclaimed while the others are served, a
# graceful `podman stop`, and nothing left behind (containers, volumes, /dev/shm).
#
# The base image is built here (debootstrap'ed bookworm + Julia 1.5.3 from bullseye, by
# docker/local-base.Containerfile) because no registry image can be pulled where CI runs; it is
# cached under a tag that hashes its inputs. podman-compose (1.0.3 in Debian) ignores compose's
# `ipc:` and `pid:`, which the farm needs, so the same topology is started with `podman run`.
# Needs root and the example files (AKB_DATA, default ../shared/data); skips, saying why,
# where either or a working container runtime is missing. docs/farm.md section 4.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C   # one sort order for comm

skip() { echo "SKIP docker/test-farm.sh: $*"; exit 0; }
fail() { echo "FAIL docker/test-farm.sh: $*" >&2; exit 1; }
step() { echo "== farm ($SECONDS s): $*"; }

[ "$(uname -s)" = Linux ] || skip "the farm's containers share a Linux /dev/shm"
[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap and rootful podman)"
DATA=$(realpath -m "${AKB_DATA:-../shared/data}")
[ -f "$DATA/uproot-HZZ.root" ] || skip "no $DATA/uproot-HZZ.root, the clients' data (set AKB_DATA to its directory)"

missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  command -v apt-get >/dev/null || skip "no ${missing[*]} and no apt-get to install them"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/dev/null ||
    skip "could not install ${missing[*]} with apt-get"
fi

run=akb-farm-$$                     # names and labels of this run's containers and volume
tmp=$(mktemp -d /tmp/akb-farm.XXXXXX)
RUNTIME=""
# podman's first command makes /dev/shm/libpod_lock, its locks for containers, pods and volumes
[ -e /dev/shm/libpod_lock ] && had_podman_lock=1 || had_podman_lock=0
cleanup() {
  local status=$? ids
  if [ -n "$RUNTIME" ]; then
    if [ $status -ne 0 ] && podman container exists "$run-server"; then
      echo "-- server log (tail):"; podman logs "$run-server" 2>&1 | tail -n 30 || true
    fi
    ids=$(podman ps -aq --filter "label=akb-farm=$run")
    [ -z "$ids" ] || podman rm -f -t 0 --depend $ids >/dev/null 2>&1 || true
    podman volume rm -f "$run-socket" >/dev/null 2>&1 || true
  fi
  # the lock file this run made goes too, when nothing of podman's is left to need it
  if [ "$had_podman_lock" = 0 ] && [ -e /dev/shm/libpod_lock ] && command -v podman >/dev/null &&
     [ -z "$(podman ps -aq)$(podman pod ps -q)$(podman volume ls -q)" ]; then
    rm -f /dev/shm/libpod_lock
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# The base's tag hashes everything it is built from, so a second run skips debootstrap.
DEBOOTSTRAP=(--variant=minbase bookworm "$tmp/rootfs" http://deb.debian.org/debian)
key=$({ echo "${DEBOOTSTRAP[@]:0:2}"; cat scripts/install-julia.sh docker/local-base.Containerfile; } | sha256sum | cut -c1-16)
BASE=localhost/akb-farm-base:$key
IMAGE=localhost/awkward-bridge:farm-test
probe=$BASE
if ! podman image exists "$BASE"; then
  step "debootstrap bookworm (base $key not cached)"
  debootstrap "${DEBOOTSTRAP[@]}" >"$tmp/debootstrap.log" 2>&1 || { tail "$tmp/debootstrap.log"; fail "debootstrap"; }
  rm -rf "$tmp"/rootfs/var/cache/apt/archives/*.deb "$tmp"/rootfs/var/lib/apt/lists/*
  probe=localhost/akb-farm-minbase:$key
  tar -C "$tmp/rootfs" -c . | podman import -q - "$probe" >/dev/null
  rm -rf "$tmp/rootfs"
fi

# Without CAP_SYS_RESOURCE (so in some CI containers) runc cannot raise rlimits to podman's
# defaults: keep the caller's open-file limit, and the process limit podman itself runs with.
nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] && nofile=1048576
LIMITS=(--ulimit "nofile=$nofile:$nofile" --ulimit nproc=32768:32768)
# crun fails on hosts with hybrid cgroups; runc works there.
for candidate in crun runc; do
  command -v "$candidate" >/dev/null || continue
  if podman --runtime "$candidate" run --rm --network=none "${LIMITS[@]}" "$probe" true >>"$tmp/probe.log" 2>&1; then
    RUNTIME=$candidate; break
  fi
done
[ -n "$RUNTIME" ] || skip "no container runtime works here: $(tail -n 2 "$tmp/probe.log" | tr '\n' ' ')"
pm() { podman --runtime "$RUNTIME" "$@"; }
step "runtime: $RUNTIME"
shm_before=$(ls -A /dev/shm)   # after podman's first run, which makes its own /dev/shm/libpod_lock

# pip inside a build verifies PyPI with the host's CA bundle (this network's proxy has its own
# CA), mounted for the build only: the bundle in the build's /dev/shm, a tmpfs that is not part
# of the image, and a pip.conf naming it, which leaves only an empty /etc/pip.conf behind.
BUILD=(--network=host "${LIMITS[@]}")
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  printf '[global]\ncert = /dev/shm/host-ca.crt\n' >"$tmp/pip.conf"
  BUILD+=(-v /etc/ssl/certs/ca-certificates.crt:/dev/shm/host-ca.crt:ro -v "$tmp/pip.conf:/etc/pip.conf:ro")
fi

if [ "$probe" != "$BASE" ]; then
  step "building $BASE (Julia 1.5.3 from bullseye)"
  pm build -q "${BUILD[@]}" --build-arg "MINBASE=$probe" -f docker/local-base.Containerfile -t "$BASE" . >/dev/null
  podman rmi "$probe" >/dev/null
  # bases built from older inputs are no cache any more
  podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/akb-farm-base:' | grep -vx "$BASE" |
    xargs -r podman rmi >/dev/null 2>&1 || true
fi

step "building $IMAGE from docker/Dockerfile"
previous=$(podman image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
pm build -q "${BUILD[@]}" --build-arg "BASE_IMAGE=$BASE" -f docker/Dockerfile -t "$IMAGE" . >/dev/null
current=$(podman image inspect -f '{{.Id}}' "$IMAGE")
[ -z "$previous" ] || [ "$previous" = "$current" ] || podman rmi "$previous" >/dev/null 2>&1 || true
pm run --rm --network=none "${LIMITS[@]}" "$IMAGE" sh -c '[ ! -s /etc/pip.conf ] && [ ! -e /dev/shm/host-ca.crt ]' ||
  fail "the build's pip configuration is in the image"

# The farm, as compose.yaml: the server owns the IPC namespace and a sized /dev/shm; clients join
# its IPC and pid namespaces (segment and lock-file names carry pids, which must not collide);
# the socket is in a volume only the containers mount. Nobody needs a network. All run as the
# image's user (root): the server and its clients must be one uid (docs/security.md).
ADDRESS=ipc:///run/awkward-bridge/bridge.sock
COMMON=(--label "akb-farm=$run" --network=none "${LIMITS[@]}" -v "$run-socket:/run/awkward-bridge" -v "$DATA:/data:ro")
CLIENT=("${COMMON[@]}" --ipc "container:$run-server" --pid "container:$run-server")
HZZ=(python -m bridge.examples.hzz_four_lepton --data /data/uproot-HZZ.root --address "$ADDRESS" --output /tmp/m4l.png)
stats() { pm exec "$run-server" awkward-bridge stats "$ADDRESS"; }
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
# poll until `podman logs CONTAINER` matches PATTERN, failing after SECONDS or if it exits
wait_log() {
  local container=$1 pattern=$2 deadline=$((SECONDS + $3))
  until pm logs "$container" 2>&1 | grep -q -- "$pattern"; do
    [ "$(podman inspect -f '{{.State.Running}}' "$container")" = true ] || fail "$container exited before logging '$pattern'"
    [ $SECONDS -lt $deadline ] || fail "$container did not log '$pattern' within $3 s"
    sleep 0.5
  done
}

step "starting the server, and the expected answer computed by awkward alone (no bridge)"
pm volume create "$run-socket" >/dev/null
# compose's server, with limits sized for the test's small arrays
pm run -d --name "$run-server" "${COMMON[@]}" --ipc shareable --shm-size 1g --memory 3g "$IMAGE" \
  awkward-bridge serve --address "$ADDRESS" --executor-threads 2 --lease-ttl 30 --executor-memory 512M >/dev/null
pm run -d --name "$run-reference" "${COMMON[@]}" "$IMAGE" python -c '
import awkward as ak, uproot
events = uproot.open("/data/uproot-HZZ.root")["events"].arrays(["Muon_Px", "Electron_Px"])
leptons = ak.num(events.Muon_Px) + ak.num(events.Electron_Px)
print(f"{ak.sum(leptons >= 4)} of {len(events)} events have four leptons")' >/dev/null
wait_log "$run-server" AWKWARD_BRIDGE_READY 180
[ "$(pm wait "$run-reference")" = 0 ] || fail "the reference computation failed: $(pm logs "$run-reference" 2>&1 | tail -3)"
expected=$(pm logs "$run-reference")
step "expected: $expected"

step "a client that holds a send lease, and waits"
pm run -d --name "$run-holder" "${CLIENT[@]}" "$IMAGE" python -c '
import threading, numpy as np
from bridge import Bridge
bridge = Bridge("'"$ADDRESS"'", lease_ttl=5)   # a short lease, so the test waits 7.5 s, not 45
handle = bridge.send(np.arange(1000.0))
print("holding a lease", flush=True)
threading.Event().wait()' >/dev/null
wait_log "$run-holder" "holding a lease" 60
[ "$(stats | field leases)" -ge 1 ] || fail "the server shows no lease for the holding client"

step "three analysis clients (compose's 'analysis' service); the holding client killed meanwhile"
for i in 1 2 3; do pm run -d --name "$run-analysis-$i" "${CLIENT[@]}" "$IMAGE" "${HZZ[@]}" >/dev/null; done
pm run -d --name "$run-observer" "${COMMON[@]}" --ipc "container:$run-server" "$IMAGE" sleep infinity >/dev/null
pm kill "$run-holder" >/dev/null
# the farm's /dev/shm is the server's own tmpfs, not the host's
pm exec "$run-observer" touch "/dev/shm/$run-probe"
[ ! -e "/dev/shm/$run-probe" ] || fail "the farm's /dev/shm is the host's"
pm exec "$run-observer" rm "/dev/shm/$run-probe"
for i in 1 2 3; do
  status=$(pm wait "$run-analysis-$i")
  answer=$(pm logs "$run-analysis-$i" 2>&1)
  [ "$status" = 0 ] || fail "analysis client $i exited with $status: $(tail -n 3 <<<"$answer")"
  grep -qF "$expected; Julia and awkward agree" <<<"$answer" || fail "analysis client $i answered: $answer"
done
step "every analysis client answered: $expected"

# a killed client says no bye: the server reclaims its leases after 1.5 lease TTLs
wait_log "$run-server" "lease reclaimed (1 handles" 60
s=$(stats)
[ "$(field leases <<<"$s")" = 0 ] && [ "$(field clients <<<"$s")" = 1 ] ||
  fail "after the reclaim the server still holds: $s"   # the one client left is stats itself
step "the killed client's lease is reclaimed: $(pm logs "$run-server" 2>&1 | grep -F "lease reclaimed")"
after=$(pm run --rm "${CLIENT[@]}" "$IMAGE" "${HZZ[@]}" 2>&1) || fail "a client after the kill failed: $after"
grep -qF "$expected" <<<"$after" || fail "a client after the kill answered: $after"
step "and a new client is served: $after"

step "a client of another uid is refused by the socket's permissions"
if other=$(pm run --rm "${CLIENT[@]}" --user 1000:1000 -e HOME=/tmp "$IMAGE" \
    python -c "from bridge import Bridge; Bridge('$ADDRESS')" 2>&1); then
  fail "a client running as uid 1000 connected to root's server"
fi
grep -q PermissionError <<<"$other" || fail "uid 1000 failed otherwise than with PermissionError: $(tail -n 2 <<<"$other")"
step "refused: $(tail -n 1 <<<"$other")"

step "podman stop the server"
echo "farm /dev/shm before the stop: $(pm exec "$run-observer" ls -A /dev/shm | tr '\n' ' ')"
start=$SECONDS
pm stop -t 30 "$run-server" >/dev/null
code=$(podman inspect -f '{{.State.ExitCode}}' "$run-server")
log=$(pm logs "$run-server" 2>&1)
[ "$code" = 0 ] || fail "the server exited with $code after podman stop"
grep -q "SIGTERM, shutting down" <<<"$log" && grep -q "\] stopped$" <<<"$log" ||
  fail "the server's log shows no graceful shutdown: $(tail -n 5 <<<"$log")"
step "the server shut down gracefully in $((SECONDS - start)) s, exit 0; its log:"
sed -n '/SIGTERM, shutting down/,$p' <<<"$log"
left=$(pm exec "$run-observer" ls -A /dev/shm)
[ -z "$left" ] || fail "the farm's /dev/shm still holds: $left"

step "removing the farm"
pm rm -f -t 0 --depend "$run-server" >/dev/null   # and the clients, which joined its namespaces
pm rm "$run-reference" >/dev/null
pm volume rm "$run-socket" >/dev/null
[ -z "$(podman ps -aq --filter "label=akb-farm=$run")" ] || fail "containers left: $(podman ps -a --filter "label=akb-farm=$run")"
! podman volume exists "$run-socket" || fail "volume $run-socket left"   # the run makes no pod or network
# Not a failure: the farm cannot write there (checked above), but other bridges on the host can.
new=$(comm -13 <(echo "$shm_before") <(ls -A /dev/shm) | tr '\n' ' ')
[ -z "$new" ] || echo "note: new files in the host's /dev/shm, from processes outside the farm: $new"
step "passed: nothing left behind (images $BASE and $IMAGE kept as the cache)"
