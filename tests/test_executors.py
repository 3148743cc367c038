"""Executors: every client's Julia code runs in a process of its own that the server supervises
(docs/architecture.md). A long loop, Ctrl-C, a timeout, a crash or a memory limit reaches only
the client whose code it is; the server and the other clients go on. Every wait here is on an
event (a marker file, a running call in ``stats``, a process exit), never a guessed sleep."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from bridge import (Bridge, CallInterrupted, CallTimedOut, ExecutorDied, FunctionNotFound,
                    InvalidArray, JuliaError, ResultTypeError, SharedMemoryFull)
from _clients import process_running, python_client, read_report, reap, segments_of, wait_until
from test_served import Served

# Kernels every executor loads (`serve --include`). `spin` never reaches a safepoint on Julia 1.5
# (no allocation, no yield), so it can neither be interrupted nor let a garbage collection in
# its own process run; `churn` allocates all the time.
KERNELS = """
function spin(seconds)
    s, i = 0.0, 0
    deadline = time_ns() + round(UInt64, seconds * 1e9)
    while time_ns() < deadline
        i += 1
        s += sqrt(Float64(i))
    end
    return s > 0
end
churn(n) = sum(length(rand(100)) for _ in 1:n)
hog(bytes) = sum(fill!(Vector{UInt8}(undef, bytes), 0x01))
function meet(mine, theirs)   # true once the other client's call is running at the same time
    touch(mine)
    for _ in 1:3000
        isfile(theirs) && return true
        Libc.systemsleep(0.01)
    end
    return false
end
"""

# What user code does to end its process, and the cause ExecutorDied must name.
CRASHES = {
    "segfault": ('unsafe_load(Ptr{Int}(parse(Int, "0")))', "SIGSEGV"),
    # a constant null pointer is undefined behaviour that LLVM compiles into a trap instruction
    "null-constant": ("unsafe_load(Ptr{Int}(0))", "SIGILL"),
    "abort": ("ccall(:abort, Cvoid, ())", "SIGABRT"),
    "exit": ("exit()", "exited with status 0"),
    "exit-status": ("exit(3)", "exited with status 3"),
    "interrupt-exception": ("throw(InterruptException())", "InterruptException"),
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    directory = tmp_path_factory.mktemp("executors")
    kernels = directory / "kernels.jl"
    kernels.write_text(KERNELS)
    with Served(directory, "--include", str(kernels), "--executor-memory", "1G",
                "--client-shm-quota", "64M") as server:
        yield server
        assert server.stop() == 0


def _running(bridge: Bridge, fn: str) -> list[dict]:
    return [call for call in bridge.stats()["running"] if call["fn"] == fn and call["state"] == "running"]


def test_a_long_loop_in_one_client_holds_up_no_one_else(served, shm_clean):
    with Bridge(served.address) as a, Bridge(served.address) as b, Bridge(served.address) as c:
        outcome: dict = {}
        looping = threading.Thread(target=lambda: outcome.update(a=a.call("spin", 40.0)))
        looping.start()
        assert wait_until(lambda: bool(_running(b, "spin")))
        answered = {"b": 0, "c": 0}

        def work(bridge: Bridge, key: str) -> None:
            while answered[key] < 20:
                assert bridge.call("churn", 2000) == 200_000   # allocates: a GC each time
                answered[key] += 1

        workers = [threading.Thread(target=work, args=(bridge, key)) for bridge, key in ((b, "b"), (c, "c"))]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        # every one of B's and C's calls was answered while A's loop still ran
        assert answered == {"b": 20, "c": 20} and looping.is_alive()
        looping.join()
        assert outcome["a"] is True   # and A's result came back


def test_two_clients_compute_at_the_same_time(served, tmp_path):
    ends = [tmp_path / "a", tmp_path / "b"]
    results: dict = {}
    with Bridge(served.address) as a, Bridge(served.address) as b:
        calls = [threading.Thread(target=lambda bridge=bridge, i=i: results.update(
                     {i: bridge.call("meet", str(ends[i]), str(ends[1 - i]))}))
                 for i, bridge in enumerate((a, b))]
        for call in calls:
            call.start()
        for call in calls:
            call.join()
    assert results == {0: True, 1: True}


# A client process that defines `kept`, starts `name` (which touches the marker file first) and
# reports what the call raised after the test sends it SIGINT, and what `kept` gives afterwards.
CTRL_C_CLIENT = """
import json, sys, time
from bridge import Bridge, CallInterrupted, FunctionNotFound
address, marker, name = sys.argv[1:4]
with Bridge(address) as b:
    b.eval("kept() = 42")
    b.eval(f'''
    looping() = (touch("{marker}"); v = 0; while true; v += length(rand(100)); end)
    forever() = (touch("{marker}"); while true end)
    ''')
    try:
        b.call(name)
        outcome = "returned"
    except CallInterrupted as error:
        outcome, message = "CallInterrupted", str(error)
    raised = time.monotonic()
    try:
        kept = b.call("kept")
    except FunctionNotFound:
        kept = "FunctionNotFound"
    print(json.dumps({"outcome": outcome, "message": message, "raised": raised, "kept": kept,
                      "after": b.call("length", [1, 2, 3])}), flush=True)
"""


@pytest.mark.parametrize("name, definitions", [("looping", "kept"), ("forever", "lost")])
def test_ctrl_c_interrupts_the_julia_call(served, tmp_path, name, definitions):
    marker = tmp_path / "started"
    client = python_client(CTRL_C_CLIENT, served.address, str(marker), name)
    try:
        assert wait_until(marker.exists, timeout=120)
        sent = time.monotonic()
        client.send_signal(signal.SIGINT)
        report = read_report(client)
    finally:
        reap(client, grace=10)
    assert report["outcome"] == "CallInterrupted", report
    assert report["after"] == 3   # the client's next call is served
    print(f"\nCtrl-C on {name}: CallInterrupted {report['raised'] - sent:.3f} s after SIGINT")
    if definitions == "kept":      # the loop reached a safepoint: the interrupt stopped it
        assert report["kept"] == 42 and "kept this client's definitions" in report["message"]
    else:                          # `while true end` never does: killed after the grace period
        assert report["kept"] == "FunctionNotFound" and "definitions (eval, include) are lost" in report["message"]


@pytest.mark.parametrize("body, definitions", [
    ("v = 0; while true; v += length(rand(100)); end", "kept"),
    ("while true end", "lost"),
    # a loop that never allocates, made stoppable as docs/kernels.md says
    ("k = 0; v = 0.0; while true; k += 1; v += sqrt(k); k % 1024 == 0 && GC.safepoint(); end", "kept"),
])
def test_a_timeout_stops_the_call(served, body, definitions):
    with Bridge(served.address) as a:
        a.eval(f"kept() = 42\nendless() = ({body})")
        with pytest.raises(CallTimedOut, match="timed out after 1.0 s") as raised:
            a.call("endless", timeout=1.0)
        assert isinstance(raised.value, CallInterrupted)
        if definitions == "kept":
            assert a.call("kept") == 42
        else:
            assert "lost" in str(raised.value)
            with pytest.raises(FunctionNotFound):
                a.call("kept")
        assert a.call("churn", 10) == 1000   # a fresh executor, with the shared kernels
        with pytest.raises(ValueError, match="timeout"):
            a.call("kept", timeout=0)


def test_an_interrupted_call_that_stopped_may_take_longer_to_report(served):
    # Describing the error can outlast the 1 s a call has to stop (a first backtrace on a loaded
    # machine did); once the executor says the call stopped, its report has 10 s. Here the report
    # is held up by stopping the executor as soon as the server hears that the call stopped.
    with Bridge(served.address) as a:
        a.eval("kept() = 42\nendless() = (v = 0; while true; v += length(rand(100)); end)")
        pid = a.stats()["executor_pid"]
        outcome: dict = {}

        def call() -> None:
            try:
                a.call("endless", timeout=0.5)
            except CallTimedOut as e:
                outcome["error"] = e

        def logged_since(start: int, text: str) -> bool:   # earlier tests log the same lines
            return text in served.log()[start:]

        start = len(served.log())
        caller = threading.Thread(target=call)
        caller.start()
        deadline = time.monotonic() + 60
        while not logged_since(start, "stopped after its interrupt"):
            assert time.monotonic() < deadline and caller.is_alive(), served.log()[start:]
            time.sleep(0.01)
        os.kill(pid, signal.SIGSTOP)
        try:
            # the first grace runs out while the report is held up, unless the report came first
            while caller.is_alive() and not logged_since(start, "has not reported yet"):
                time.sleep(0.05)
        finally:
            os.kill(pid, signal.SIGCONT)
        caller.join(timeout=30)
        assert "timed out after 0.5 s" in str(outcome["error"]) and "lost" not in str(outcome["error"])
        assert a.call("kept") == 42 and a.stats()["executor_pid"] == pid


def test_a_timeout_of_code_on_several_threads_ends_its_executor():
    # The interrupt stops the task of `Threads.@threads` that runs on the main thread, and the
    # call stops waiting for the other task, which nothing stops: the executor must not go on.
    with Bridge(threads=2) as a:
        a.eval("""
            kept() = 42
            function on_threads(n)
                out = zeros(Threads.nthreads())
                Threads.@threads for t in 1:Threads.nthreads()
                    for i in 1:n
                        out[t] += length(string(i))   # allocates: the interrupt lands
                    end
                end
                return sum(out)
            end""")
        assert a.eval("Threads.nthreads()") == 2
        # compiled first: on a loaded machine compiling it took longer than the timeout and its
        # grace together, and an interrupt waits for the compiler
        assert a.call("on_threads", 10) == 22
        pid = a.stats()["executor_pid"]
        with pytest.raises(CallTimedOut, match="timed out after 0.5 s; the call ran code on other threads.*definitions .* are lost"):
            a.call("on_threads", 10**12, timeout=0.5)
        with pytest.raises(FunctionNotFound):
            a.call("kept")
        assert a.stats()["executor_pid"] != pid


def test_an_interrupt_between_jobs_hits_no_later_call(served):
    # A SIGINT that reaches an idle executor (as one meant for a call that had just ended does)
    # is reported and dropped; the executor, and what the client defined in it, live on.
    with Bridge(served.address) as a:
        a.eval("kept() = 42")
        pid = a.stats()["executor_pid"]
        os.kill(pid, signal.SIGINT)
        served.wait_for_log(f"executor pid {pid} reported an interrupt between jobs")
        assert a.call("kept") == 42
        assert a.stats()["executor_pid"] == pid


def test_user_code_that_swallows_the_interrupt_loses_its_executor(served):
    # The call returns normally, but the interrupt never showed: it could hit a later call, so the
    # executor is replaced once the grace period is over.
    with Bridge(served.address) as a:
        a.eval("""
            function swallow()
                try
                    while true
                        rand(10)
                    end
                catch e
                    return e isa InterruptException ? "swallowed" : "other"
                end
            end""")
        pid = a.stats()["executor_pid"]
        assert a.call("swallow", timeout=0.5) == "swallowed"
        served.wait_for_log("caught the interrupt the server sent it")
        with pytest.raises(FunctionNotFound):
            a.call("swallow")
        assert a.stats()["executor_pid"] != pid


@pytest.mark.parametrize("kind", sorted(CRASHES))
def test_a_crash_reaches_only_its_own_client(served, kind, shm_clean):
    code, cause = CRASHES[kind]
    with Bridge(served.address) as a, Bridge(served.address) as b:
        server_pid = a.server_info["server_pid"]
        server_segments = segments_of(server_pid)
        b.eval('mine() = "still here"')
        held = b.call("copy", np.arange(10.0))   # B's result, in the server's memory
        a.eval(f"mine() = 1\ncrash() = {code}")
        victim = a.stats()["executor_pid"]
        with pytest.raises(ExecutorDied, match=re.escape(cause)) as died:
            a.call("crash")
        assert "definitions (eval, include) are lost" in str(died.value)
        assert not os.path.exists(f"/proc/{victim}")   # ended, and reaped by the server
        # A's next call gets a fresh executor, without A's definitions
        assert a.call("churn", 1) == 100
        assert a.stats()["executor_pid"] not in (None, victim)
        with pytest.raises(FunctionNotFound, match="executor was restarted after the last one ended"):
            a.call("mine")
        # B saw nothing: its definitions, its result and its executor are intact
        assert b.call("mine") == "still here"
        assert held.tolist() == list(np.arange(10.0)) and b.call("sum", held) == 45.0
        del held
    # the server lives on, and nothing of A's or B's is left in /dev/shm
    assert wait_until(lambda: segments_of(server_pid) <= server_segments)
    served.wait_for_log(f"executor pid {victim} (of client")
    assert cause in served.log()


def test_a_call_after_its_idle_executor_was_killed_says_the_definitions_are_gone(served):
    # An executor killed between calls (the kernel's out-of-memory killer) answers no call, so
    # only the next one that misses a definition can say why
    with Bridge(served.address) as a:
        a.eval("mine() = 1")
        victim = a.stats()["executor_pid"]
        os.kill(victim, signal.SIGKILL)
        served.wait_for_log(f"executor pid {victim} (of client")
        with pytest.raises(FunctionNotFound, match=r"no function mine.*restarted after the last one ended at "
                                                   r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(killed by SIGKILL.*must be defined again"):
            a.call("mine")
        with pytest.raises(JuliaError, match=r"UndefVarError: mine not defined(.|\n)*restarted after the last one ended at "):
            a.eval("mine() + 1")    # a %julia cell names it in code
        a.eval("mine() = 2")
        assert a.call("mine") == 2


def test_a_result_the_server_cannot_read_ends_only_its_executor(served):
    # A result that is no array travels as msgpack values, whose number the server caps
    # (docs/protocol.md): a long flat list says what to return instead; a nested one that the
    # server cannot read ends the executor that sent it, with the reason, and nothing else
    with Bridge(served.address) as a, Bridge(served.address) as b:
        b.eval('mine() = "still here"')
        a.eval("flat() = fill(nothing, 1_000_000)\nnested() = [[Dict() for _ in 1:1000] for _ in 1:101]")
        with pytest.raises(ResultTypeError, match="too long to travel as a list"):
            a.call("flat")
        with pytest.raises(ExecutorDied, match="could not read .*more than 100000 lists and maps"):
            a.call("nested")
        assert a.call("churn", 1) == 100
        assert b.call("mine") == "still here"


@pytest.mark.parametrize("end", ["bye", "crash"])
def test_processes_user_code_left_running_end_with_its_executor(served, end):
    with Bridge(served.address) as a:
        child = a.eval("getpid(run(`sleep 3600`; wait = false))")
        assert process_running(child)
        if end == "crash":
            with pytest.raises(ExecutorDied):
                a.eval("ccall(:abort, Cvoid, ())")
            assert wait_until(lambda: not process_running(child))
    assert wait_until(lambda: not process_running(child))


def test_a_buffer_changed_after_validation_hurts_only_its_owner(served):
    # The views trust positions read from a buffer once it is validated (docs/ownership.md,
    # "Limits"): a client that rewrites its own handle's offsets afterwards can crash only its
    # own executor, which runs its code anyway.
    import awkward as ak
    import mmap

    offsets = np.array([0, 3, 5], dtype=np.int64)
    array = ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets),
                                                 ak.contents.NumpyArray(np.arange(5.0))))
    with Bridge(served.address) as a, Bridge(served.address) as b:
        b.eval('mine() = "still here"')
        a.eval("last_of_first(v) = v[1][end]")
        handle = a.send(array)
        assert a.call("last_of_first", handle) == 2.0
        victim = a.stats()["executor_pid"]
        rewritten = 0
        for name in segments_of(os.getpid()):
            with open(f"/dev/shm/{name}", "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
                at = m.find(offsets.tobytes())
                if at >= 0:
                    m[at + 8:at + 16] = np.int64(10**12).tobytes()   # the first list now ends far away
                    rewritten += 1
        assert rewritten == 1
        with pytest.raises(ExecutorDied, match="SIGSEGV"):
            a.call("last_of_first", handle)
        assert not os.path.exists(f"/proc/{victim}")
        assert b.call("mine") == "still here"          # nobody else noticed
        assert a.call("sum", [1.0, 2.0]) == 3.0          # and A goes on with a fresh executor
        handle.drop()


def test_a_handle_reaches_a_fresh_executor_with_its_array(served, shm_clean):
    # An executor that opened a handle is sent its id alone (docs/architecture.md, "Handles");
    # the one that replaces it after a crash must get the array again.
    import awkward as ak

    with Bridge(served.address) as a:
        a.eval("total(v) = sum(sum, v)")
        handle = a.send(ak.Array([[1.0, 2.0], [3.0]]))
        assert a.call("total", handle) == 6.0
        assert a.call("total", handle) == 6.0
        crashed = a.stats()["executor_pid"]
        with pytest.raises(ExecutorDied):
            a.eval("ccall(:abort, Cvoid, ())")
        a.eval("total(v) = sum(sum, v)")
        assert a.call("total", handle) == 6.0
        assert a.call("total", handle) == 6.0
        assert a.stats()["executor_pid"] != crashed
        handle.drop()


def test_a_handle_named_many_times_goes_to_a_fresh_executor_once(served, shm_clean):
    # A handle whose form carries a megabyte, named 4000 times, used to be written out 4000 times
    # in the job for a fresh executor: 4 GB in the server's one loop.
    import awkward as ak

    with Bridge(served.address) as a, Bridge(served.address) as other:
        wide = ak.with_parameter(ak.Array(np.arange(4.0)), "pad", "x" * (1 << 20))
        handle = a.send(wide)
        with pytest.raises(ExecutorDied):
            a.eval("exit(3)")
        assert a.call("length", {str(i): handle for i in range(4000)}) == 4000
        assert other.call("+", 1, 2) == 3
        # distinct handles whose arrays would not fit in one message: that call is refused, and
        # the next one runs
        many = [a.send(wide) for _ in range(50)]
        with pytest.raises(ExecutorDied):
            a.eval("exit(3)")
        with pytest.raises(InvalidArray, match="more than 48.0 MiB"):
            a.call("length", tuple(many))
        assert a.call("length", (many[0], handle)) == 2
        for h in [handle, *many]:
            h.drop()


def test_going_over_the_memory_limit_ends_only_that_executor(served):
    with Bridge(served.address) as a, Bridge(served.address) as b:
        b.eval("mine() = 7")
        with pytest.raises(ExecutorDied, match=r"over its limit of 1\.0 GiB .*--executor-memory"):
            a.call("hog", 3 << 30)
        assert a.call("hog", 1000) == 1000
        assert b.call("mine") == 7


def test_the_client_quota_caps_arguments_handles_and_results(served, shm_clean):
    with Bridge(served.address) as a:
        big = np.ones(10_000_000)   # 80 MB, over the 64 MiB quota
        with pytest.raises(SharedMemoryFull, match="quota"):
            a.send(big)
        with pytest.raises(SharedMemoryFull, match="64.0 MiB"):
            a.call("sum", big)
        with pytest.raises(SharedMemoryFull, match="quota"):
            a.call("ones", 10_000_000)
        handle = a.send(np.ones(4_000_000))   # 32 MB: within it
        with pytest.raises(SharedMemoryFull, match="already holds"):
            a.call("ones", 5_000_000)         # 40 MB more would pass it
        assert a.call("sum", handle) == 4_000_000.0
        handle.drop()
        assert len(a.call("ones", 5_000_000)) == 5_000_000
        # The next call is offered a 40 MB block like the last result's. A 56 MB result declines
        # it, so the two never count against the quota together (96 MB would pass it).
        assert len(a.call("ones", 7_000_000)) == 7_000_000


def test_stats_lists_running_calls_and_an_operator_cancels_one(served):
    with Bridge(served.address) as a, Bridge(served.address) as operator:
        a.eval("looping() = (v = 0; while true; v += length(rand(100)); end)")
        outcome: dict = {}

        def run() -> None:
            try:
                a.call("looping")
            except CallInterrupted as error:
                outcome["error"] = str(error)

        caller = threading.Thread(target=run)
        caller.start()
        assert wait_until(lambda: bool(_running(operator, "looping")))
        call = _running(operator, "looping")[0]
        assert call["client"] == a.client_id[:8] and call["op"] == "call" and call["seconds"] >= 0
        shown = subprocess.run([sys.executable, "-m", "bridge.cli", "stats", served.address],
                               capture_output=True, text=True, timeout=120)
        assert shown.returncode == 0 and json.loads(shown.stdout)["running"][0]["fn"] == "looping"
        done = subprocess.run([sys.executable, "-m", "bridge.cli", "cancel", served.address, str(call["call"])],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        caller.join()
        assert "cancelled by client" in outcome["error"]
        assert a.call("churn", 1) == 100   # the interrupt kept its executor
        again = subprocess.run([sys.executable, "-m", "bridge.cli", "cancel", served.address, str(call["call"])],
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 1 and "no call" in again.stderr


VICTIM = """
import json, os, sys, time
import numpy as np
from bridge import Bridge
b = Bridge(sys.argv[1])
h = b.send(np.arange(100_000.0))    # a handle: a segment of this process, which the server keeps
print(json.dumps({"pid": os.getpid()}), flush=True)
time.sleep(600)
"""


def test_a_killed_clients_own_segments_are_removed_by_the_server(served):
    victim = python_client(VICTIM, served.address)
    planted = None
    try:
        pid = read_report(victim)["pid"]
        assert segments_of(pid)
        # anyone can make a directory named like one of its segments: the server skips it
        planted = f"/dev/shm/akb-{pid}-{'0' * 32}"
        os.mkdir(planted)
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
        ttl = 4.0   # Served's --lease-ttl
        assert wait_until(lambda: segments_of(pid) == {os.path.basename(planted)}, timeout=3 * ttl)
        served.wait_for_log("segments of its dead process")
        with Bridge(served.address) as other:
            assert other.call("+", 1, 2) == 3
    finally:
        reap(victim)
        if planted is not None and os.path.isdir(planted):
            os.rmdir(planted)


# A client's own code can talk to the server as its executor does (ExecutorProcess.ask!): what
# it asks for hurts no one else.
ASK = """
const EP = AwkwardBridge.ExecutorProcess
ask(what, fields...) = (scope = task_local_storage(EP.SCOPE_KEY); EP.ask!(scope.executor.link, scope.job, what, fields...))
"""


def test_asks_from_user_code_hurt_no_one_else(served):
    with Bridge(served.address) as other, Bridge(served.address) as attacker:
        attacker.eval(ASK)
        # a block whose size would overflow, or more than /dev/shm holds: refused, the arena whole
        refused, after = attacker.eval('(ask("alloc", "nbytes" => typemax(Int)), ask("alloc", "nbytes" => 4096))')
        assert (refused["ok"], refused["error"]["type"], after["ok"]) == (False, "SharedMemoryFull", True)
        assert attacker.call("copy", np.arange(3.0)).tolist() == [0.0, 1.0, 2.0]
        # more growing results than a call may have: the server ends that executor
        with pytest.raises(ExecutorDied):
            attacker.eval('for _ in 1:300; ask("growing", "buffers" => 1); end')
        served.wait_for_log("a call grows at most 256 results")
        assert other.call("+", 1, 2) == 3


def test_asks_and_reports_forged_by_user_code_change_only_its_own_figures(served):
    with Bridge(served.address) as other, Bridge(served.address) as attacker:
        attacker.eval(ASK)
        # allocs sent without waiting for their answers, to have chunks made past the 64 MiB
        # quota at once: a job's second alloc before its first is answered ends its executor;
        # one that came after it was answered is counted against the quota as usual
        try:
            granted = attacker.eval("""
                scope = task_local_storage(EP.SCOPE_KEY)
                link = scope.executor.link
                for _ in 1:24
                    EP.send!(link, Dict{String,Any}("op" => "ask", "job" => scope.job, "what" => "alloc",
                                                    "nbytes" => 21 << 20))
                end
                count(_ -> EP.receive!(link)["ok"] === true, 1:24)
            """)
            assert granted <= 3, f"{granted} blocks of 21 MiB within a 64 MiB quota"
        except ExecutorDied:
            served.wait_for_log("the job's last alloc is not answered yet")
        # and the chunks made for it, leased or refused, go once free (a 16 MiB reserve stays)
        assert wait_until(lambda: other.stats()["shm_bytes"] <= 16 << 20, timeout=30)
        assert len(other.call("ones", 4_000_000)) == 4_000_000   # 32 MB within its own quota
        # reports with absurd counts: the shared figures stay true
        validations = other.stats()["validations"]
        attacker.eval(ASK)
        attacker.eval("""
            scope = task_local_storage(EP.SCOPE_KEY)
            EP.send!(scope.executor.link, Dict{String,Any}("op" => "mapped", "cached_bytes" => -(1 << 62)))
        """)
        assert wait_until(lambda: other.stats()["cached_bytes"] >= 0 and attacker.eval("1") == 1)
        # (its real `done` then names a job that is over, which ends its executor)
        assert attacker.eval("""
            scope = task_local_storage(EP.SCOPE_KEY)
            EP.send!(scope.executor.link, Dict{String,Any}("op" => "done", "job" => scope.job, "ok" => true,
                                                           "result" => 1, "validations" => 1 << 62))
            2
        """) == 1
        assert other.stats()["validations"] == validations


def _raw_requests(bridge: Bridge, address: str):
    """Send requests as ``bridge``'s client without waiting for replies: a generator's ``send``
    takes (op, fields) and returns the request id; ``next`` returns the next reply."""
    import msgpack
    import zmq

    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(address)
    return socket, lambda number, op, fields: socket.send(msgpack.packb(
        {"v": 1, "id": number, "client": bridge.client_id, "token": bridge._connection.token, "op": op, **fields})), \
        lambda: msgpack.unpackb(socket.recv(), raw=False)


def test_a_client_can_keep_only_so_much_waiting_for_its_executor(served):
    with Bridge(served.address) as other, Bridge(served.address) as greedy:
        socket, post, reply = _raw_requests(greedy, served.address)
        try:
            post(1, "call", {"fn": "sleep", "args": [5]})
            assert wait_until(lambda: _running(greedy, "sleep"))   # running: not among those waiting
            for number in range(2, 2 + 1024):
                post(number, "eval", {"code": "1"})
            post(5000, "eval", {"code": "2"})                      # the 1025th waiting
            refused = reply()
            assert refused["id"] == 5000 and refused["error"]["type"] == "ProtocolError"
            assert "1024 requests" in refused["error"]["message"] and "wait for their replies" in refused["error"]["message"]
            assert other.call("+", 1, 2) == 3
            answered = {reply()["id"] for _ in range(1 + 1024)}
            assert answered == set(range(1, 2 + 1024))
            # and so many bytes: four requests of 15 MiB wait, a fifth does not
            post(6000, "call", {"fn": "sleep", "args": [5]})
            assert wait_until(lambda: _running(greedy, "sleep"))
            big = "# " + "x" * (15 << 20) + "\n1"
            for number in range(6001, 6006):
                post(number, "eval", {"code": big})
            refused = reply()
            assert refused["id"] == 6005 and refused["error"]["type"] == "ProtocolError"
            assert {reply()["id"] for _ in range(5)} == set(range(6000, 6005))
        finally:
            socket.close()


def test_a_stopped_executor_gets_one_forget_at_a_time(served):
    # Every `drop` used to send the client's executor a `forget` at once: one that does not read
    # them (its own code stopped it) piled them up in the server, about 9 MB each here.
    from _clients import rss_kib

    with Bridge(served.address) as other, Bridge(served.address) as attacker:
        server_pid = attacker.server_info["server_pid"]
        attacker.eval('run(`sh -c "sleep 0.5; kill -STOP $(getpid())"`; wait = false)')   # between jobs
        executor = attacker.stats()["executor_pid"]
        assert wait_until(lambda: open(f"/proc/{executor}/stat").read().split(") ")[1][0] == "T")
        before = rss_kib(server_pid)
        ids = list(range(1 << 40, (1 << 40) + 999_000))
        for _ in range(120):
            attacker._request("drop", {"handles": [], "functions": ids})
        grown = rss_kib(server_pid) - before
        assert grown < 400 * 1024, f"the server grew by {grown // 1024} MiB"
        assert other.call("+", 1, 2) == 3
        os.kill(executor, signal.SIGCONT)
        assert attacker.eval("1 + 1") == 2


def test_a_reply_too_large_for_the_server_is_an_error(served):
    with Bridge(served.address) as a:
        with pytest.raises(ResultTypeError, match="over the 64.0 MiB"):
            a.eval('"x" ^ (65 << 20)')
        assert a.eval("1 + 1") == 2   # its executor kept going, and so did the server


def test_executor_threads_are_the_users(served, tmp_path):
    with Bridge(served.address) as a:
        assert a.server_info["threads"] == 2 == a.eval("Threads.nthreads()")   # Served: --threads 2
        assert a.eval("s = zeros(Int, 2); Threads.@threads for i in 1:2; s[i] = Threads.threadid(); end; sort(s)") \
            .tolist() == [1, 2]


def test_the_log_says_when_executors_start_and_end_and_why(served):
    with Bridge(served.address) as a:
        a.eval("crash() = ccall(:abort, Cvoid, ())")
        pid = a.stats()["executor_pid"]
        with pytest.raises(ExecutorDied):
            a.call("crash")
    served.wait_for_log(f"executor pid {pid}")
    log = served.log()
    assert re.search(rf"executor pid {pid} (started|now serves client {a.client_id[:8]})", log)
    assert re.search(rf"executor pid {pid} \(of client {a.client_id[:8]}\) ended after [0-9.]+ s: killed by SIGABRT", log)


def test_serve_exits_non_zero_when_it_was_not_asked_to_stop(tmp_path):
    broken = tmp_path / "broken.jl"
    broken.write_text('error("this kernel file is broken")\n')
    done = subprocess.run([sys.executable, "-m", "bridge.cli", "serve", "--address", f"ipc://{tmp_path}/s",
                           "--include", str(broken)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "this kernel file is broken" in done.stderr and "the first executor did not start" in done.stderr
