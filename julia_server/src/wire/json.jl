# A small, strict JSON reader and writer: just enough for Awkward form JSON, which arrives from
# other processes and so must never crash or recurse without bound.
#
# Python's `json.dumps` (which awkward uses for forms) writes non-finite floats as `NaN`,
# `Infinity` and `-Infinity`; both directions accept them so user parameters round-trip.

"""JSON text that could not be read; the message names the byte position."""
struct JSONError <: Exception
    msg::String
end

Base.showerror(io::IO, e::JSONError) = print(io, "JSONError: ", e.msg)

"""Default nesting limit of [`parse_json`](@ref): deeper documents are refused, not recursed."""
const JSON_MAX_DEPTH = 64

mutable struct JSONReader
    bytes::Vector{UInt8}
    pos::Int            # 1-based index of the next unread byte
    max_depth::Int
end

"""
    parse_json(text; max_depth=JSON_MAX_DEPTH) -> Any

Read one JSON document into `Dict{String,Any}`, `Vector{Any}`, `String`, `Int64` (integers
without fraction or exponent), `Float64`, `Bool` or `nothing`. Raises [`JSONError`](@ref) for
malformed text, invalid UTF-8, duplicate object keys, out-of-range integers, trailing content
or nesting deeper than `max_depth`.
"""
function parse_json(text::AbstractString; max_depth::Int=JSON_MAX_DEPTH)
    str = String(text)
    isvalid(str) || throw(JSONError("text is not valid UTF-8"))
    r = JSONReader(Vector{UInt8}(str), 1, max_depth)
    value = read_value(r, 1)
    skip_space(r)
    r.pos <= length(r.bytes) && json_fail(r, "unexpected content after the document")
    return value
end

json_fail(r::JSONReader, what::AbstractString) = throw(JSONError("$what at byte $(r.pos - 1)"))

peek_byte(r::JSONReader) = r.pos <= length(r.bytes) ? r.bytes[r.pos] : nothing

function skip_space(r::JSONReader)
    while r.pos <= length(r.bytes) && r.bytes[r.pos] in (0x20, 0x09, 0x0a, 0x0d)
        r.pos += 1
    end
end

function expect_byte(r::JSONReader, b::UInt8)
    peek_byte(r) == b || json_fail(r, "expected '$(Char(b))'")
    r.pos += 1
end

function read_value(r::JSONReader, depth::Int)
    skip_space(r)
    b = peek_byte(r)
    b === nothing && json_fail(r, "unexpected end of text")
    if b == UInt8('{') || b == UInt8('[')
        depth > r.max_depth && json_fail(r, "nesting deeper than $(r.max_depth) levels")
        return b == UInt8('{') ? read_object(r, depth) : read_array(r, depth)
    elseif b == UInt8('"')
        return read_string(r)
    elseif b == UInt8('-') || UInt8('0') <= b <= UInt8('9')
        return read_number(r)
    end
    for (word, value) in (("true", true), ("false", false), ("null", nothing),
                          ("NaN", NaN), ("Infinity", Inf))
        read_word(r, word) && return value
    end
    json_fail(r, "unexpected character '$(Char(b))'")
end

function read_word(r::JSONReader, word::String)
    n = ncodeunits(word)
    last = r.pos + n - 1
    (last <= length(r.bytes) && view(r.bytes, r.pos:last) == codeunits(word)) || return false
    r.pos += n
    return true
end

function read_object(r::JSONReader, depth::Int)
    expect_byte(r, UInt8('{'))
    obj = Dict{String,Any}()
    skip_space(r)
    if peek_byte(r) == UInt8('}')
        r.pos += 1
        return obj
    end
    while true
        skip_space(r)
        peek_byte(r) == UInt8('"') || json_fail(r, "expected a string key")
        key = read_string(r)
        haskey(obj, key) && json_fail(r, "duplicate key \"$key\"")
        skip_space(r)
        expect_byte(r, UInt8(':'))
        obj[key] = read_value(r, depth + 1)
        skip_space(r)
        peek_byte(r) == UInt8('}') && (r.pos += 1; return obj)
        expect_byte(r, UInt8(','))
    end
end

function read_array(r::JSONReader, depth::Int)
    expect_byte(r, UInt8('['))
    arr = Any[]
    skip_space(r)
    if peek_byte(r) == UInt8(']')
        r.pos += 1
        return arr
    end
    while true
        push!(arr, read_value(r, depth + 1))
        skip_space(r)
        peek_byte(r) == UInt8(']') && (r.pos += 1; return arr)
        expect_byte(r, UInt8(','))
    end
end

function read_digits(r::JSONReader)
    start = r.pos
    while r.pos <= length(r.bytes) && UInt8('0') <= r.bytes[r.pos] <= UInt8('9')
        r.pos += 1
    end
    r.pos > start || json_fail(r, "expected a digit")
    return r.pos - start
end

function read_number(r::JSONReader)
    start = r.pos
    if peek_byte(r) == UInt8('-')
        r.pos += 1
        read_word(r, "Infinity") && return -Inf
    end
    leading_zero = peek_byte(r) == UInt8('0')
    ndigits = read_digits(r)
    leading_zero && ndigits > 1 && json_fail(r, "leading zero in a number")
    integral = true
    if peek_byte(r) == UInt8('.')
        r.pos += 1
        read_digits(r)
        integral = false
    end
    if peek_byte(r) in (UInt8('e'), UInt8('E'))
        r.pos += 1
        peek_byte(r) in (UInt8('+'), UInt8('-')) && (r.pos += 1)
        read_digits(r)
        integral = false
    end
    literal = String(r.bytes[start:r.pos-1])
    integral || return parse(Float64, literal)
    value = tryparse(Int64, literal)
    value === nothing && json_fail(r, "integer $literal out of the Int64 range")
    return value
end

function read_hex4(r::JSONReader)
    r.pos + 3 <= length(r.bytes) || json_fail(r, "truncated \\u escape")
    value = tryparse(UInt16, String(r.bytes[r.pos:r.pos+3]); base=16)
    value === nothing && json_fail(r, "bad \\u escape")
    r.pos += 4
    return value
end

const JSON_ESCAPES = Dict(UInt8('"') => UInt8('"'), UInt8('\\') => UInt8('\\'),
                          UInt8('/') => UInt8('/'), UInt8('b') => 0x08, UInt8('f') => 0x0c,
                          UInt8('n') => 0x0a, UInt8('r') => 0x0d, UInt8('t') => 0x09)

function read_string(r::JSONReader)
    expect_byte(r, UInt8('"'))
    out = IOBuffer()
    while true
        b = peek_byte(r)
        b === nothing && json_fail(r, "unterminated string")
        r.pos += 1
        if b == UInt8('"')
            return String(take!(out))
        elseif b < 0x20
            json_fail(r, "control character in a string")
        elseif b != UInt8('\\')
            write(out, b)
            continue
        end
        e = peek_byte(r)
        e === nothing && json_fail(r, "unterminated string")
        r.pos += 1
        if e == UInt8('u')
            print(out, read_escaped_char(r))
        else
            haskey(JSON_ESCAPES, e) || json_fail(r, "bad escape '\\$(Char(e))'")
            write(out, JSON_ESCAPES[e])
        end
    end
end

# A `\uXXXX` escape, combining a UTF-16 surrogate pair into one character.
function read_escaped_char(r::JSONReader)
    unit = read_hex4(r)
    0xdc00 <= unit <= 0xdfff && json_fail(r, "unpaired low surrogate")
    0xd800 <= unit <= 0xdbff || return Char(unit)
    (read_word(r, "\\u")) || json_fail(r, "unpaired high surrogate")
    low = read_hex4(r)
    0xdc00 <= low <= 0xdfff || json_fail(r, "unpaired high surrogate")
    return Char(0x10000 + ((UInt32(unit) - 0xd800) << 10) + (UInt32(low) - 0xdc00))
end

"""
    write_json(io, value)

Write `value` as JSON: `nothing`, `Bool`, integers, floats (non-finite ones as Python writes
them), strings and `Symbol`s, vectors and tuples (arrays), and dictionaries (objects, keys
sorted so the output is deterministic).
"""
write_json(io::IO, ::Nothing) = print(io, "null")
write_json(io::IO, x::Bool) = print(io, x ? "true" : "false")
write_json(io::IO, x::Integer) = print(io, x)

function write_json(io::IO, x::AbstractFloat)
    y = Float64(x)      # Float32 prints with an `f0` suffix, which is not JSON
    if isnan(y)
        print(io, "NaN")
    elseif isinf(y)
        print(io, y > 0 ? "Infinity" : "-Infinity")
    else
        print(io, y)
    end
end

write_json(io::IO, x::Symbol) = write_json(io, String(x))

function write_json(io::IO, x::AbstractString)
    print(io, '"')
    for c in x
        isvalid(c) || throw(JSONError("string $(repr(x)) is not valid UTF-8"))
        if c == '"' || c == '\\'
            print(io, '\\', c)
        elseif c < ' '
            print(io, "\\u", string(UInt32(c); base=16, pad=4))
        else
            print(io, c)
        end
    end
    print(io, '"')
end

function write_json(io::IO, xs::Union{AbstractVector,Tuple})
    print(io, '[')
    for (i, x) in enumerate(xs)
        i > 1 && print(io, ", ")
        write_json(io, x)
    end
    print(io, ']')
end

function write_json(io::IO, d::AbstractDict)
    print(io, '{')
    for (i, (key, value)) in enumerate(sort!([string(k) => v for (k, v) in d]; by=first))
        i > 1 && print(io, ", ")
        write_json(io, key)
        print(io, ": ")
        write_json(io, value)
    end
    print(io, '}')
end

write_json(io::IO, x) = throw(JSONError("cannot write a $(typeof(x)) as JSON"))

"""
    json_string(value) -> String

[`write_json`](@ref) into a string.
"""
json_string(value) = sprint(write_json, value)
