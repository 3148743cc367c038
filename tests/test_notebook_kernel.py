"""A real Jupyter kernel (ipykernel, driven by jupyter_client as a notebook drives it): a
``%%julia`` cell's output reaches the notebook while the cell runs, as stream messages of that
cell, and the kernel's shutdown leaves no Julia process behind."""

from __future__ import annotations

import json
import queue
import subprocess
import time

import pytest

jupyter_client = pytest.importorskip("jupyter_client", reason="jupyter_client is a test dependency (pip install -e '.[test]')")
pytest.importorskip("ipykernel", reason="ipykernel is a test dependency (pip install -e '.[test]')")
from jupyter_client.manager import KernelManager  # noqa: E402

from _clients import process_running, wait_until  # noqa: E402

TIMEOUT = 300.0   # a first %julia starts a Julia server in the kernel


def _julia_children_of(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-a", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "julia" in line]


def _run_cell(client, code: str, on_stream=None) -> tuple[list[str], dict]:
    """Run ``code``; the texts of its stream messages, in order, and its execute_reply."""
    msg_id = client.execute(code)
    texts, deadline, idle = [], time.monotonic() + TIMEOUT, False
    while not idle:
        assert time.monotonic() < deadline, f"the cell did not finish: {texts}"
        try:
            message = client.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = message["msg_type"], message["content"]
        if kind == "stream":
            texts.append(content["text"])
            on_stream is not None and on_stream("".join(texts))
        idle = kind == "status" and content["execution_state"] == "idle"
    reply = client.get_shell_msg(timeout=TIMEOUT)
    assert reply["parent_header"]["msg_id"] == msg_id
    return texts, reply["content"]


def test_a_julia_cell_shows_its_output_while_it_runs(tmp_path):
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(tmp_path))
    client = manager.client()
    client.start_channels()
    kernel_pid = manager.provisioner.process.pid
    try:
        client.wait_for_ready(timeout=TIMEOUT)
        _, reply = _run_cell(client, "%load_ext bridge")
        assert reply["status"] == "ok", reply
        seen = tmp_path / "seen"

        def cue(text: str) -> None:
            if "started" in text and not seen.exists():
                seen.write_text("seen")

        # the cell waits for a file the test makes only once the cell's first line has arrived
        texts, reply = _run_cell(client, f'%%julia\nprintln("started")\n'
                                         f'while !isfile({json.dumps(str(seen))}); sleep(0.01); end\n'
                                         'println("finished")', on_stream=cue)
        assert reply["status"] == "ok", reply
        assert texts == ["started\n", "finished\n"]
        servers = _julia_children_of(kernel_pid)
        assert servers, "the kernel's bridge started no Julia server"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=False)
    assert wait_until(lambda: not any(process_running(pid) for pid in servers), timeout=60), \
        "the kernel's Julia server outlived the kernel"
