# Exceptions the bridge itself raises. Their type names travel to the client as `error.type`
# (docs/protocol.md, section 2), so renaming one changes the protocol.

"""A request that does not follow docs/protocol.md."""
struct ProtocolError <: Exception
    msg::String
end

"""A request from a client id that never said `hello`, or whose leases expired."""
struct UnknownClient <: Exception
    msg::String
end

"""An array that failed validation; the message names the form node and buffer key."""
struct InvalidArray <: Exception
    msg::String
end

"""A `call` to a name that resolves to nothing in the client's or the shared module."""
struct FunctionNotFound <: Exception
    msg::String
end

"""A Julia result that has no Python equivalent."""
struct ResultTypeError <: Exception
    msg::String
end

"""Shared memory could not be reserved; the message names the size needed and the limit."""
struct SharedMemoryFull <: Exception
    msg::String
end

"""The server is stopping and takes no new work."""
struct ShuttingDown <: Exception
    msg::String
end

"""A call stopped on request: the client's Ctrl-C, or an operator's `cancel`."""
struct CallInterrupted <: Exception
    msg::String
end

"""A call stopped because it ran past the `timeout` its request gave."""
struct CallTimedOut <: Exception
    msg::String
end

"""The executor running the client's code ended (a crash, `exit()`, its memory limit)."""
struct ExecutorDied <: Exception
    msg::String
end

"""A request that does not show its client's token (docs/security.md)."""
struct AuthenticationFailed <: Exception
    msg::String
end

for E in (:ProtocolError, :UnknownClient, :InvalidArray, :FunctionNotFound,
          :ResultTypeError, :SharedMemoryFull, :ShuttingDown, :CallInterrupted, :CallTimedOut,
          :ExecutorDied, :AuthenticationFailed)
    @eval Base.showerror(io::IO, e::$E) = print(io, $(string(E)), ": ", e.msg)
end
