# Turning an exception into the `error` map of a reply: the Julia type name, the message as
# `showerror` prints it, and the backtrace of the user's code without the bridge's own frames.

const BridgeException = Union{ProtocolError,UnknownClient,InvalidArray,FunctionNotFound,
                              ResultTypeError,SharedMemoryFull,ShuttingDown,CallInterrupted,
                              CallTimedOut,ExecutorDied,AuthenticationFailed}

# Frames in these directories are the machinery that ran the user's code, not part of its
# story; the views' own frames (a field that does not exist) are.
const MACHINERY_DIRS = (@__DIR__, normpath(joinpath(@__DIR__, "..", "server")))

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
    # (`TaskFailedException:` ends its line)
    startswith(message, type * ":") && (message = message[nextind(message, lastindex(type) + 1):end])
    message == type * "()" && (message = "")   # `ReadOnlyMemoryError()` says only its type
    return type, cut(shorten_types(lstrip(message)) * hint(e) * location), cut(format_backtrace(bt))
end

"""
    hint(e) -> String

What to do about an error that code written for plain Julia values meets on the bridge (its
views, Python's numbers), to append to its message; "" for any other error.
"""
function hint(e)
    # Julia reports any fault on a mapping it did not write as this, a read outside it included
    e isa ReadOnlyMemoryError &&
        return "code wrote into read-only memory (or read outside the memory it was given, " *
               "where an argument's buffers changed after they were validated). " * WRITE_ELSEWHERE
    # AbstractArray's fallback for a view without setindex!
    e isa ErrorException && startswith(e.msg, "setindex! not defined") &&
        return "\nHint: views cannot be written. " * WRITE_ELSEWHERE
    # `push!` on a numpy argument, a Vector over memory Julia does not own
    e isa ErrorException && e.msg == "cannot resize array with shared data" &&
        return "\nHint: arguments cannot grow. " * WRITE_ELSEWHERE
    # `maximum(ev.Jet.pt)` on an event without jets
    e isa ArgumentError && (occursin("empty collection", e.msg) || occursin("must be non-empty", e.msg)) &&
        return "\nHint: an event can have no particles: check isempty(x) first, or give the reduction a " *
               "start value, reduce(max, x; init = -Inf32)"
    e isa MethodError || return ""
    f, args, keywords = called(e)
    # `sort(ev.Jet)`, `maximum(ev.Jet)`: NamedTuples compare, so the annotation hint would mislead
    f in COMPARISONS && any(x -> x isa Record, args) &&
        return "\nHint: records do not compare: sort or pick them by a field, " *
               "sort(x, by = r -> r.pt, rev = true), x[argmax(x.pt)]"
    isempty(keywords) && misses_python_number(f, args) &&
        return "\nHint: a number from Python arrives as an Int64 or a Float64 (a numpy float32 too): " *
               "annotate it ::Real, or leave it untyped, and convert it inside under a new name, c = Float32(cut)"
    any(is_view, args) || return ""
    f in GROWING_FUNCTIONS && return "\nHint: views cannot be written. " * WRITE_ELSEWHERE
    hasmethod(f, Tuple{map(plain_type_of, args)...}, keywords) || return ""
    return "\nHint: views (ListVector, RecordVector, SubArray, …) are AbstractVectors but not Vectors, and a " *
           "Record is not a NamedTuple: annotate them ::AbstractVector, or leave them untyped"
end

is_view(x) = x isa Record || x isa AbstractArray && !(x isa Array)

# What `sort`, `maximum` and `max` call on two elements.
const COMPARISONS = (isless, <, <=, >, >=, max, min)

# Whether a method of `f` that user code defined would take `args` but for a number annotation
# (`cut::Float32`) that an Int64 or a Float64 among them, the only numbers Python's arrive as,
# does not meet. Base's and packages' methods are left out: the number there came from Julia.
function misses_python_number(f, args)
    any(x -> x isa Union{Int64,Float64}, args) || return false
    return any(m -> is_user_code(m.module) && refuses_only_numbers(m.sig, args), methods(f))
end

# User code is eval'd into modules of its own (`user_module`, under `Main`), which neither Julia
# nor a package file defines.
function is_user_code(mod::Module)
    while true
        (mod === Base || mod === Core || pathof(mod) !== nothing) && return false
        parent = parentmodule(mod)
        parent === mod && return true
        mod = parent
    end
end

function refuses_only_numbers(sig, args)
    try
        params = Base.unwrap_unionall(sig).parameters
        length(params) == length(args) + 1 || return false
        refused = false
        for (x, P) in zip(args, params[2:end])
            Base.isvarargtype(P) && return false
            T = Base.rewrap_unionall(P, sig)
            # a view stands for the plain value it would have been (the views' hint comes next)
            (x isa T || is_view(x) && plain_type_of(x) <: T) && continue
            x isa Union{Int64,Float64} && T <: Number || return false
            refused = true
        end
        return refused
    catch
        return false   # a signature this cannot read: no hint rather than no message
    end
end

# The function, positional arguments and keyword names of the call a MethodError is about. A
# call with keywords fails in Julia's keyword sorter, called with (keywords, f, positional…):
# `Core.kwfunc(f)` up to Julia 1.8, `Core.kwcall` from 1.9.
function called(e::MethodError)
    args = e.args
    is_keyword_call = length(args) >= 2 && args[1] isa NamedTuple && is_keyword_sorter(e.f, args[2])
    return is_keyword_call ? (args[2], args[3:end], keys(args[1])) : (e.f, args, ())
end

# Looked up, not made: before 1.9, `Core.kwfunc(f)` creates a keyword sorter for `f` if it has none.
function is_keyword_sorter(g, f)
    @static if isdefined(Core, :kwcall)
        return g === Core.kwcall
    else
        name = typeof(f).name
        return isdefined(name, :mt) && isdefined(name.mt, :kwsorter) && name.mt.kwsorter === g
    end
end

# The plain Julia type a value of type `T` stands for when it is a view: an `Array` (of plain
# elements, so a jagged view is a `Vector{Vector{T}}`) for an array view, a `NamedTuple` for a
# record. A method that takes the plain types has an annotation to widen, not a call to change.
plain_type_of(x) = plain_type(Core.Typeof(x))
function plain_type(T::Type)
    T <: Record && return record_type(T)
    T <: AbstractArray && T isa DataType || return T
    E = plain_type(eltype(T))
    return T <: Array && E === eltype(T) ? T : Array{E,ndims(T)}
end
record_type(::Type{Record{C}}) where {names,C<:NamedTuple{names}} =
    NamedTuple{names,Tuple{(plain_type(row_type_of(c)) for c in fieldtypes(C))...}}
record_type(::Type) = NamedTuple
row_type_of(column::Type{<:AbstractArray}) = ndims(column) == 1 ? eltype(column) : Array{eltype(column),ndims(column)-1}

# What `push!` and its kind end in on a view that cannot grow.
const GROWING_FUNCTIONS = (resize!, push!, append!, pushfirst!, prepend!, insert!, deleteat!, empty!, splice!)

const WRITE_ELSEWHERE = "The arguments are read-only views of the client's shared memory: write into " *
                        "copy(x), or into a new vector (similar(x), zeros(Float32, n)), and return that"

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
        file = string(frame.file)
        any(dir -> startswith(file, dir), MACHINERY_DIRS) && break
        push!(frames, frame)
    end
    # Between the user's frames and the server's lies the machinery that entered the user's
    # code: invokelatest (call) or include_string (eval).
    while !isempty(frames) && is_entry_frame(frames[end])
        pop!(frames)
    end
    # a recursion that overflowed the stack is thousands of the same frame: one line says so
    runs = Tuple{Base.StackTraces.StackFrame,Int,Int}[]   # a frame, its number, its repeats
    for (i, frame) in enumerate(frames)
        isempty(runs) || runs[end][1] != frame ? push!(runs, (frame, i, 0)) :
                                                 (runs[end] = (frame, runs[end][2], runs[end][3] + 1))
    end
    return join(("[$i] $(shorten_types(string(frame)))" *
                 (repeats > 0 ? "\n    … the frame above, $repeats more times" : "")
                 for (frame, i, repeats) in runs), "\n")
end

"""Longest type parameter list an error text keeps, in characters."""
const TYPE_PARAMETERS_MAX = 60

"""
    shorten_types(text) -> String

`text` with every type parameter list longer than `TYPE_PARAMETERS_MAX` characters written
`{…}`: a view's full type runs to thousands of characters per frame, and says less than its
name (`::ListVector{…}`). Shorter lists (`Array{Float64,1}`) stay as they are.
"""
function shorten_types(text::AbstractString)
    out = IOBuffer()
    depth, start = 0, 0
    for (i, c) in pairs(text)
        if c == '{'
            depth == 0 && (start = i)
            depth += 1
        elseif c == '}' && depth > 0
            depth -= 1
            if depth == 0
                group = SubString(text, start, i)
                print(out, length(group) > TYPE_PARAMETERS_MAX ? "{…}" : group)
            end
        elseif depth == 0
            print(out, c)
        end
    end
    depth > 0 && print(out, SubString(text, start))   # an unclosed brace: the rest as it was
    return String(take!(out))
end

# `invokelatest` with keywords (up to Julia 1.8) calls through a closure of its own, in essentials.jl
is_entry_frame(frame::Base.StackTraces.StackFrame) =
    frame.func === :include_string || occursin("invokelatest", string(frame.func)) ||
    basename(string(frame.file)) == "essentials.jl"
