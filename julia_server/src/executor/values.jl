# Values between the wire (docs/protocol.md, section 4) and Julia, in the executor: arguments as
# the server forwards them (arrays it has checked the client may name, handles by id, opened from
# the job's `handle_arrays` first) become Julia values and views; results become wire values, their arrays written into
# blocks of the client's result arena.

"""Deepest nesting of tuples, lists and maps in a result (a self-containing vector stops here)."""
const MAX_VALUE_DEPTH = 32

"""
    open_wire_array(x, scope) -> AbstractVector

The validated view of a forwarded array value. One the server marked as lying in a result
`block` of the client's arena is an earlier result sent back: validated the first time only.
"""
function open_wire_array(x::Dict{String,Any}, scope::Scope)
    ref = array_ref(x)
    block = get(x, "block", nothing)
    view = block isa Vector{Any} ? result_view!(scope, ref, (block[1]::String, Int(block[2]))) :
           open_checked!(scope, ref)
    scope.returned[view] = ref   # should the call return it unchanged, `relend!` decides
    return view
end

"""
    from_wire(x, scope) -> Any

An argument as Julia sees it: scalars as decoded (a float32 widened to `Float64`), lists as
`Vector{Any}`, maps as `Dict{String,Any}`, tagged tuples as `Tuple`, handles as the view kept
since `send` or opened from the job's `handle_arrays`, functions as the function kept for the client, arrays as validated views on
shared memory (`open_array`).
"""
function from_wire(x, scope::Scope)
    (x === nothing || x isa Union{Bool,Int64,UInt64,Float64,String}) && return x
    x isa Float32 && return Float64(x)
    x isa Vector{Any} && return Any[from_wire(item, scope) for item in x]
    x isa Dict{String,Any} || throw(ProtocolError("a $(wire_type(x)) is not a value; arrays travel in shared memory"))
    tag = get(x, "\$", nothing)
    tag === nothing && return Dict{String,Any}(k => from_wire(v, scope) for (k, v) in x)
    tag == "tuple" && return Tuple(from_wire(item, scope) for item in list_field(x, "items", "tuple value"))
    tag == "handle" && return handle_view!(scope, int_field(x, "id", "handle value"), nothing)
    tag == "array" && return open_wire_array(x, scope)
    tag == "function" && return kept_function(scope.executor, int_field(x, "id", "function value"))
    throw(ProtocolError("unknown tagged value \"\$\": $(repr(tag))"))
end

"""
    to_wire(x, scope) -> Any

A Julia result as a wire value: `nothing` and `missing` (nil), `Bool`, integers that fit 64
bits, `Float64`, `Float32` (kept single precision), irrationals (`pi`) as `Float64`, strings, `Symbol`s and `Char`s (strings); a `Function` → a tagged function the executor keeps
for the client; `Tuple` → tagged tuple, except a buffers triple (`is_buffers_triple`) → an array; `NamedTuple`, a view's `Record`, a struct
(`is_struct_record`) and string- or symbol-keyed dicts → maps, with their keys in their order (`FieldMap`); anything `is_placeable` → an array placed in a block of the client's result
arena, leased to the client, or, for a vector the codec cannot lay out, a list. Anything else is a
`ResultTypeError`.
"""
to_wire(x, scope::Scope) = to_wire(x, scope, 0)

to_wire(::Union{Nothing,Missing}, ::Scope, ::Int) = nothing
to_wire(x::Union{Bool,Float32,Float64}, ::Scope, ::Int) = x
to_wire(x::Union{Int8,Int16,Int32,Int64,UInt8,UInt16,UInt32,UInt64}, ::Scope, ::Int) = x
to_wire(x::Float16, ::Scope, ::Int) = Float32(x)
to_wire(x::AbstractIrrational, ::Scope, ::Int) = Float64(x)
to_wire(x::Union{AbstractString,Symbol,AbstractChar}, ::Scope, ::Int) = string(x)

function to_wire(x::Integer, ::Scope, ::Int)
    typemin(Int64) <= x <= typemax(UInt64) ||
        throw(ResultTypeError("the integer $x does not fit in 64 bits"))
    return x < 0 ? Int64(x) : UInt64(x)
end

function to_wire(x::Tuple, scope::Scope, depth::Int)
    if is_buffers_triple(x)   # AwkwardArray.to_buffers(array): the array, validated, then written
        view, kept = open_buffers(x...)
        return GC.@preserve kept placed(view, scope)
    end
    items = Any[to_wire(item, scope, nested(depth)) for item in x]
    return Dict{String,Any}("\$" => "tuple", "items" => items)
end

# A record's fields as a map, in their order: a NamedTuple, one record of a view, a struct.
field_map(names, value_of, scope::Scope, depth::Int) =
    FieldMap(String[string(name) for name in names], Any[to_wire(value_of(name), scope, nested(depth)) for name in names])

to_wire(x::NamedTuple, scope::Scope, depth::Int) = field_map(keys(x), name -> x[name], scope, depth)
to_wire(r::Record, scope::Scope, depth::Int) = field_map(keys(r), name -> r[name], scope, depth)
to_wire_fields(x, scope::Scope, depth::Int) = field_map(fieldnames(typeof(x)), name -> getfield(x, name), scope, depth)

# A function (a lambda, a definition's value) stays in the executor; the client gets a callable.
function to_wire(f::Function, scope::Scope, ::Int)
    name = string(nameof(f))
    id = keep_function!(scope.executor, f)
    push!(scope.functions, id)
    return Dict{String,Any}("\$" => "function", "id" => id, "name" => startswith(name, '#') ? "anonymous" : name)
end

function to_wire(x::AbstractDict, scope::Scope, depth::Int)
    all(k -> k isa Union{AbstractString,Symbol}, keys(x)) ||
        throw(ResultTypeError("a $(short_type_name(x)) has keys that are not strings or symbols; " *
                              "Python dicts from Julia need string keys"))
    out = field_map(keys(x), key -> x[key], scope, depth)   # in the dict's own order
    allunique(out.keys) || throw(ResultTypeError("a dict with both a string and a symbol key of one name"))
    "\$" in out.keys && throw(ResultTypeError("a dict with the key \"\$\" would read as a tagged value"))
    return out
end

function to_wire(x, scope::Scope, depth::Int)
    if is_placeable(x)
        try
            return placed(x, scope)
        catch e
            # An Awkward layout or nothing: a vector the codec cannot lay out (of dicts, of
            # `nothing`, …) still travels as a list of values.
            e isa ResultTypeError && x isa AbstractVector || rethrow()
        end
    end
    if x isa AbstractVector
        length(x) <= MAX_RESULT_LIST ||
            throw(ResultTypeError("a $(short_type_name(x)) of $(length(x)) values that are not one Awkward Array " *
                                  "is too long to travel as a list (at most $MAX_RESULT_LIST); " *
                                  "return values of one kind (numbers, strings, records), which become an ak.Array"))
        return Any[to_wire(item, scope, nested(depth)) for item in x]
    end
    is_struct_record(typeof(x)) && return to_wire_fields(x, scope, depth)
    throw(ResultTypeError("a Julia $(short_type_name(x)) has no Python equivalent; $(what_instead(x))return " *
                          "a number, a string, a Bool, nothing or missing, a tuple, a NamedTuple, a struct " *
                          "or a Dict with string keys, a function, or an array of such things (an ak.Array)"))
end

# The nearest result that does come back, for the values a kernel most often ends with.
what_instead(::Real) = "convert it (`Float64(x)`, `Int(x)`) or "
what_instead(::Pair) = "make it a tuple (`Tuple(p)`) or "
what_instead(x) =   # a finite iterable (a `Channel` is not: `collect` would wait on it)
    Base.IteratorSize(typeof(x)) isa Union{Base.HasLength,Base.HasShape} && hasmethod(iterate, Tuple{typeof(x)}) ?
    "`collect(x)` makes its values an array, or " : ""

# The longest list a result travels as: half of what one message may hold, the rest for the
# reply around it (its output and logs).
const MAX_RESULT_LIST = MSGPACK_MAX_VALUES ÷ 2

function nested(depth::Int)
    depth < MAX_VALUE_DEPTH ||
        throw(ResultTypeError("the result is nested deeper than $MAX_VALUE_DEPTH levels (or contains itself)"))
    return depth + 1
end

# An array result: an argument returned unchanged by reference where the server allows it,
# else written into a new block. A block the codec fails to fill is not freed here: the server
# ends every lease a job made that its reply does not name.
function placed(x, scope::Scope)
    built = get(scope.built, x, nothing)
    built === nothing || return wire_array(built...)     # written in shared memory by the kernel
    growing = get(scope.growing, x, nothing)
    growing === nothing || return wire_array(growing_ref(x, growing), growing.lease)
    ref = get(scope.returned, x, nothing)
    if ref !== nothing
        relent = relend!(scope, ref)
        relent isa Int && return wire_array(ref, relent)
        # The client's own memory, which it frees after the reply: it answers with the array it
        # passed instead (docs/protocol.md), so neither side copies anything.
        relent === true && return wire_array(ref, nothing)
    end
    lease = Ref(0)
    ref = place_array(x, function (nbytes)
        block = allocate!(scope, nbytes)
        lease[] = block.lease
        return block.segment, block.offset, block.ptr
    end)
    return wire_array(ref, lease[])
end
