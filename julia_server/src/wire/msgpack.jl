# msgpack (https://github.com/msgpack/msgpack/blob/master/spec.md) for the bridge's messages.
# Unpacking reads bytes from other processes, so every length is checked against what is left
# of the input before anything is read or allocated, nesting is capped, and any fault is a
# `ProtocolError`. Maps must have distinct string keys (docs/protocol.md); ext types are refused.

"""Deepest nesting of arrays and maps `unpack` accepts."""
const MSGPACK_MAX_DEPTH = 64

"""Largest input `unpack` accepts by default, matching the client socket's `ZMQ_MAXMSGSIZE`."""
const MSGPACK_MAX_BYTES = 16 * 1024 * 1024

# A byte of msgpack can decode into far more memory (`0x80`, one empty map, is a `Dict` of
# several hundred bytes), so what one message may decode into is capped by count, not bytes.
"""Most values (of any kind) one `unpack` decodes."""
const MSGPACK_MAX_VALUES = 1_000_000

"""Most lists and maps one `unpack` decodes."""
const MSGPACK_MAX_CONTAINERS = 100_000

mutable struct Unpacker
    bytes::Vector{UInt8}
    pos::Int        # next byte to read
    values_left::Int
    containers_left::Int
end

Unpacker(bytes::Vector{UInt8}) = Unpacker(bytes, 1, MSGPACK_MAX_VALUES, MSGPACK_MAX_CONTAINERS)

"""
    unpack(bytes::Vector{UInt8}; max_bytes=MSGPACK_MAX_BYTES, max_values=MSGPACK_MAX_VALUES,
           max_containers=MSGPACK_MAX_CONTAINERS) -> Any

Decode exactly one msgpack object filling all of `bytes`: `nothing`, `Bool`, `Int64` (`UInt64`
above `typemax(Int64)`), `Float32`, `Float64`, `String`, `Vector{UInt8}` (bin), `Vector{Any}`,
`Dict{String,Any}`. Throws `ProtocolError` on truncated, malformed or oversized input: more
than `max_bytes` (between server and executors, results may be larger than clients' requests),
more than `max_values` values or more than `max_containers` lists and maps (an executor reads
its trusted server's messages without these two caps).
"""
function unpack(bytes::Vector{UInt8}; max_bytes::Int = MSGPACK_MAX_BYTES, max_values::Int = MSGPACK_MAX_VALUES,
                max_containers::Int = MSGPACK_MAX_CONTAINERS)
    length(bytes) <= max_bytes ||
        throw(ProtocolError("msgpack: input of $(length(bytes)) bytes exceeds $max_bytes"))
    u = Unpacker(bytes, 1, max_values, max_containers)
    value = unpack_value(u, 0)
    u.pos == length(bytes) + 1 ||
        throw(ProtocolError("msgpack: $(length(bytes) - u.pos + 1) trailing bytes after the object"))
    return value
end

remaining(u::Unpacker) = length(u.bytes) - u.pos + 1

function need(u::Unpacker, n::Integer)
    n <= remaining(u) ||
        throw(ProtocolError("msgpack: truncated input (needs $n bytes at offset $(u.pos - 1), $(remaining(u)) left)"))
    return nothing
end

function read_byte(u::Unpacker)
    need(u, 1)
    b = @inbounds u.bytes[u.pos]
    u.pos += 1
    return b
end

# A big-endian unsigned integer of type T.
function read_be(u::Unpacker, ::Type{T}) where {T<:Unsigned}
    need(u, sizeof(T))
    x = zero(T)
    for i in 0:sizeof(T)-1
        x = (x << 8) | T(@inbounds u.bytes[u.pos+i])
    end
    u.pos += sizeof(T)
    return x
end

function read_string(u::Unpacker, n::Integer)
    need(u, n)
    bytes = u.bytes
    s = GC.@preserve bytes unsafe_string(pointer(bytes, u.pos), n)
    u.pos += n
    isvalid(s) || throw(ProtocolError("msgpack: str is not valid UTF-8"))
    return s
end

function read_bin(u::Unpacker, n::Integer)
    need(u, n)
    b = u.bytes[u.pos:u.pos+n-1]
    u.pos += n
    return b
end

function read_array(u::Unpacker, n::Integer, depth::Int)
    # Every element takes at least one byte, so a count beyond the input is a lie; checking it
    # first keeps a 5-byte message from allocating gigabytes.
    need(u, n)
    count_container!(u)
    out = Vector{Any}(undef, n)
    for i in 1:n
        @inbounds out[i] = unpack_value(u, depth + 1)
    end
    return out
end

function read_map(u::Unpacker, n::Integer, depth::Int)
    need(u, 2n)
    count_container!(u)
    out = Dict{String,Any}()
    sizehint!(out, n)
    for _ in 1:n
        key = unpack_value(u, depth + 1)
        key isa String || throw(ProtocolError("msgpack: map key of type $(typeof(key)), expected str"))
        haskey(out, key) && throw(ProtocolError("msgpack: duplicate map key $(repr(first(key, 32)))"))
        out[key] = unpack_value(u, depth + 1)
    end
    return out
end

function count_container!(u::Unpacker)
    (u.containers_left -= 1) >= 0 ||
        throw(ProtocolError("msgpack: more than $MSGPACK_MAX_CONTAINERS lists and maps in one message"))
    return nothing
end

function unpack_value(u::Unpacker, depth::Int)
    depth < MSGPACK_MAX_DEPTH ||
        throw(ProtocolError("msgpack: nesting deeper than $MSGPACK_MAX_DEPTH"))
    (u.values_left -= 1) >= 0 ||
        throw(ProtocolError("msgpack: more than $MSGPACK_MAX_VALUES values in one message"))
    b = read_byte(u)
    b <= 0x7f && return Int64(b)
    b >= 0xe0 && return Int64(reinterpret(Int8, b))
    0x80 <= b <= 0x8f && return read_map(u, b & 0x0f, depth)
    0x90 <= b <= 0x9f && return read_array(u, b & 0x0f, depth)
    0xa0 <= b <= 0xbf && return read_string(u, b & 0x1f)
    b == 0xc0 && return nothing
    b == 0xc2 && return false
    b == 0xc3 && return true
    b == 0xc4 && return read_bin(u, read_be(u, UInt8))
    b == 0xc5 && return read_bin(u, read_be(u, UInt16))
    b == 0xc6 && return read_bin(u, read_be(u, UInt32))
    b == 0xca && return reinterpret(Float32, read_be(u, UInt32))
    b == 0xcb && return reinterpret(Float64, read_be(u, UInt64))
    b == 0xcc && return Int64(read_be(u, UInt8))
    b == 0xcd && return Int64(read_be(u, UInt16))
    b == 0xce && return Int64(read_be(u, UInt32))
    if b == 0xcf
        x = read_be(u, UInt64)
        return x <= typemax(Int64) ? Int64(x) : x
    end
    b == 0xd0 && return Int64(reinterpret(Int8, read_be(u, UInt8)))
    b == 0xd1 && return Int64(reinterpret(Int16, read_be(u, UInt16)))
    b == 0xd2 && return Int64(reinterpret(Int32, read_be(u, UInt32)))
    b == 0xd3 && return reinterpret(Int64, read_be(u, UInt64))
    b == 0xd9 && return read_string(u, read_be(u, UInt8))
    b == 0xda && return read_string(u, read_be(u, UInt16))
    b == 0xdb && return read_string(u, read_be(u, UInt32))
    b == 0xdc && return read_array(u, read_be(u, UInt16), depth)
    b == 0xdd && return read_array(u, read_be(u, UInt32), depth)
    b == 0xde && return read_map(u, read_be(u, UInt16), depth)
    b == 0xdf && return read_map(u, read_be(u, UInt32), depth)
    (0xc7 <= b <= 0xc9 || 0xd4 <= b <= 0xd8) &&
        throw(ProtocolError("msgpack: ext types are not part of the protocol"))
    throw(ProtocolError("msgpack: invalid type byte 0x$(string(b, base = 16, pad = 2))"))
end

"""
    top_level_scalars(bytes::Vector{UInt8}) -> Union{Nothing,Dict{String,Any}}

The scalar values (nil, bool, int, float, str) under string keys of the map `bytes` begins
with, as far as they can be read before the first fault: a request `unpack` refuses (a
non-string key, an ext type, nesting beyond `MSGPACK_MAX_DEPTH`, a truncated frame) may still
show the `id` its error reply should carry. `nothing` when `bytes` does not begin with a map.
Containers are skipped without being decoded, so no depth or size limit applies.
"""
function top_level_scalars(bytes::Vector{UInt8})
    u = Unpacker(bytes)
    n = try
        map_header(u)
    catch e
        e isa ProtocolError || rethrow()
        nothing
    end
    n === nothing && return nothing
    found = Dict{String,Any}()
    try
        for _ in 1:n
            key = is_scalar_byte(peek_byte(u)) ? unpack_value(u, 0) : skip_value!(u)
            value = is_scalar_byte(peek_byte(u)) ? unpack_value(u, 0) : skip_value!(u)
            key isa String && value !== SKIPPED && (found[key] = value)
        end
    catch e
        e isa ProtocolError || rethrow()
    end
    return found
end

const SKIPPED = :skipped

"""
    top_level_value_bytes(bytes, key) -> Union{Nothing,Vector{UInt8}}

The msgpack bytes of the value under `key` in the map `bytes` holds, as they are, or `nothing`
when it has no such key. For a message `unpack` has read already: the server forwards an
executor's result in its own bytes (`PackedValue`), so that a record's fields keep their order,
which a `Dict` does not.
"""
function top_level_value_bytes(bytes::Vector{UInt8}, key::String)
    u = Unpacker(bytes)
    n = map_header(u)
    n === nothing && return nothing
    for _ in 1:n
        found = unpack_value(u, 0) == key
        start = u.pos
        skip_value!(u)
        found && return bytes[start:u.pos-1]
    end
    return nothing
end

peek_byte(u::Unpacker) = (need(u, 1); @inbounds u.bytes[u.pos])

function map_header(u::Unpacker)
    b = read_byte(u)
    0x80 <= b <= 0x8f && return Int(b & 0x0f)
    b == 0xde && return Int(read_be(u, UInt16))
    b == 0xdf && return Int(read_be(u, UInt32))
    return nothing
end

# Type bytes of values that hold nothing inside them and are not ext types.
is_scalar_byte(b::UInt8) =
    b <= 0x7f || b >= 0xe0 || 0xa0 <= b <= 0xbf || b in (0xc0, 0xc2, 0xc3) || 0xca <= b <= 0xd3 ||
    0xd9 <= b <= 0xdb

# Moves past one value of any kind, ext types and deep nesting included, counting the values
# still to pass instead of recursing; every value takes at least one byte, so this ends.
function skip_value!(u::Unpacker)
    pending = 1
    while pending > 0
        pending -= 1
        b = read_byte(u)
        if b <= 0x7f || b >= 0xe0 || b in (0xc0, 0xc2, 0xc3)
        elseif 0x80 <= b <= 0x8f
            pending += 2 * Int(b & 0x0f)
        elseif 0x90 <= b <= 0x9f
            pending += Int(b & 0x0f)
        elseif 0xa0 <= b <= 0xbf
            advance!(u, b & 0x1f)
        elseif b == 0xdc || b == 0xdd
            pending += Int(b == 0xdc ? read_be(u, UInt16) : read_be(u, UInt32))
        elseif b == 0xde || b == 0xdf
            pending += 2 * Int(b == 0xde ? read_be(u, UInt16) : read_be(u, UInt32))
        elseif b in (0xc4, 0xd9)
            advance!(u, read_be(u, UInt8))
        elseif b in (0xc5, 0xda)
            advance!(u, read_be(u, UInt16))
        elseif b in (0xc6, 0xdb)
            advance!(u, read_be(u, UInt32))
        elseif b in (0xc7, 0xc8, 0xc9)            # ext 8/16/32: a length, a type byte, the data
            n = b == 0xc7 ? read_be(u, UInt8) : b == 0xc8 ? read_be(u, UInt16) : read_be(u, UInt32)
            advance!(u, Int(n) + 1)
        elseif 0xd4 <= b <= 0xd8                   # fixext 1 to 16: a type byte, the data
            advance!(u, 1 + (1 << (b - 0xd4)))
        elseif 0xca <= b <= 0xd3                   # numbers of 1 to 8 bytes
            advance!(u, (4, 8, 1, 2, 4, 8, 1, 2, 4, 8)[b - 0xca + 1])
        else
            throw(ProtocolError("msgpack: invalid type byte 0x$(string(b, base = 16, pad = 2))"))
        end
    end
    return SKIPPED
end

advance!(u::Unpacker, n::Integer) = (need(u, n); u.pos += Int(n); nothing)

"""
    pack(x) -> Vector{UInt8}

Encode `x` as msgpack; see `pack!` for the types accepted.
"""
pack(x) = pack!(UInt8[], x)

"""
    pack!(buf::Vector{UInt8}, x) -> buf

Append the msgpack encoding of `x`: `nothing`, `Bool`, integers up to 64 bits (the shortest
encoding), `Float32`, `Float64`, strings, `Vector{UInt8}` (bin), other vectors and tuples
(array), dicts with string keys and `FieldMap`s (map), `PackedValue`s (as they are). Anything
else is an `ArgumentError`.
"""
function pack!(buf::Vector{UInt8}, x)
    throw(ArgumentError("msgpack cannot encode a $(typeof(x))"))
end

pack!(buf::Vector{UInt8}, ::Nothing) = push!(buf, 0xc0)
pack!(buf::Vector{UInt8}, x::Bool) = push!(buf, x ? 0xc3 : 0xc2)
pack!(buf::Vector{UInt8}, x::Float32) = write_be!(push!(buf, 0xca), reinterpret(UInt32, x))
pack!(buf::Vector{UInt8}, x::Float64) = write_be!(push!(buf, 0xcb), reinterpret(UInt64, x))

function write_be!(buf::Vector{UInt8}, x::Unsigned)
    for i in sizeof(x)-1:-1:0
        push!(buf, (x >> (8i)) % UInt8)
    end
    return buf
end

function pack!(buf::Vector{UInt8}, x::Union{Int8,Int16,Int32,Int64,UInt8,UInt16,UInt32,UInt64})
    if x >= 0
        u = UInt64(x)
        u <= 0x7f && return push!(buf, u % UInt8)
        u <= typemax(UInt8) && return write_be!(push!(buf, 0xcc), u % UInt8)
        u <= typemax(UInt16) && return write_be!(push!(buf, 0xcd), u % UInt16)
        u <= typemax(UInt32) && return write_be!(push!(buf, 0xce), u % UInt32)
        return write_be!(push!(buf, 0xcf), u)
    end
    i = Int64(x)
    i >= -32 && return push!(buf, reinterpret(UInt8, i % Int8))
    i >= typemin(Int8) && return write_be!(push!(buf, 0xd0), reinterpret(UInt8, i % Int8))
    i >= typemin(Int16) && return write_be!(push!(buf, 0xd1), reinterpret(UInt16, i % Int16))
    i >= typemin(Int32) && return write_be!(push!(buf, 0xd2), reinterpret(UInt32, i % Int32))
    return write_be!(push!(buf, 0xd3), reinterpret(UInt64, i))
end

# The header of a str, bin, array or map of `n` items; `fix` is the fixed-size form (or
# `nothing`), `tags` the 8-, 16- and 32-bit length forms (0x00 where the width does not exist).
function write_header!(buf::Vector{UInt8}, n::Integer, fix, fixmax::Integer, tags::NTuple{3,UInt8})
    if fix !== nothing && n <= fixmax
        push!(buf, fix | UInt8(n))
    elseif tags[1] != 0x00 && n <= typemax(UInt8)
        write_be!(push!(buf, tags[1]), UInt8(n))
    elseif n <= typemax(UInt16)
        write_be!(push!(buf, tags[2]), UInt16(n))
    elseif n <= typemax(UInt32)
        write_be!(push!(buf, tags[3]), UInt32(n))
    else
        throw(ArgumentError("msgpack cannot encode $n items or bytes in one object"))
    end
    return buf
end

function pack!(buf::Vector{UInt8}, x::AbstractString)
    units = codeunits(String(x))
    write_header!(buf, length(units), 0xa0, 31, (0xd9, 0xda, 0xdb))
    return append!(buf, units)
end

function pack!(buf::Vector{UInt8}, x::Vector{UInt8})
    write_header!(buf, length(x), nothing, 0, (0xc4, 0xc5, 0xc6))
    return append!(buf, x)
end

function pack!(buf::Vector{UInt8}, x::Union{AbstractVector,Tuple})
    write_header!(buf, length(x), 0x90, 15, (0x00, 0xdc, 0xdd))
    for item in x
        pack!(buf, item)
    end
    return buf
end

"""
    write_map_header!(buf, n) -> buf

Append the header of a map of `n` pairs, for a caller that then packs the keys and values
itself (without building a `Dict`).
"""
write_map_header!(buf::Vector{UInt8}, n::Integer) = write_header!(buf, n, 0x80, 15, (0x00, 0xde, 0xdf))

function pack!(buf::Vector{UInt8}, x::AbstractDict{<:AbstractString})
    write_map_header!(buf, length(x))
    for (key, value) in x
        pack!(buf, key)
        pack!(buf, value)
    end
    return buf
end

"""
    FieldMap(keys, values)

A map packed with its keys in their order: a record's fields (a `NamedTuple`'s, a struct's, a
view's `Record`'s) reach Python in the order Julia has them.
"""
struct FieldMap
    keys::Vector{String}
    values::Vector{Any}
end

function pack!(buf::Vector{UInt8}, x::FieldMap)
    write_map_header!(buf, length(x.keys))
    for (key, value) in zip(x.keys, x.values)
        pack!(buf, key)
        pack!(buf, value)
    end
    return buf
end

"""
    PackedValue(bytes)

A value that is msgpack already (`top_level_value_bytes`), packed as it is.
"""
struct PackedValue
    bytes::Vector{UInt8}
end

pack!(buf::Vector{UInt8}, x::PackedValue) = append!(buf, x.bytes)
