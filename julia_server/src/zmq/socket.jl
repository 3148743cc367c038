# The Julian socket: multipart send and receive. The server's threads never block inside
# libzmq (a thread stuck in a ccall stops garbage collection on every thread): they send and
# receive without waiting and wait for readiness on `ZMQ_FD` through libuv (FileWatching). An
# executor, whose main task must not wait in Julia's scheduler (executor/link.jl), waits inside
# libzmq instead (`wait = true`). `ZMQ_FD` is edge-triggered: it signals that `ZMQ_EVENTS` may
# have changed, and any send or receive may consume that signal, so callers re-check `events`
# after each one. A socket is not thread-safe: threads that share one must take turns under a
# lock.

"""
    Context()

A libzmq context (libzmq must be loaded, see `load_libzmq`). `close` it after its sockets.
"""
mutable struct Context
    ptr::Ptr{Cvoid}
    Context() = new(zmq_ctx_new())
end

function Base.close(ctx::Context)
    ctx.ptr == C_NULL && return nothing
    zmq_ctx_term(ctx.ptr)
    ctx.ptr = C_NULL
    return nothing
end

"""
    Socket(ctx, type)

A socket of `type` (`ZMQ_ROUTER`, `ZMQ_DEALER`) with linger 0, so closing it never waits.
"""
mutable struct Socket
    ptr::Ptr{Cvoid}
    msg::Vector{UInt64}                 # scratch zmq_msg_t, reused by every receive
    watcher::Union{Nothing,FDWatcher}   # on ZMQ_FD, made on first wait
    function Socket(ctx::Context, type::Cint)
        s = new(zmq_socket(ctx.ptr, type), zeros(UInt64, ZMQ_MSG_WORDS), nothing)
        zmq_setsockopt(s.ptr, ZMQ_LINGER, Cint(0))
        return s
    end
end

"""
    close(s::Socket)

Stop watching the socket's descriptor, then close the socket.
"""
function Base.close(s::Socket)
    s.ptr == C_NULL && return nothing
    if s.watcher !== nothing
        close(s.watcher)
        s.watcher = nothing
    end
    zmq_close(s.ptr)
    s.ptr = C_NULL
    return nothing
end

"""
    isopen(s::Socket) -> Bool

Whether the socket has not been closed.
"""
Base.isopen(s::Socket) = s.ptr != C_NULL

"""
    setsockopt(s, option, value::Union{Cint,Int64,AbstractString})

Set a socket option (`Cint` for C `int` options, `Int64` for `int64_t` ones, a string for
string and key options).
"""
setsockopt(s::Socket, option::Cint, value::Union{Cint,Int64,AbstractString}) = zmq_setsockopt(s.ptr, option, value)

"""
    bind(s, address)

Bind to a ZeroMQ endpoint (`ipc://…`, `tcp://…`).
"""
Base.bind(s::Socket, address::AbstractString) = zmq_bind(s.ptr, address)

"""
    connect(s, address)

Connect to a ZeroMQ endpoint.
"""
connect(s::Socket, address::AbstractString) = zmq_connect(s.ptr, address)

"""
    last_endpoint(s) -> String

The endpoint the socket last bound, with a `tcp://…:0` port resolved to the real one.
"""
last_endpoint(s::Socket) = zmq_getsockopt_string(s.ptr, ZMQ_LAST_ENDPOINT)

"""
    events(s) -> Cint

The socket's `ZMQ_EVENTS` bits (`ZMQ_POLLIN`: a message is waiting). Reading them re-arms `ZMQ_FD`.
"""
events(s::Socket) = zmq_getsockopt_int(s.ptr, ZMQ_EVENTS)

"""
    readable(s) -> Bool

Whether a message is waiting.
"""
readable(s::Socket) = events(s) & ZMQ_POLLIN != 0

"""
    try_recv(s; wait=false) -> Union{Nothing,Vector{Vector{UInt8}}}

All frames of the next message, or `nothing` when none is waiting. With `wait`, the calling
thread waits inside libzmq for up to the socket's `ZMQ_RCVTIMEO`, or until a signal arrives.
"""
function try_recv(s::Socket; wait::Bool = false)
    first = zmq_msg_recv(s.ptr, s.msg, wait ? Cint(0) : ZMQ_DONTWAIT)
    first === nothing && return nothing
    bytes, more = first
    frames = [bytes]
    while more
        # The rest of a multipart message arrives with its first frame.
        next = zmq_msg_recv(s.ptr, s.msg, ZMQ_DONTWAIT)
        next === nothing && throw(ZMQError(ZMQ_EAGAIN, "multipart message ended early"))
        bytes, more = next
        push!(frames, bytes)
    end
    return frames
end

"""
    try_send(s, frames...; wait=false) -> Bool

Queue one message made of `frames`; `false` when the socket would block (or, with `wait`, when
a signal interrupted the wait for room). A ROUTER without `ZMQ_ROUTER_MANDATORY` never blocks:
it drops messages to unknown or full peers.
"""
function try_send(s::Socket, frames::Vector{UInt8}...; wait::Bool = false)
    last = length(frames)
    nowait = wait ? Cint(0) : ZMQ_DONTWAIT
    for (i, frame) in enumerate(frames)
        flags = i == last ? nowait : nowait | ZMQ_SNDMORE
        # libzmq queues a multipart message atomically, so only its first frame can block.
        zmq_send(s.ptr, frame, flags) || return false
    end
    return true
end

"""
    wait_fd(s)

Suspend the calling task until `ZMQ_FD` signals; then `events(s)` may have changed. Throws
`EOFError` when the socket is closed meanwhile.
"""
function wait_fd(s::Socket)
    if s.watcher === nothing
        s.watcher = FDWatcher(RawFD(zmq_getsockopt_int(s.ptr, ZMQ_FD)), true, false)
    end
    wait(s.watcher)
    return nothing
end
