"""The ``awkward-bridge`` command line (``gc``; ``serve`` and ``stats`` are in test_bridge_serve.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from bridge.cli import main
from bridge.shm import SHM_DIR
from bridge.wire import segment_name
from test_bridge_launcher import VERSION_ANSWER


def test_gc_removes_segments_of_dead_owners_only(capsys, shm_clean):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    orphan = os.path.join(SHM_DIR, segment_name(int(dead.stdout)))
    mine = os.path.join(SHM_DIR, segment_name())
    for path in (orphan, mine):
        with open(path, "wb") as file:
            file.write(b"x")
    try:
        assert main(["gc"]) == 0
        out = capsys.readouterr().out
        assert f"removed {os.path.basename(orphan)}" in out
        assert not os.path.exists(orphan)
        assert os.path.exists(mine)  # this process is alive
    finally:
        for path in (orphan, mine):
            if os.path.exists(path):
                os.unlink(path)


def test_stats_refuses_an_address_that_is_not_zeromq(capsys):
    assert main(["stats", "http://localhost:1"]) == 1
    assert "ipc:// or tcp://" in capsys.readouterr().err


def test_unknown_command_is_refused():
    with pytest.raises(SystemExit) as caught:
        main(["frobnicate"])
    assert caught.value.code == 2


# A stand-in server: READY, then it waits; stdin EOF and SIGINT are recorded in files.
FAKE_JULIA = """
trap 'echo int >> "$(dirname "$0")/signals"' INT
echo "$@" > "$(dirname "$0")/args"
echo "AWKWARD_BRIDGE_READY ipc:///fake"
cat > /dev/null
echo eof > "$(dirname "$0")/eof"
exit 0
"""


def test_serve_turns_sigterm_into_closing_the_servers_stdin(tmp_path):
    julia = tmp_path / "julia"
    julia.write_text("#!/bin/sh\n" + VERSION_ANSWER + FAKE_JULIA)
    julia.chmod(0o755)
    serve = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "serve", "--address", "ipc:///fake", "--julia", str(julia), "--log-calls",
         "--executor-memory", "2G", "--client-shm-quota", "512M", "--executor-threads", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert serve.stdout.readline().startswith("AWKWARD_BRIDGE_READY")
        args = (tmp_path / "args").read_text().split()
        assert "--exit-on-stdin-eof" in args and "--log-calls" in args
        for flag, value in (("--executor-memory", 2 << 30), ("--client-shm-quota", 512 << 20), ("--executor-threads", 3)):
            assert args[args.index(flag) + 1] == str(value)
        serve.send_signal(signal.SIGTERM)
        out, err = serve.communicate(timeout=60)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.communicate()
    assert serve.returncode == 0
    assert (tmp_path / "eof").read_text().strip() == "eof"  # the server saw EOF: a graceful stop
    assert "SIGTERM, shutting down" in err


def test_serve_stops_cleanly_on_a_sigterm_that_comes_while_the_server_starts(tmp_path, monkeypatch):
    """A supervisor may signal as soon as READY shows; the handler must already be ours."""
    julia = tmp_path / "julia"
    julia.write_text("#!/bin/sh\n" + VERSION_ANSWER + FAKE_JULIA)
    julia.chmod(0o755)
    real_popen = subprocess.Popen

    def popen_signalled_on_start(*args, **kwargs):
        if kwargs.get("start_new_session"):  # the server itself, not `julia --version`
            os.kill(os.getpid(), signal.SIGTERM)
        return real_popen(*args, **kwargs)

    class NotServesHandler(Exception):
        pass

    def not_serves_handler(signum, frame):
        raise NotServesHandler("SIGTERM met the handler that was there before serve's")

    previous = signal.signal(signal.SIGTERM, not_serves_handler)
    monkeypatch.setattr(subprocess, "Popen", popen_signalled_on_start)
    try:
        status = main(["serve", "--address", "ipc:///fake", "--julia", str(julia)])
        assert signal.getsignal(signal.SIGTERM) is not_serves_handler  # serve gave the handler back
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert status == 0
    assert (tmp_path / "eof").read_text().strip() == "eof"  # the server saw EOF: a graceful stop


# A stand-in server slow to stop: after stdin EOF it keeps "finishing calls" until SIGINT.
SLOW_JULIA = """
trap 'echo int > "$(dirname "$0")/signals"; kill $sleeper; exit 0' INT
echo "AWKWARD_BRIDGE_READY ipc:///fake"
cat > /dev/null
echo eof > "$(dirname "$0")/eof"
sleep 60 > /dev/null 2>&1 &
sleeper=$!
wait $sleeper
"""


def test_a_second_signal_tells_the_server_to_stop_waiting(tmp_path):
    julia = tmp_path / "julia"
    julia.write_text("#!/bin/sh\n" + VERSION_ANSWER + SLOW_JULIA)
    julia.chmod(0o755)
    serve = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "serve", "--address", "ipc:///fake", "--julia", str(julia)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert serve.stdout.readline().startswith("AWKWARD_BRIDGE_READY")
        serve.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 60
        while not (tmp_path / "eof").exists():
            assert time.monotonic() < deadline, "the server never saw stdin close"
            time.sleep(0.05)
        serve.send_signal(signal.SIGINT)
        serve.communicate(timeout=60)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.communicate()
    assert serve.returncode == 0
    assert (tmp_path / "signals").read_text().strip() == "int"  # passed on as SIGINT
