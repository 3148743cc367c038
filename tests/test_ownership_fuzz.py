"""Thousands of malformed messages from a raw DEALER socket: each gets an error reply or is
dropped, the server stays up, and a well-behaved client sharing the server is unaffected."""

from __future__ import annotations

import json
import os
import random
import secrets
import time

import awkward as ak
import msgpack
import numpy as np
import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from _clients import CALM_TTL, observer, running_server, segments_of, settled, wait_until
from bridge.client.keys import load_client_keys
from bridge.shm import Segment
from bridge.wire import segment_name

MESSAGES = 3000
SEED = 20261125
REPLY_TIMEOUT = 60.0  # seconds; generous, the machine is shared
# what a malformed request may legitimately be answered with; anything else (BoundsError,
# an internal error, …) means some input reached code that did not check it
EXPECTED_ERRORS = {"ProtocolError", "InvalidArray", "UnknownClient", "FunctionNotFound", "MethodError",
                   "AuthenticationFailed"}
ARRAY = ak.Array([[1.0, 2.0], [], [3.0]])
FORM = ak.forms.from_dict({"class": "ListOffsetArray", "offsets": "i64", "form_key": "node0",
                           "content": {"class": "NumpyArray", "primitive": "float64", "form_key": "node1"}}).to_json()


@pytest.fixture(scope="module", params=["ipc", "tcp"])
def server(request, tmp_path_factory):
    """The same server over ipc, and over tcp authenticated with CURVE keys."""
    if request.param == "ipc":
        yield from running_server(threads=2, lease_ttl=CALM_TTL)
    else:
        key_file = str(tmp_path_factory.mktemp("keys") / "server.key")
        yield from running_server(threads=2, lease_ttl=CALM_TTL, address="tcp://127.0.0.1:0", key_file=key_file)


def raw_dealer(server) -> zmq.Socket:
    """A DEALER connected to the server, with the key file's client keys for tcp."""
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    if server.key_file is not None:
        keys = load_client_keys(server.key_file)
        socket.curve_serverkey, socket.curve_publickey, socket.curve_secretkey = keys
    return socket


class Fuzzer:
    """Builds malformed messages; ``own`` is a real 4 KiB segment of this process."""

    def __init__(self, rng: random.Random, client: str, token: str, own: str, foreign: list[str], other_handle: int):
        self.rng = rng
        self.client = client
        self.token = token  # a malicious client is a registered one: its requests show its token
        self.own = own
        self.foreign = foreign  # server results leased to the other client, a name of a dead pid
        self.other_handle = other_handle
        self.makers = [
            self.random_bytes, self.truncated, self.not_a_map, self.bad_envelope, self.unknown_op,
            self.bad_fields, self.bad_array, self.bad_array, self.deep_nesting, self.absurd_lengths,
            self.multi_frame,
        ]

    def message(self) -> list[bytes]:
        return self.rng.choice(self.makers)()

    def envelope(self, op: str, **fields) -> dict:
        return {"v": 1, "id": self.rng.randrange(2**40), "client": self.client, "token": self.token, "op": op, **fields}

    def pack(self, value) -> list[bytes]:
        return [msgpack.packb(value, use_bin_type=True)]

    def random_bytes(self) -> list[bytes]:
        return [self.rng.randbytes(self.rng.randrange(0, 300))]

    def truncated(self) -> list[bytes]:
        frame = msgpack.packb(self.envelope("call", fn="identity", args=[self.array_value()]))
        return [frame[: self.rng.randrange(0, len(frame))]]

    def not_a_map(self) -> list[bytes]:
        return self.pack(self.rng.choice([None, 1, "call", [1, 2], 1.5, b"\x00" * 9, True]))

    def bad_envelope(self) -> list[bytes]:
        message = self.envelope("ping")
        key = self.rng.choice(["v", "id", "client", "op"])
        message[key] = self.rng.choice([None, -1, 2**64 - 1, "x", 1.5, [1], {"a": 1}, "", "../../etc", "a" * 100, 2])
        if self.rng.random() < 0.2:
            del message[key]
        return self.pack(message)

    def unknown_op(self) -> list[bytes]:
        return self.pack(self.envelope(self.rng.choice(["exit", "shutdown", "CALL", "", "eval2", "__init__", "kill"])))

    def bad_fields(self) -> list[bytes]:
        junk = self.rng.choice([None, -7, "x", 1.5, [None], {"$": "array"}, b"\x01", 2**63, [-1, "a"]])
        op, field = self.rng.choice([
            ("hello", "pid"), ("hello", "lease_ttl"), ("hello", "name"), ("call", "fn"), ("call", "args"),
            ("eval", "code"), ("eval", "filename"), ("send", "array"), ("drop", "handles"),
            ("release", "leases"), ("ping", "release"), ("call", "drop"),   # the last two carried
        ])
        fields = {"fn": "identity", "args": [1]} if op == "call" else {}
        if op == "hello":
            fields = {"pid": os.getpid(), "lease_ttl": 2.0}
        if op == "eval":
            # a valid `code` would be run: only ever send eval a wrong code type
            field, junk = "code", self.rng.choice([None, 1, [b"x"], {"a": 1}])
        fields[field] = junk
        return self.pack(self.envelope(op, **fields))

    def array_value(self, **changes) -> dict:
        value = {"$": "array", "form": FORM, "length": 3,
                 "buffers": {"node0-offsets": [self.own, 0, 32], "node1-data": [self.own, 64, 24]}}
        value.update(changes)
        return value

    def bad_array(self) -> list[bytes]:
        rng = self.rng
        segment = rng.choice([self.own, *self.foreign, "../../etc/passwd", "akb-1-" + "0" * 32, "", 5, None,
                              segment_name(1), "/akb-1-" + "0" * 32])
        buffer = [segment, rng.choice([0, 64, -8, 2**62, 4095, 2**63 - 1]), rng.choice([0, 24, 32, -1, 2**63 - 1, 4097])]
        key = rng.choice(["node0-offsets", "node1-data", "node9-data", ""])
        change = rng.choice([
            {"buffers": {"node0-offsets": buffer, "node1-data": [self.own, 64, 24]}},
            {"buffers": {"node0-offsets": [self.own, 0, 32], key: buffer}},
            {"length": rng.choice([-1, 2**62, 2**63 - 1, 10**6, "3", None])},
            {"form": rng.choice(["", "{", "null", "[" * 500 + "]" * 500, '{"class": "Nope"}', FORM[:-5], 3,
                                 json.dumps({"class": "NumpyArray", "primitive": "float128"})])},
            {"buffers": rng.choice([[], "x", {"node0-offsets": [self.own, 0]}, {"node0-offsets": "x"}])},
            {"$": rng.choice(["handle", "tuple", "nope"]), "id": rng.choice([self.other_handle, -1, 2**40, "1"])},
        ])
        value = self.array_value(**change)
        if rng.random() < 0.3:
            return self.pack(self.envelope("send", array=value))
        return self.pack(self.envelope("call", fn=rng.choice(["identity", "length", "no_such_fn", "Base.nothing"]),
                                       args=[value]))

    def deep_nesting(self) -> list[bytes]:
        depth = self.rng.choice([65, 200, 10_000, 100_000])
        opener = self.rng.choice([b"\x91", b"\x81\xa1k"])
        nested = opener * depth + b"\xc0"
        head = msgpack.packb(self.envelope("call", fn="identity"))
        # the envelope map gets one more entry, "args", holding the nest
        return [bytes([head[0] + 1]) + head[1:] + msgpack.packb("args") + nested]

    def absurd_lengths(self) -> list[bytes]:
        rng = self.rng
        header = rng.choice([b"\xdd", b"\xdf", b"\xdb", b"\xc6"])  # array32, map32, str32, bin32
        size = rng.choice([2**32 - 1, 2**31, 16 * 2**20 + 1])
        return [header + size.to_bytes(4, "big") + rng.randbytes(rng.randrange(0, 64))]

    def multi_frame(self) -> list[bytes]:
        good = msgpack.packb(self.envelope("ping"))
        return self.rng.choice([[good, good], [b"", good], [good, b"\xc1"], [b"x"] * 5])


def test_fuzzed_server_keeps_serving_everyone(server, shm_clean):
    with observer(server) as victim:
        server_pid = victim.server_info["server_pid"]
        handle = victim.send(ARRAY)
        kept = victim.call("copy", ARRAY)
        foreign = sorted(segments_of(server_pid)) + [segment_name(server_pid)]
        own = Segment.create(4096)
        np.asarray(own.array()[:32]).view(np.int64)[:] = [0, 2, 2, 3]
        np.asarray(own.array()[64:88]).view(np.float64)[:] = [1.0, 2.0, 3.0]
        socket = raw_dealer(server)
        socket.connect(server.address)
        try:
            sync_id, fuzz_id = "sync" + secrets.token_hex(8), "fuzz" + secrets.token_hex(8)

            tokens: dict[str, str] = {}

            def request(client: str, op: str, request_id: int, **fields) -> None:
                token = {"token": tokens[client]} if client in tokens else {}
                socket.send(msgpack.packb({"v": 1, "id": request_id, "client": client, "op": op, **token, **fields}))

            replies: list[dict] = []

            def await_reply(request_id: int) -> dict:
                deadline = time.monotonic() + REPLY_TIMEOUT
                while time.monotonic() < deadline:
                    if socket.poll(100):
                        reply = msgpack.unpackb(socket.recv(), raw=False, strict_map_key=False)
                        assert isinstance(reply, dict) and reply.get("v") == 1, reply
                        if reply.get("id") == request_id:
                            return reply
                        replies.append(reply)
                pytest.fail(f"no reply to request {request_id} within {REPLY_TIMEOUT} s: the server hangs")

            sync_request = 2**50  # fuzz ids are below 2**40 or absurd: no confusion
            for client in (sync_id, fuzz_id):
                request(client, "hello", sync_request, pid=os.getpid(), lease_ttl=CALM_TTL)
                hello = await_reply(sync_request)
                assert hello["ok"]
                tokens[client] = hello["result"]["token"]
                sync_request += 1

            fuzzer = Fuzzer(random.Random(SEED), fuzz_id, tokens[fuzz_id], own.name, foreign, handle.id)
            for n in range(MESSAGES):
                socket.send_multipart(fuzzer.message())
                if n % 10 == 9:  # the server still answers the well-behaved client on this socket
                    request(sync_id, "ping", sync_request)
                    assert await_reply(sync_request)["result"] == "pong"
                    sync_request += 1
            # worker replies may still be on their way: wait until none came for a while
            while socket.poll(1000):
                replies.append(msgpack.unpackb(socket.recv(), raw=False, strict_map_key=False))

            accepted = [reply for reply in replies if reply.get("ok")]
            refused = [reply for reply in replies if not reply.get("ok")]
            types = {reply["error"]["type"] for reply in refused}
            assert types <= EXPECTED_ERRORS, {t: next(r["error"]["message"] for r in refused if r["error"]["type"] == t) for t in types - EXPECTED_ERRORS}
            assert len(refused) > MESSAGES // 3  # most malformed requests are answered, not ignored
            print(f"fuzz: {MESSAGES} messages, {len(refused)} error replies "
                  f"({', '.join(sorted(types))}), {len(accepted)} accepted, the rest dropped")
            for client in (fuzz_id, sync_id):
                request(client, "bye", sync_request)
                bye = await_reply(sync_request)  # UnknownClient if a fuzzed bye came first
                assert bye["ok"] or bye["error"]["type"] == "UnknownClient", bye
                sync_request += 1
        finally:
            socket.close(0)
            own.unlink()
            own.close()

        # the other client is unaffected: its handle and result are intact, and it is served
        assert ak.array_equal(victim.call("identity", handle), ARRAY)
        assert ak.array_equal(kept, ARRAY)
        assert ak.array_equal(victim.call("copy", ARRAY), ARRAY)
        handle.drop()
        del kept
        # the fuzz client's bye kills its executor if a job of it runs; the job ends when the
        # server has reaped the process
        assert wait_until(lambda: settled(victim.stats(), clients=1)), victim.stats()
        assert server.alive()
        assert "internal error" not in server.stderr_tail()
    assert segments_of(server_pid) == set()


def test_oversized_frame_cuts_off_only_its_sender(server, shm_clean):
    """A frame over the 16 MiB limit makes libzmq drop that peer, never the server."""
    socket = raw_dealer(server)
    monitor = socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    socket.connect(server.address)
    try:
        socket.send(b"\x80" + b"\x00" * (16 * 2**20 + 1))
        assert monitor.poll(60_000), "the server did not cut off the sender of an oversized frame"
        assert recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED
        with observer(server) as bridge:
            assert ak.array_equal(bridge.call("copy", ARRAY), ARRAY)
            assert settled(bridge.stats(), clients=1)
    finally:
        socket.disable_monitor()
        monitor.close(0)
        socket.close(0)
    assert server.alive()
