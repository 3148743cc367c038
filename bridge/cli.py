"""The ``awkward-bridge`` command: ``serve``, ``gc`` and ``stats``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

from .client import Bridge
from .errors import BridgeError
from .gc import collect_dead_segments
from .launcher import server_command


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status (``serve`` does not return)."""
    parser = argparse.ArgumentParser(prog="awkward-bridge", description="Awkward Arrays between Python and Julia.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run a Julia server in the foreground")
    serve.add_argument("--address", required=True, help="ZeroMQ endpoint to bind: ipc:///path or tcp://host:port")
    serve.add_argument("--threads", type=int, default=None, help="worker threads (default: one per CPU)")
    serve.add_argument("--lease-ttl", type=float, default=30.0, help="seconds a silent client keeps its leases")
    serve.add_argument("--include", action="append", default=[], metavar="FILE", help="Julia file every client can call into")
    serve.add_argument("--julia", default=None, help="julia executable (default: $AWKWARD_BRIDGE_JULIA, then PATH)")
    serve.add_argument("--exit-on-stdin-eof", action="store_true", help="stop when standard input closes")

    commands.add_parser("gc", help="remove shared-memory segments whose owner process is gone")

    stats = commands.add_parser("stats", help="print a running server's counters")
    stats.add_argument("address", help="the server's ZeroMQ endpoint")

    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            _serve(args)
        elif args.command == "gc":
            removed = collect_dead_segments()
            for name in removed:
                print(f"removed {name}")
            print(f"{len(removed)} segment(s) removed")
        elif args.command == "stats":
            with Bridge(args.address) as bridge:
                print(json.dumps(bridge.stats(), indent=2, sort_keys=True))
    except (BridgeError, ValueError) as error:
        print(f"awkward-bridge {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


def _serve(args: argparse.Namespace) -> None:
    command = server_command(
        address=args.address,
        threads=args.threads,
        julia=args.julia,
        lease_ttl=args.lease_ttl,
        includes=args.include,
        exit_on_stdin_eof=args.exit_on_stdin_eof,
    )
    sys.stdout.flush()
    # exec: Julia takes over this process, so signals reach it directly, with nothing to forward
    os.execv(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
