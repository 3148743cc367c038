# A minimal DEALER client over the server's own ZeroMQ layer, for the in-process server tests.

using AwkwardBridge: Context, Socket, ZMQ_DEALER, connect, try_send, try_recv, readable, pack, unpack,
                     load_libzmq, setsockopt

"""
    find_test_libzmq() -> String

libzmq for the tests: `AWKWARD_BRIDGE_LIBZMQ` (scripts/test.sh sets it), the system's
`libzmq.so.5`, or the copy bundled with pyzmq.
"""
function find_test_libzmq()
    configured = get(ENV, "AWKWARD_BRIDGE_LIBZMQ", "")
    isempty(configured) || return configured
    Libdl.dlopen_e("libzmq.so.5") == C_NULL || return "libzmq.so.5"
    python = Sys.which("python3")
    if python !== nothing
        script = "import glob, os, zmq; print((sorted(glob.glob(os.path.join(os.path.dirname(zmq.__file__), " *
                 "os.pardir, 'pyzmq.libs', 'libzmq*.so*'))) or [''])[0])"
        found = try
            strip(read(pipeline(`$python -c $script`; stderr = devnull), String))
        catch
            ""
        end
        isempty(found) || return found
    end
    error("no libzmq found: set AWKWARD_BRIDGE_LIBZMQ to the path of libzmq.so.5")
end

"""The libzmq every test (and every server a test starts) uses, loaded in this process."""
const TEST_LIBZMQ = load_libzmq(find_test_libzmq())

"""
    TestClient(context, address; id)

A DEALER connected to `address` that sends requests as client `id`.
"""
mutable struct TestClient
    socket::Socket
    id::String
    next_id::Int
    token::String    # from its hello; every later request shows it
end

# CURVE client options, which only the tests set (the Python client is the bridge's client)
const ZMQ_CURVE_PUBLICKEY = Cint(48)
const ZMQ_CURVE_SECRETKEY = Cint(49)
const ZMQ_CURVE_SERVERKEY = Cint(50)

"""
    TestClient(context, address; id, keys=nothing)

A DEALER connected to `address` that sends requests as client `id`; with `keys`, the parsed key
file of a tcp server, over CURVE.
"""
function TestClient(ctx::Context, address::AbstractString; id::AbstractString, keys = nothing)
    s = Socket(ctx, ZMQ_DEALER)
    if keys !== nothing
        setsockopt(s, ZMQ_CURVE_SERVERKEY, keys["server_public"])
        setsockopt(s, ZMQ_CURVE_PUBLICKEY, keys["client_public"])
        setsockopt(s, ZMQ_CURVE_SECRETKEY, keys["client_secret"])
    end
    connect(s, address)
    return TestClient(s, String(id), 0, "")
end

Base.close(c::TestClient) = close(c.socket)

"""
    send_frames(c, frames...)

Send raw frames (for malformed-input tests).
"""
function send_frames(c::TestClient, frames::Vector{UInt8}...)
    try_send(c.socket, frames...) || error("test client: socket would block")
    return nothing
end

"""
    post(c, op; fields...) -> Int

Send request `op` with `fields` and return its id, without waiting for the reply.
"""
function post(c::TestClient, op::AbstractString; fields...)
    c.next_id += 1
    message = Dict{String,Any}("v" => 1, "id" => c.next_id, "client" => c.id, "op" => op)
    isempty(c.token) || (message["token"] = c.token)
    for (k, v) in fields
        message[string(k)] = v
    end
    send_frames(c, pack(message))
    return c.next_id
end

"""
    receive(c; timeout=30) -> Dict{String,Any}

The next reply on the socket; an error if none comes within `timeout` seconds.
"""
function receive(c::TestClient; timeout::Real = 30)
    timedwait(() -> readable(c.socket), float(timeout); pollint = 0.001) === :ok ||
        error("test client: no reply within $timeout s")
    frames = try_recv(c.socket)
    length(frames) == 1 || error("test client: reply of $(length(frames)) frames")
    return unpack(frames[1])
end

"""
    nothing_waiting(c; wait=0.3) -> Bool

Whether no reply arrives within `wait` seconds (for frames the server must drop).
"""
nothing_waiting(c::TestClient; wait::Real = 0.3) =
    timedwait(() -> readable(c.socket), float(wait); pollint = 0.001) !== :ok

"""
    request(c, op; fields...) -> Dict{String,Any}

Send `op` and return its reply, checking the reply answers it.
"""
function request(c::TestClient, op::AbstractString; fields...)
    id = post(c, op; fields...)
    reply = receive(c)
    reply["id"] == id || error("test client: reply to $(reply["id"]) while waiting for $id")
    op == "hello" && reply["ok"] === true && (c.token = reply["result"]["token"])
    return reply
end

"""
    result(c, op; fields...) -> Any

The result of a request that must succeed.
"""
function result(c::TestClient, op::AbstractString; fields...)
    reply = request(c, op; fields...)
    reply["ok"] === true || error("test client: $op failed: $(reply["error"])")
    return reply["result"]
end
