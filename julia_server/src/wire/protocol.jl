# docs/protocol.md on the Julia side: checking request envelopes and their fields (every type,
# with a precise `ProtocolError`), encoding replies, and array values on the wire. The server
# checks clients' requests with it, and executors the server's messages.

const PROTOCOL_VERSION = 1

"""
Largest message an executor may send the server (the executor socket's `ZMQ_MAXMSGSIZE`): a
result that is a value rather than an array passes through the server's one loop, so a larger
one would stall every client. An executor answers a job whose `done` is larger with an error.
"""
const MAX_EXECUTOR_MESSAGE_BYTES = 64 * 1024 * 1024

const OPS = Dict("hello" => :hello, "ping" => :ping, "eval" => :eval, "call" => :call,
                 "send" => :send, "drop" => :drop, "release" => :release, "stats" => :stats,
                 "cancel" => :cancel, "bye" => :bye)

const CLIENT_ID = r"^[A-Za-z0-9_-]{8,64}$"

"""
    Request(id, client, op, fields)

A checked request envelope: its id, client id, operation (a `Symbol` from `OPS`) and the whole
decoded map, from which the operation reads its own fields.
"""
struct Request
    id::UInt64
    client::String
    op::Symbol
    fields::Dict{String,Any}
end

# The msgpack name of a decoded value's type, for error messages.
function wire_type(x)
    x === nothing && return "nil"
    x isa Bool && return "bool"
    x isa Union{Int64,UInt64} && return "int"
    x isa AbstractFloat && return "float"
    x isa String && return "str"
    x isa Vector{UInt8} && return "bin"
    x isa Vector{Any} && return "list"
    x isa Dict{String,Any} && return "map"
    return string(typeof(x))
end

is_wire_int(x) = x isa Int64 || x isa UInt64

function field(m::Dict{String,Any}, key::String, what::String)
    haskey(m, key) || throw(ProtocolError("$what: field \"$key\" is missing"))
    return m[key]
end

mistyped(what, key, expected, x) =
    ProtocolError("$what: field \"$key\" must be $expected, not $(describe_value(x))")

# A decoded value for an error message: its wire type, and its value when that is short.
function describe_value(x)
    x isa Union{Bool,Int64,UInt64,AbstractFloat} && return "$(wire_type(x)) $x"
    x isa String && length(x) <= 40 && return "str $(repr(x))"
    return wire_type(x)
end

"""
    str_field(m, key, what; default) -> String

Field `key` of map `m` as a str; `what` names the map in errors. Without `default` the field is
required.
"""
function str_field(m::Dict{String,Any}, key::String, what::String; default = nothing)
    default !== nothing && !haskey(m, key) && return default
    x = field(m, key, what)
    x isa String || throw(mistyped(what, key, "a str", x))
    return x
end

"""
    bool_field(m, key, what; default) -> Bool

Field `key` of map `m` as a bool, or `default` when it is absent.
"""
function bool_field(m::Dict{String,Any}, key::String, what::String; default::Bool)
    haskey(m, key) || return default
    x = m[key]
    x isa Bool || throw(mistyped(what, key, "a bool", x))
    return x
end

"""
    int_field(m, key, what) -> Int

Field `key` of map `m` as a non-negative int that fits an `Int`.
"""
function int_field(m::Dict{String,Any}, key::String, what::String)
    x = field(m, key, what)
    (x isa Int64 && x >= 0) || throw(mistyped(what, key, "an int ≥ 0", x))
    return x
end

"""
    float_field(m, key, what) -> Float64

Field `key` of map `m` as a finite float (an int is accepted too).
"""
function float_field(m::Dict{String,Any}, key::String, what::String)
    x = field(m, key, what)
    (x isa AbstractFloat || is_wire_int(x)) && isfinite(x) || throw(mistyped(what, key, "a finite float", x))
    return Float64(x)
end

"""
    list_field(m, key, what) -> Vector{Any}

Field `key` of map `m` as a list.
"""
function list_field(m::Dict{String,Any}, key::String, what::String)
    x = field(m, key, what)
    x isa Vector{Any} || throw(mistyped(what, key, "a list", x))
    return x
end

"""
    int_list_field(m, key, what) -> Vector{Int}

Field `key` of map `m` as a list of non-negative ints.
"""
function int_list_field(m::Dict{String,Any}, key::String, what::String)
    xs = list_field(m, key, what)
    for (i, x) in enumerate(xs)
        x isa Int64 && x >= 0 ||
            throw(ProtocolError("$what: field \"$key\" must hold ints ≥ 0; item $i is $(describe_value(x))"))
    end
    return Int[x for x in xs]
end

"""
    str_list_field(m, key, what) -> Vector{String}

Field `key` of map `m` as a list of strings.
"""
function str_list_field(m::Dict{String,Any}, key::String, what::String)
    xs = list_field(m, key, what)
    for (i, x) in enumerate(xs)
        x isa String ||
            throw(ProtocolError("$what: field \"$key\" must hold strings; item $i is $(describe_value(x))"))
    end
    return String[x for x in xs]
end

"""
    map_field(m, key, what) -> Dict{String,Any}

Field `key` of map `m` as a map.
"""
function map_field(m::Dict{String,Any}, key::String, what::String)
    x = field(m, key, what)
    x isa Dict{String,Any} || throw(mistyped(what, key, "a map", x))
    return x
end

"""
    request_id(m) -> Union{UInt64,Nothing}

The `id` of a decoded request map, or `nothing` when it has no usable one (the reply then
carries a nil id).
"""
function request_id(m::Dict{String,Any})
    id = get(m, "id", nothing)
    id isa Int64 && id >= 0 && return UInt64(id)
    id isa UInt64 && return id
    return nothing
end

"""
    decode_request(m::Dict{String,Any}) -> Request

Check a request envelope: version, id, client id and operation. Throws `ProtocolError`.
"""
function decode_request(m::Dict{String,Any})
    what = "request"
    v = field(m, "v", what)
    v isa Int64 || throw(mistyped(what, "v", "an int", v))
    v == PROTOCOL_VERSION ||
        throw(ProtocolError("protocol version $v is not supported; this server speaks version $PROTOCOL_VERSION"))
    id = request_id(m)
    id === nothing && throw(mistyped(what, "id", "an int ≥ 0", get(m, "id", nothing)))
    client = str_field(m, "client", what)
    occursin(CLIENT_ID, client) ||
        throw(ProtocolError("request: client id must be 8 to 64 characters of [A-Za-z0-9_-], not $(repr(client))"))
    name = str_field(m, "op", what)
    op = get(OPS, name, nothing)
    op === nothing && throw(ProtocolError("request: unknown op $(repr(name))"))
    return Request(id, client, op, m)
end

"""
    encode_ok(id, result, unlinked=String[]; output=nothing) -> Vector{UInt8}

A success reply carrying `result`, already a wire value (see `to_wire`), and, when there are
any, the names of the client's result chunks the server `unlinked` since its last reply and what
the job printed and logged (`output`, section 2).
"""
function encode_ok(id::UInt64, result, unlinked::Vector{String} = String[];
                   output::Union{Nothing,Dict{String,Any}} = nothing)
    buf = sizehint!(UInt8[], 64)
    write_map_header!(buf, 4 + !isempty(unlinked) + (output !== nothing))
    pack!(pack!(buf, "v"), PROTOCOL_VERSION)
    pack!(pack!(buf, "id"), id)
    pack!(pack!(buf, "ok"), true)
    isempty(unlinked) || pack!(pack!(buf, "unlinked"), unlinked)
    output === nothing || pack!(pack!(buf, "output"), output)
    return pack!(pack!(buf, "result"), result)
end

"""
    encode_error(id, type, message, backtrace=""; output=nothing) -> Vector{UInt8}

An error reply; `id` is `nothing` when the request had no readable id.
"""
function encode_error(id::Union{UInt64,Nothing}, type::String, message::String, backtrace::String = "";
                      output::Union{Nothing,Dict{String,Any}} = nothing)
    buf = UInt8[]
    write_map_header!(buf, 4 + (output !== nothing))
    pack!(pack!(buf, "v"), PROTOCOL_VERSION)
    pack!(pack!(buf, "id"), id)
    pack!(pack!(buf, "ok"), false)
    output === nothing || pack!(pack!(buf, "output"), output)
    pack!(buf, "error")
    write_map_header!(buf, 3)
    pack!(pack!(buf, "type"), type)
    pack!(pack!(buf, "message"), message)
    return pack!(pack!(buf, "backtrace"), backtrace)
end

"""
    encode_output(id, output) -> Vector{UInt8}

An output message: what the running job of request `id` printed since the last one, sent
before its reply when the request asked for `stream_output` (section 2).
"""
function encode_output(id::UInt64, output::Dict{String,Any})
    buf = UInt8[]
    write_map_header!(buf, 3)
    pack!(pack!(buf, "v"), PROTOCOL_VERSION)
    pack!(pack!(buf, "id"), id)
    return pack!(pack!(buf, "output"), output)
end

"""
    array_ref(m::Dict{String,Any}) -> ArrayRef

The `ArrayRef` of a tagged array value (`lease`, present on results, is ignored on the way in).
"""
function array_ref(m::Dict{String,Any})
    what = "array value"
    form = str_field(m, "form", what)
    len = int_field(m, "length", what)
    buffers = Dict{String,BufferRef}()
    for (key, entry) in map_field(m, "buffers", what)
        ok = entry isa Vector{Any} && length(entry) == 3 && entry[1] isa String &&
             all(x -> x isa Int64 && x >= 0, entry[2:3])
        ok || throw(ProtocolError("array value: buffer $(repr(key)) must be [segment, offset, nbytes] " *
                                  "(a str and two ints ≥ 0)"))
        buffers[key] = BufferRef(entry[1], entry[2], entry[3])
    end
    return ArrayRef(form, len, buffers)
end

"""
    wire_array(ref, lease) -> Dict{String,Any}

The wire value of array `ref`, with its result `lease` (none for `nothing`).
"""
function wire_array(ref::ArrayRef, lease::Union{Int,Nothing})
    buffers = Dict{String,Any}(k => Any[b.segment, b.offset, b.nbytes] for (k, b) in ref.buffers)
    wire = Dict{String,Any}("\$" => "array", "form" => ref.form, "length" => ref.length, "buffers" => buffers)
    lease === nothing || (wire["lease"] = lease)
    return wire
end
