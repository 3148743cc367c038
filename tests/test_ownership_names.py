"""Names, modes and protections of shared memory end to end: unguessable names naming the owner,
0600 and O_EXCL segments, a 0700 socket directory, read-only arguments, sealed before shared."""

from __future__ import annotations

import os
import stat

import awkward as ak
import numpy as np
import pytest

import bridge.client.transport
import bridge.shm.segment
from _clients import CALM_TTL, observer, segments_of, running_server
from bridge import JuliaError
from bridge.shm import SHM_DIR, Segment
from bridge.wire import segment_pid

ARRAY = ak.Array([[1.0, 2.0], [], [3.0, 4.0, 5.0]])


@pytest.fixture(scope="module")
def server():
    yield from running_server(threads=1, lease_ttl=CALM_TTL)


@pytest.fixture(scope="module")
def client(server):
    with observer(server) as bridge:
        bridge.eval("""
            poke(x) = (x[1] = -1.0; x)
            poke_pointer(x) = (unsafe_store!(pointer(x), -1.0); x)
            poke_list(events) = (events[1][1] = -1.0; events)
            poke_field(events) = (events[1].Jet[1].pt = -1.0; events)
            push_onto(x) = push!(x, 1.0)
        """)
        bridge.call("length", ARRAY)  # creates the client's arena chunk, which outlives each test
        yield bridge


def mode(name: str) -> int:
    return stat.S_IMODE(os.stat(f"{SHM_DIR}/{name}").st_mode)


def test_every_segment_names_its_owner_is_random_and_private(client, monkeypatch, shm_clean):
    server_pid = client.server_info["server_pid"]
    placed: dict[str, int] = {}  # the client's argument segments, seen while they exist
    real_frame = bridge.client.transport.Connection._frame   # each request, just before it leaves

    def spy(self, request_id, op, fields):
        placed.update((name, mode(name)) for name in segments_of(os.getpid()))
        return real_frame(self, request_id, op, fields)

    monkeypatch.setattr(bridge.client.transport.Connection, "_frame", spy)
    results = [client.call("copy", ARRAY) for _ in range(3)]
    monkeypatch.undo()
    written = {name: mode(name) for name in segments_of(server_pid)}
    # the three calls' arguments share the client's one arena chunk, their results one chunk of
    # the client's result arena on the server
    assert len(placed) == 1 and len(written) == 1
    assert set(placed.values()) == set(written.values()) == {0o600}
    assert all(segment_pid(name) == os.getpid() for name in placed)
    assert all(segment_pid(name) == server_pid for name in written)
    suffixes = [name.rsplit("-", 1)[1] for name in [*placed, *written]]
    assert all(len(suffix) == 32 for suffix in suffixes) and len(set(suffixes)) == 2
    del results


def test_python_segments_are_0600_and_exclusive(monkeypatch, shm_clean):
    existing = Segment.create(64)
    try:
        existing.array()[:4] = [1, 2, 3, 4]
        assert mode(existing.name) == 0o600
        monkeypatch.setattr(bridge.shm.segment, "segment_name", lambda pid=None: existing.name)
        with pytest.raises(FileExistsError):
            Segment.create(64)
        # the failed create neither unlinked nor touched the existing segment
        reader = Segment.attach(existing.name)
        assert reader.array()[:4].tolist() == [1, 2, 3, 4]
        reader.close()
    finally:
        existing.unlink()
        existing.close()


def test_julia_opens_segments_exclusively(client, shm_clean):
    existing = Segment.create(64)
    try:
        # the flags create_segment uses, on a name that exists: refused, not reopened
        refused = client.eval(f"""
            flags = Base.Filesystem.JL_O_CREAT | Base.Filesystem.JL_O_EXCL | Base.Filesystem.JL_O_RDWR
            fd = AwkwardBridge.SharedMemory.shm_open("{existing.name}", flags, 0o600)
            (fd, Libc.errno() == AwkwardBridge.EEXIST)
        """)
        assert refused == (-1, True)
        assert mode(existing.name) == 0o600
    finally:
        existing.unlink()
        existing.close()


def test_private_server_socket_directory_is_0700(server):
    assert server.address.startswith("ipc://")
    directory = os.path.dirname(server.address[len("ipc://"):])
    info = os.stat(directory)
    assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()


@pytest.mark.parametrize("fn, value", [
    ("poke", np.arange(5.0)),
    ("poke_pointer", np.arange(5.0)),
    ("poke_list", ak.Array([[1.0, 2.0], [3.0]])),
    ("poke_field", ak.Array([{"Jet": [{"pt": 1.0}]}, {"Jet": []}])),
    ("push_onto", np.arange(5.0)),
])
def test_julia_cannot_write_into_arguments(client, fn, value, shm_clean):
    before = ak.to_list(value)
    with pytest.raises(JuliaError) as error:
        client.call(fn, value)
    # a Julia exception (not a crash): a write to a read-only mapping, no setindex! on a view, or
    # an argument that cannot grow
    assert error.value.julia_type in ("ReadOnlyMemoryError", "MethodError", "ErrorException"), error.value
    assert "read-only views of the client's shared memory" in error.value.message  # and what to do
    assert ak.to_list(value) == before
    handle = client.send(value)
    with pytest.raises(JuliaError):
        client.call(fn, handle)
    assert ak.to_list(client.call("identity", handle)) == before
    handle.drop()
    assert client.call("identity", 1) == 1  # the server lives on


def test_arguments_are_sealed_before_they_are_named(client, monkeypatch, shm_clean):
    """At the moment a request leaves, every segment it names already holds all its bytes."""
    array = ak.Array({"x": np.arange(1000.0), "y": [[i] * (i % 3) for i in range(1000)]})
    _, _, expected = ak.to_buffers(array)
    seen: list[bytes] = []
    real_frame = bridge.client.transport.Connection._frame   # each request, just before it leaves

    def spy(self, request_id, op, fields):
        for argument in fields.get("args", []):
            for segment_name, offset, nbytes in argument["buffers"].values():
                reader = Segment.attach(segment_name)
                seen.append(reader.array()[offset:offset + nbytes].tobytes())
                reader.close()
        return real_frame(self, request_id, op, fields)

    monkeypatch.setattr(bridge.client.transport.Connection, "_frame", spy)
    assert ak.array_equal(client.call("copy", array), array)
    monkeypatch.undo()
    assert sorted(seen) == sorted(np.asarray(buffer).tobytes() for buffer in expected.values())
