"""Julia's output where the user looks (issue 14): what a call prints reaches the caller's
``sys.stdout``/``sys.stderr`` before the call returns, its log records become records of the
``bridge.julia`` logger at their own level, and in served mode each client gets only its own."""

from __future__ import annotations

import json
import logging

import pytest

from bridge import Bridge, ExecutorDied
from bridge.client.julia_output import julia_style, python_level
from test_served import Served


@pytest.fixture(scope="module")
def bridge():
    with Bridge() as shared:
        yield shared


def test_prints_reach_python_stdout_and_stderr_before_the_result(bridge, capsys):
    result = bridge.eval('println("from Julia"); print(stderr, "a warning line\\n"); '
                         'ccall(:puts, Cint, (Cstring,), "from C"); 42')
    assert result == 42
    out, err = capsys.readouterr()
    assert out == "from Julia\nfrom C\n"
    assert err == "a warning line\n"
    assert bridge.eval("1 + 1") == 2
    assert capsys.readouterr() == ("", "")   # nothing left over for the next call


def test_a_child_process_alone_is_caught(bridge, capsys):
    bridge.eval("run(`echo from a child`); nothing")
    assert capsys.readouterr().out == "from a child\n"


def test_a_broken_stdout_does_not_cost_the_result(bridge, monkeypatch, caplog):
    class Broken:
        def write(self, text):
            raise OSError("the notebook went away")

        def flush(self):
            pass

    monkeypatch.setattr("sys.stdout", Broken())
    assert bridge.eval('println("lost"); 7') == 7
    assert "could not show the output" in caplog.text


def test_output_of_a_failing_call_is_shown_before_its_error(bridge, capsys):
    with pytest.raises(Exception, match="boom"):
        bridge.eval('println("partial work"); error("boom")')
    assert capsys.readouterr().out == "partial work\n"


def test_log_records_keep_their_level(bridge, caplog):
    with caplog.at_level(logging.DEBUG, logger="bridge.julia"):
        bridge.eval('@info "selected" n = 3; @warn "few events"; @error "bad file"; @debug "hidden"')
    records = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "bridge.julia"]
    assert records == [(logging.INFO, "selected\n  n = 3"), (logging.WARNING, "few events"),
                       (logging.ERROR, "bad file")]


def test_without_logging_configured_records_print_as_julia_shows_them(bridge, capsys, monkeypatch):
    monkeypatch.setattr(logging.getLogger("bridge.julia"), "hasHandlers", lambda: False)
    bridge.eval('@info "hello"; @warn "two" x = 1')
    assert capsys.readouterr().err == "[ Info: hello\n┌ Warning: two\n└   x = 1\n"


def test_binary_and_huge_output_arrive_as_text(bridge, capsys):
    bridge.eval('write(stdout, UInt8[0x61, 0xff, 0x62]); nothing')
    assert capsys.readouterr().out == "a\ufffdb"
    bridge.eval('print("x" ^ (3 << 20)); nothing')
    out = capsys.readouterr().out
    assert out.startswith("x" * 1000) and "more bytes of this call's output were cut" in out
    assert len(out) < (3 << 20)


def test_a_crash_shows_what_the_call_printed_and_the_crash_report(bridge, capsys):
    with pytest.raises(ExecutorDied, match="SIGSEGV"):
        # no flush: the streams are buffered as a terminal's, stdout by lines and stderr not at all
        bridge.eval('println("before the crash"); print(stderr, "no newline"); unsafe_load(Ptr{Int}(parse(Int, "0")))')
    out, err = capsys.readouterr()
    assert out == "before the crash\n"
    assert err.startswith("no newline") and "Segmentation fault" in err


def test_each_served_client_sees_only_its_own_output(tmp_path, capsys):
    with Served(tmp_path) as served, Bridge(served.address) as a, Bridge(served.address) as b:
        a.eval('println("for a")')
        assert capsys.readouterr().out == "for a\n"
        b.eval('println("for b"); @info "b logs"')
        out, err = capsys.readouterr()
        assert out == "for b\n" and "for a" not in out
        assert "for a" not in served.log() and "for b" not in served.log()


def test_levels_and_style():
    assert python_level(-1000) == (logging.DEBUG, "Debug")
    assert python_level(0) == (logging.INFO, "Info")
    assert python_level(1500) == (logging.WARNING, "Warning")
    assert python_level(2000) == (logging.ERROR, "Error")
    assert julia_style("Info", "one line") == "[ Info: one line\n"
    assert julia_style("Error", "a\nb\nc") == "┌ Error: a\n│ b\n└ c\n"


class _Rendezvous:
    """A ``sys.stdout`` that keeps each write, and creates ``file`` once ``cue`` has been written:
    the Julia code waits for that file, so it goes on only if its output arrived while it ran."""

    def __init__(self, file, cue: str) -> None:
        self.file, self.cue, self.writes = file, cue, []

    def write(self, text: str) -> None:
        self.writes.append(text)
        if self.cue in "".join(self.writes) and not self.file.exists():
            self.file.write_text("seen")

    def flush(self) -> None:
        pass


def _wait_for(file) -> str:
    return f'while !isfile({json.dumps(str(file))}); sleep(0.01); end'


def test_output_arrives_while_the_call_runs(bridge, tmp_path, monkeypatch):
    seen = _Rendezvous(tmp_path / "seen", "started\n")
    monkeypatch.setattr("sys.stdout", seen)
    # without live output the loop would wait for its file until the timeout
    assert bridge.eval(f'println("started"); {_wait_for(seen.file)}; println("finished"); 7', timeout=120) == 7
    assert seen.writes == ["started\n", "finished\n"]   # each part once


def test_streamed_output_is_capped_over_the_whole_call(bridge, tmp_path, monkeypatch):
    seen = _Rendezvous(tmp_path / "seen", "x" * 600_000)
    monkeypatch.setattr("sys.stdout", seen)
    bridge.eval(f'print("x" ^ 600_000); flush(stdout); {_wait_for(seen.file)}; print("x" ^ 600_000)', timeout=120)
    cap = 1 << 20
    assert "".join(seen.writes) == "x" * cap + f"\n[awkward-bridge: {1_200_000 - cap} more bytes of this call's output were cut]\n"


def test_a_crash_after_streamed_output_repeats_none_of_it(bridge, tmp_path, monkeypatch):
    seen = _Rendezvous(tmp_path / "seen", "before the crash\n")
    monkeypatch.setattr("sys.stdout", seen)
    with pytest.raises(ExecutorDied, match="SIGSEGV"):
        bridge.eval(f'println("before the crash"); {_wait_for(seen.file)}; println("after"); '
                    'unsafe_load(Ptr{Int}(parse(Int, "0")))', timeout=120)
    assert seen.writes[0] == "before the crash\n" and "".join(seen.writes) == "before the crash\nafter\n"


def test_a_client_from_the_protocol_gets_output_messages_only_when_it_asks(bridge, tmp_path):
    """docs/protocol.md "Output", as a client written from it sees the wire: output messages
    carry the request's id and no ``ok``; together with the reply's, each byte comes once, and a
    character whose bytes are split across writes is never cut."""
    import msgpack
    import zmq

    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RCVTIMEO, 120_000)
    socket.connect(bridge.address)

    def request(number: int, fields: dict) -> tuple[list[dict], dict]:
        socket.send(msgpack.packb({"v": 1, "id": number, "client": bridge.client_id,
                                   "token": bridge._connection.token, "op": "eval", **fields}))
        messages, streamed = [], ""
        while True:
            message = msgpack.unpackb(socket.recv(), raw=False)
            assert message["id"] == number
            if "ok" in message:
                return messages, message
            assert set(message) == {"v", "id", "output"}
            messages.append(message)
            streamed += message["output"].get("stdout", "")
            if streamed == "a\nx" and not (tmp_path / "go").exists():
                (tmp_path / "go").write_text("go")

    try:
        # the second character's bytes, 0xce 0xb1, go out in two writes with a wait between
        code = (f'print("a\\n"); write(stdout, UInt8[0x78, 0xce]); flush(stdout); {_wait_for(tmp_path / "go")}; '
                'write(stdout, UInt8[0xb1, 0x0a]); 1')
        messages, reply = request(1, {"code": code, "stream_output": True})
        assert reply["ok"] is True and reply["result"] == 1
        text = "".join(m["output"].get("stdout", "") for m in messages) + reply.get("output", {}).get("stdout", "")
        assert text == "a\nxα\n"
        # without asking: no output messages, and everything in the reply
        messages, reply = request(2, {"code": 'println("all at once"); 2'})
        assert messages == [] and reply["output"] == {"stdout": "all at once\n"}
        messages, reply = request(3, {"code": "3", "stream_output": "yes"})
        assert reply["ok"] is False and reply["error"]["type"] == "ProtocolError" and "stream_output" in reply["error"]["message"]
    finally:
        socket.close()


def test_log_records_arrive_while_the_call_runs(bridge, tmp_path):
    seen = tmp_path / "seen"

    class Cue(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.records: list[tuple[int, str]] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append((record.levelno, record.getMessage()))
            if record.getMessage() == "started":
                seen.write_text("seen")

    logger, cue = logging.getLogger("bridge.julia"), Cue()
    level = logger.level
    logger.addHandler(cue)
    logger.setLevel(logging.INFO)
    try:
        # without live records the loop would wait for its file until the timeout
        assert bridge.eval(f'@info "started"; {_wait_for(seen)}; @warn "finished"; 8', timeout=120) == 8
    finally:
        logger.removeHandler(cue)
        logger.setLevel(level)
    assert cue.records == [(logging.INFO, "started"), (logging.WARNING, "finished")]


def test_a_crash_report_comes_from_the_executors_own_files_whatever_user_code_put_in_their_place(bridge, capsys):
    with pytest.raises(ExecutorDied, match="SIGABRT"):
        bridge.eval('path = readlink("/proc/self/fd/1"); mv(path, path * ".moved"); write(path, "forged"); '
                    'println("printed after the move"); ccall(:abort, Cvoid, ())', timeout=120)
    out, err = capsys.readouterr()
    assert out == "printed after the move\n"
    assert "forged" not in out + err and "Aborted" in err
