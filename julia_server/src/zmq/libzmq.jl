# The raw libzmq layer: the library is opened at run time (its path is a server option), so
# every entry point is a function pointer looked up with `dlsym`; Julia 1.5's `ccall` accepts a
# run-time pointer but not a run-time library name.

const ZMQ_REP = Cint(4)
const ZMQ_DEALER = Cint(5)
const ZMQ_ROUTER = Cint(6)

const ZMQ_DONTWAIT = Cint(1)
const ZMQ_SNDMORE = Cint(2)

const ZMQ_FD = Cint(14)
const ZMQ_EVENTS = Cint(15)
const ZMQ_LINGER = Cint(17)
const ZMQ_MAXMSGSIZE = Cint(22)
const ZMQ_RCVTIMEO = Cint(27)
const ZMQ_LAST_ENDPOINT = Cint(32)
const ZMQ_ROUTER_MANDATORY = Cint(33)
const ZMQ_CURVE_SERVER = Cint(47)
const ZMQ_CURVE_SECRETKEY = Cint(49)
const ZMQ_ZAP_DOMAIN = Cint(55)

const ZMQ_POLLIN = Cint(1)

const ZMQ_EAGAIN = Cint(11)
const ZMQ_EINTR = Cint(4)

# sizeof(zmq_msg_t): 64 bytes, pointer-aligned.
const ZMQ_MSG_WORDS = 8

"""
    ZMQError(errno, message)

A libzmq call failed; `errno` is libzmq's error number and `message` says which call and why.
"""
struct ZMQError <: Exception
    errno::Cint
    msg::String
end

Base.showerror(io::IO, e::ZMQError) = print(io, "ZMQError: ", e.msg)

"""
    LibZMQ

The entry points of one loaded libzmq, as function pointers. Field names are the C names.
"""
struct LibZMQ
    handle::Ptr{Cvoid}
    zmq_ctx_new::Ptr{Cvoid}
    zmq_ctx_term::Ptr{Cvoid}
    zmq_socket::Ptr{Cvoid}
    zmq_close::Ptr{Cvoid}
    zmq_bind::Ptr{Cvoid}
    zmq_connect::Ptr{Cvoid}
    zmq_setsockopt::Ptr{Cvoid}
    zmq_getsockopt::Ptr{Cvoid}
    zmq_send::Ptr{Cvoid}
    zmq_msg_init::Ptr{Cvoid}
    zmq_msg_recv::Ptr{Cvoid}
    zmq_msg_data::Ptr{Cvoid}
    zmq_msg_size::Ptr{Cvoid}
    zmq_msg_more::Ptr{Cvoid}
    zmq_msg_close::Ptr{Cvoid}
    zmq_errno::Ptr{Cvoid}
    zmq_strerror::Ptr{Cvoid}
    zmq_curve_keypair::Ptr{Cvoid}
    zmq_z85_encode::Ptr{Cvoid}
end

const LIBZMQ = Ref(LibZMQ(ntuple(_ -> C_NULL, fieldcount(LibZMQ))...))
const LIBZMQ_PATH = Ref("")

"""
    load_libzmq(path=nothing) -> String

Open libzmq once per process and return the path it was loaded from. `path` wins, then the
environment variable `AWKWARD_BRIDGE_LIBZMQ`, then the system's `libzmq.so.5`. Asking for a
different library after one is loaded is an error (sockets from both could not be mixed).
"""
function load_libzmq(path::Union{Nothing,AbstractString} = nothing)
    wanted = path !== nothing ? String(path) :
             !isempty(get(ENV, "AWKWARD_BRIDGE_LIBZMQ", "")) ? ENV["AWKWARD_BRIDGE_LIBZMQ"] :
             "libzmq.so.5"
    if LIBZMQ[].handle != C_NULL
        wanted == LIBZMQ_PATH[] && return wanted
        throw(ArgumentError("libzmq is already loaded from $(LIBZMQ_PATH[]); cannot switch to $wanted"))
    end
    handle = Libdl.dlopen(wanted)
    pointers = (Libdl.dlsym(handle, name) for name in fieldnames(LibZMQ)[2:end])
    LIBZMQ[] = LibZMQ(handle, pointers...)
    LIBZMQ_PATH[] = wanted
    return wanted
end

function libzmq()
    lib = LIBZMQ[]
    lib.handle == C_NULL && throw(ArgumentError("libzmq is not loaded; call load_libzmq first"))
    return lib
end

"""
    zmq_errno() -> Cint

The calling thread's last libzmq error number.
"""
zmq_errno() = ccall(libzmq().zmq_errno, Cint, ())

"""
    zmq_error(what) -> ZMQError

The exception for a failed libzmq call `what`, carrying the current error number and text.
"""
function zmq_error(what::AbstractString)
    errno = zmq_errno()
    text = unsafe_string(ccall(libzmq().zmq_strerror, Cstring, (Cint,), errno))
    return ZMQError(errno, "$what: $text")
end

# `ZMQ_EVENTS` and `zmq_ctx_term` process the socket's pending commands, and a signal (SIGCHLD
# when an executor exits) can interrupt that: the call is simply made again.
function retrying_eintr(call)
    while true
        rc = call()
        (rc == 0 || zmq_errno() != ZMQ_EINTR) && return rc
    end
end

"""
    zmq_ctx_new() -> Ptr{Cvoid}

A new libzmq context.
"""
function zmq_ctx_new()
    ctx = ccall(libzmq().zmq_ctx_new, Ptr{Cvoid}, ())
    ctx == C_NULL && throw(zmq_error("zmq_ctx_new"))
    return ctx
end

"""
    zmq_ctx_term(ctx)

Destroy a context. Only call it once every socket is closed with linger 0, so it cannot block.
"""
function zmq_ctx_term(ctx::Ptr{Cvoid})
    retrying_eintr(() -> ccall(libzmq().zmq_ctx_term, Cint, (Ptr{Cvoid},), ctx)) == 0 ||
        throw(zmq_error("zmq_ctx_term"))
    return nothing
end

"""
    zmq_socket(ctx, type) -> Ptr{Cvoid}

A new socket of `type` (`ZMQ_ROUTER`, `ZMQ_DEALER`) in context `ctx`.
"""
function zmq_socket(ctx::Ptr{Cvoid}, type::Cint)
    s = ccall(libzmq().zmq_socket, Ptr{Cvoid}, (Ptr{Cvoid}, Cint), ctx, type)
    s == C_NULL && throw(zmq_error("zmq_socket"))
    return s
end

"""
    zmq_close(s)

Close a socket.
"""
function zmq_close(s::Ptr{Cvoid})
    ccall(libzmq().zmq_close, Cint, (Ptr{Cvoid},), s) == 0 || throw(zmq_error("zmq_close"))
    return nothing
end

"""
    zmq_bind(s, address)

Bind a socket to a ZeroMQ endpoint.
"""
function zmq_bind(s::Ptr{Cvoid}, address::AbstractString)
    rc = ccall(libzmq().zmq_bind, Cint, (Ptr{Cvoid}, Cstring), s, address)
    rc == 0 || throw(zmq_error("zmq_bind($address)"))
    return nothing
end

"""
    zmq_connect(s, address)

Connect a socket to a ZeroMQ endpoint.
"""
function zmq_connect(s::Ptr{Cvoid}, address::AbstractString)
    rc = ccall(libzmq().zmq_connect, Cint, (Ptr{Cvoid}, Cstring), s, address)
    rc == 0 || throw(zmq_error("zmq_connect($address)"))
    return nothing
end

"""
    zmq_setsockopt(s, option, value::Union{Cint,Int64})

Set a socket option whose C type is `int` (pass a `Cint`) or `int64_t` (pass an `Int64`).
"""
function zmq_setsockopt(s::Ptr{Cvoid}, option::Cint, value::Union{Cint,Int64})
    ref = Ref(value)
    rc = ccall(libzmq().zmq_setsockopt, Cint, (Ptr{Cvoid}, Cint, Ptr{Cvoid}, Csize_t),
               s, option, ref, sizeof(value))
    rc == 0 || throw(zmq_error("zmq_setsockopt($option)"))
    return nothing
end

"""
    zmq_setsockopt(s, option, value::AbstractString)

Set a socket option whose C type is a string or a byte array (`ZMQ_CURVE_SECRETKEY` as 40
characters of Z85, `ZMQ_ZAP_DOMAIN`).
"""
function zmq_setsockopt(s::Ptr{Cvoid}, option::Cint, value::AbstractString)
    bytes = codeunits(String(value))
    rc = GC.@preserve bytes ccall(libzmq().zmq_setsockopt, Cint, (Ptr{Cvoid}, Cint, Ptr{UInt8}, Csize_t),
                                  s, option, bytes, length(bytes))
    rc == 0 || throw(zmq_error("zmq_setsockopt($option)"))
    return nothing
end

"""
    zmq_curve_keypair() -> (public, secret)

A new CURVE key pair, each key 40 characters of Z85; `ZMQError` when this libzmq was built
without CURVE.
"""
function zmq_curve_keypair()
    public, secret = zeros(UInt8, 41), zeros(UInt8, 41)
    rc = ccall(libzmq().zmq_curve_keypair, Cint, (Ptr{UInt8}, Ptr{UInt8}), public, secret)
    rc == 0 || throw(zmq_error("zmq_curve_keypair (is this libzmq built with CURVE?)"))
    return String(public[1:40]), String(secret[1:40])
end

"""
    zmq_z85_encode(key::Vector{UInt8}) -> String

A 32-byte binary key in Z85, as CURVE key files and ZAP credentials are compared.
"""
function zmq_z85_encode(key::Vector{UInt8})
    length(key) == 32 || throw(ArgumentError("a CURVE key has 32 bytes, not $(length(key))"))
    text = zeros(UInt8, 41)
    ccall(libzmq().zmq_z85_encode, Ptr{UInt8}, (Ptr{UInt8}, Ptr{UInt8}, Csize_t), text, key, 32) == C_NULL &&
        throw(zmq_error("zmq_z85_encode"))
    return String(text[1:40])
end

"""
    zmq_getsockopt_int(s, option) -> Cint

Read a socket option whose C type is `int` (`ZMQ_FD` on POSIX, `ZMQ_EVENTS`).
"""
function zmq_getsockopt_int(s::Ptr{Cvoid}, option::Cint)
    value = Ref{Cint}(0)
    len = Ref{Csize_t}(sizeof(Cint))
    rc = retrying_eintr(() -> ccall(libzmq().zmq_getsockopt, Cint,
                                    (Ptr{Cvoid}, Cint, Ptr{Cint}, Ptr{Csize_t}), s, option, value, len))
    rc == 0 || throw(zmq_error("zmq_getsockopt($option)"))
    return value[]
end

"""
    zmq_getsockopt_string(s, option) -> String

Read a socket option whose C type is a NUL-terminated string (`ZMQ_LAST_ENDPOINT`).
"""
function zmq_getsockopt_string(s::Ptr{Cvoid}, option::Cint)
    buf = zeros(UInt8, 1024)
    len = Ref{Csize_t}(length(buf))
    rc = ccall(libzmq().zmq_getsockopt, Cint, (Ptr{Cvoid}, Cint, Ptr{UInt8}, Ptr{Csize_t}),
               s, option, buf, len)
    rc == 0 || throw(zmq_error("zmq_getsockopt($option)"))
    return String(buf[1:findfirst(iszero, buf)-1])
end

"""
    zmq_send(s, data::Vector{UInt8}, flags) -> Bool

Queue one frame (libzmq copies it). `false` when the socket would block (`EAGAIN` under
`ZMQ_DONTWAIT`) or a signal interrupted a waiting send (`EINTR`); any other failure throws.
"""
function zmq_send(s::Ptr{Cvoid}, data::Vector{UInt8}, flags::Cint)
    rc = GC.@preserve data ccall(libzmq().zmq_send, Cint, (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Cint),
                                 s, data, length(data), flags)
    rc >= 0 && return true
    zmq_errno() in (ZMQ_EAGAIN, ZMQ_EINTR) && return false
    throw(zmq_error("zmq_send"))
end

"""
    zmq_msg_recv(s, msg::Vector{UInt64}, flags) -> Union{Nothing,Tuple{Vector{UInt8},Bool}}

Receive one frame into the scratch `zmq_msg_t` `msg` and return a copy of its bytes and whether
more frames of the same message follow; `nothing` when none is waiting (`EAGAIN`: at once under
`ZMQ_DONTWAIT`, else after the socket's `ZMQ_RCVTIMEO`) or a signal interrupted the wait (`EINTR`).
"""
function zmq_msg_recv(s::Ptr{Cvoid}, msg::Vector{UInt64}, flags::Cint)
    lib = libzmq()
    GC.@preserve msg begin
        m = pointer(msg)
        ccall(lib.zmq_msg_init, Cint, (Ptr{UInt64},), m)
        if ccall(lib.zmq_msg_recv, Cint, (Ptr{UInt64}, Ptr{Cvoid}, Cint), m, s, flags) < 0
            ccall(lib.zmq_msg_close, Cint, (Ptr{UInt64},), m)
            zmq_errno() in (ZMQ_EAGAIN, ZMQ_EINTR) && return nothing
            throw(zmq_error("zmq_msg_recv"))
        end
        n = ccall(lib.zmq_msg_size, Csize_t, (Ptr{UInt64},), m)
        bytes = Vector{UInt8}(undef, n)
        src = ccall(lib.zmq_msg_data, Ptr{UInt8}, (Ptr{UInt64},), m)
        GC.@preserve bytes unsafe_copyto!(pointer(bytes), src, n)
        more = ccall(lib.zmq_msg_more, Cint, (Ptr{UInt64},), m) != 0
        ccall(lib.zmq_msg_close, Cint, (Ptr{UInt64},), m)
        return bytes, more
    end
end
