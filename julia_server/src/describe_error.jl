# Turning an exception into the `error` map of a reply: the Julia type name, the message as
# `showerror` prints it, and the backtrace of the user's code without the bridge's own frames.

const BridgeException = Union{ProtocolError,UnknownClient,InvalidArray,FunctionNotFound,
                              ResultTypeError,SharedMemoryFull,ShuttingDown,CallInterrupted,
                              CallTimedOut,ExecutorDied,AuthenticationFailed}

const BRIDGE_SRC = @__DIR__

"""
    describe(e, bt) -> (type, message, backtrace)

The reply's view of exception `e` thrown with backtrace `bt`. The bridge's own errors carry
their message alone (the type travels in `type`); an error inside `eval`'d code is reported as
itself, with where in the code it happened.
"""
function describe(e, bt)
    e isa BridgeException && return string(nameof(typeof(e))), e.msg, ""
    location = ""
    while e isa LoadError
        isempty(location) && (location = "\n(in expression starting at $(e.file):$(e.line))")
        e = e.error
    end
    type = string(nameof(typeof(e)))
    message = try
        sprint(showerror, e)
    catch
        "(showerror failed for a $(short_type_name(e)))"
    end
    # the type travels in its own field: `MethodError: no method …` would read twice in Python
    startswith(message, type * ": ") && (message = message[nextind(message, lastindex(type) + 1):end])
    return type, cut(lstrip(message) * location), cut(format_backtrace(bt))
end

"""
    short_type_name(x) -> String

The name of `x`'s type without its parameters, which for a view type run to thousands of
characters: `ListVector{…}`.
"""
short_type_name(x) = (T = typeof(x); isempty(T.parameters) ? string(T) : "$(nameof(T)){…}")

"""Longest error message or backtrace a reply carries, in characters; longer ones are cut."""
const ERROR_TEXT_MAX = 64 * 1024

cut(text::String) = length(text) <= ERROR_TEXT_MAX ? text :
    first(text, ERROR_TEXT_MAX) * "\n… ($(length(text) - ERROR_TEXT_MAX) more characters cut)"

function format_backtrace(bt)
    frames = Base.StackTraces.StackFrame[]
    for frame in stacktrace(bt)
        startswith(string(frame.file), BRIDGE_SRC) && break
        push!(frames, frame)
    end
    # Between the user's frames and the server's lies the machinery that entered the user's
    # code: invokelatest (call) or include_string (eval).
    while !isempty(frames) && is_entry_frame(frames[end])
        pop!(frames)
    end
    return join(("[$i] $frame" for (i, frame) in enumerate(frames)), "\n")
end

is_entry_frame(frame::Base.StackTraces.StackFrame) =
    frame.func === :include_string || occursin("invokelatest", string(frame.func))
