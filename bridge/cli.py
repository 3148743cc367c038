"""The ``awkward-bridge`` command: ``serve``, ``gc``, ``stats``, ``cancel``, ``demo`` and ``--version``."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
from typing import Optional, Sequence

from . import __version__
from .client import Bridge
from .examples import seed_path_length
from .base import BridgeError
from .shm import collect_dead_segments, collect_dead_socket_dirs
from .client.launcher import server_command, server_environment
from .wire import PROTOCOL_VERSION


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="awkward-bridge", description="Awkward Arrays between Python and Julia.")
    parser.add_argument("--version", action="version",
                        version=f"awkward-bridge {__version__} (wire protocol {PROTOCOL_VERSION})")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run a Julia server in the foreground")
    serve.add_argument("--address", required=True, help="ZeroMQ endpoint to bind: ipc:///path or tcp://host:port")
    serve.add_argument("--lease-ttl", type=float, default=30.0, help="seconds a silent client keeps its leases")
    serve.add_argument("--include", action="append", default=[], metavar="FILE",
                       help="Julia file every client's executor loads and every client can call into")
    serve.add_argument("--julia", default=None, help="julia executable (default: $AWKWARD_BRIDGE_JULIA, then PATH)")
    serve.add_argument("--executor-threads", "--threads", dest="threads", type=int, default=None, metavar="N",
                       help="threads of each client's executor, for Threads.@threads in user code (default 1)")
    serve.add_argument("--executor-memory", type=_size, default=None, metavar="BYTES",
                       help="memory each executor may use before it is killed (ExecutorDied), e.g. 4G "
                            "(default: 80%% of the machine's memory; 0: no limit)")
    serve.add_argument("--client-shm-quota", type=_size, default=None, metavar="BYTES",
                       help="shared memory one client's handles, arguments and results may hold, e.g. 2G "
                            "(default: no quota beyond /dev/shm)")
    serve.add_argument("--project", default=None, metavar="PATH",
                       help="the Julia project user code runs in, whose packages `using` finds "
                            "(default: the per-user environment ~/.julia/environments/awkward-bridge)")
    serve.add_argument("--spare-executors", type=int, default=None, metavar="N",
                       help="executors kept started for new clients (default 1; with 0, the one started with the "
                            "server, which shows that executors start, still serves the first client)")
    serve.add_argument("--exit-on-stdin-eof", action="store_true", help="also stop when standard input closes")
    serve.add_argument("--log-calls", action="store_true", help="log every eval, call and send (busy servers: a line per request)")
    serve.add_argument("--key-file", default=None, metavar="PATH",
                       help="a tcp:// server's CURVE key file, created (mode 0600) when missing; clients need it "
                            "(default: $AWKWARD_BRIDGE_KEY_FILE, else the user's default key file)")
    serve.add_argument("--log-values", action="store_true",
                       help="put error messages in the log; they carry users' values (off: the log names error types only)")

    commands.add_parser("gc", help="remove shared-memory segments and socket directories whose owner process is gone")

    stats = commands.add_parser("stats", help="print a running server's counters and the calls it is running")
    stats.add_argument("address", help="the server's ZeroMQ endpoint")
    stats.add_argument("--key-file", default=None, metavar="PATH", help="a tcp:// server's key file")

    cancel = commands.add_parser("cancel", help="stop a running call (its number from `stats`) without restarting the server")
    cancel.add_argument("address", help="the server's ZeroMQ endpoint")
    cancel.add_argument("--key-file", default=None, metavar="PATH", help="a tcp:// server's key file")
    cancel.add_argument("call", type=int, help="the call's number, as `awkward-bridge stats` lists it")

    # its options are the demo's own (`awkward-bridge demo --help`)
    commands.add_parser("demo", help="run the seed talk's path_length demo on a private server", add_help=False)

    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        seed_path_length.main(rest)
        return 0
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        if args.command == "serve":
            return _serve(args)
        elif args.command == "gc":
            removed = collect_dead_segments()
            for name in removed:
                print(f"removed {name}")
            print(f"{len(removed)} segment(s) removed")
            directories = collect_dead_socket_dirs()
            for path in directories:
                print(f"removed {path}")
            print(f"{len(directories)} socket directory(ies) removed")
        elif args.command == "stats":
            with _operator_bridge(args) as bridge:
                print(json.dumps(bridge.stats(), indent=2, sort_keys=True))
        elif args.command == "cancel":
            with _operator_bridge(args) as bridge:
                if not bridge._request("cancel", {"call": args.call}):
                    print(f"awkward-bridge cancel: no call {args.call} is running or queued", file=sys.stderr)
                    return 1
                print(f"call {args.call}: interrupted")
    except (BridgeError, ValueError, PermissionError) as error:
        print(f"awkward-bridge {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


def _operator_bridge(args: argparse.Namespace) -> Bridge:
    """A client for an operator's command, with the key file for a tcp:// address."""
    key_file = args.key_file if args.address.startswith("tcp://") else None
    return Bridge(args.address, key_file=key_file)


def _size(text: str) -> int:
    """A byte count: digits, optionally followed by K, M, G or T (powers of 1024)."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    number, unit = text.rstrip("KMGTkmgtBb"), text[len(text.rstrip("KMGTkmgtBb")):].upper().rstrip("B")
    if not number.isdigit() or unit not in units:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size in bytes (like 4096, 512M or 4G)")
    return int(number) * units[unit]


def _serve(args: argparse.Namespace) -> int:
    """Run the Julia server as a child until it exits; returns its exit status.

    Julia 1.5's standard library cannot catch SIGTERM, so this process takes SIGTERM and SIGINT
    and turns them into closing the child's stdin, on which the server shuts down gracefully:
    it finishes calls in flight (bounded), answers new requests ``ShuttingDown`` and unlinks
    every segment it owns. A second signal is passed on to Julia as SIGINT (stop waiting).
    """
    command = server_command(
        address=args.address,
        threads=args.threads,
        julia=args.julia,
        lease_ttl=args.lease_ttl,
        includes=args.include,
        exit_on_stdin_eof=True,
        log_calls=args.log_calls,
        log_values=args.log_values,
        key_file=args.key_file,
        executor_memory=args.executor_memory,
        client_shm_quota=args.client_shm_quota,
        spare_executors=args.spare_executors,
        project=args.project,
    )
    sys.stdout.flush()
    # Handlers go in before the child starts: once it prints READY, a supervisor may signal us
    # at once, and a SIGTERM that met Python's default handler would kill us without a clean stop.
    signals = [0]
    started: list[subprocess.Popen] = []

    def stop(signum: int, frame: object) -> None:
        signals[0] += 1
        if signals[0] == 1:
            print(f"awkward-bridge serve: {signal.Signals(signum).name}, shutting down", file=sys.stderr, flush=True)
            if started:
                _close_stdin(started[0])
        elif started and started[0].poll() is None:
            started[0].send_signal(signal.SIGINT)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        # the child's stdout and stderr are ours (READY line, log); its stdin is the stop switch
        child = subprocess.Popen(command, stdin=subprocess.PIPE, start_new_session=True, env=server_environment())
        started.append(child)
        if signals[0]:  # a signal came while the child was starting
            _close_stdin(child)
        if args.exit_on_stdin_eof:
            _close_child_stdin_on_eof(child)
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for child in started:
            if child.poll() is None:
                child.kill()
                child.wait()


def _close_child_stdin_on_eof(child: subprocess.Popen) -> None:
    """Forward EOF on our stdin to the child (``--exit-on-stdin-eof``), from a daemon thread."""

    def watch() -> None:
        while sys.stdin.buffer.read1(65536):
            pass
        _close_stdin(child)

    threading.Thread(target=watch, name="akb-serve-stdin", daemon=True).start()


def _close_stdin(child: subprocess.Popen) -> None:
    try:
        assert child.stdin is not None
        child.stdin.close()
    except (OSError, ValueError):
        pass  # already closed, by the other of signal and EOF


if __name__ == "__main__":
    sys.exit(main())
