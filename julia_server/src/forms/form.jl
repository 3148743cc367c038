# What every Awkward form node shares, and the helpers each node class uses to read itself from
# form JSON (with errors that name the node) and to write itself back.

"""
    Form

A node of an Awkward Array form (the array's type and buffer layout, without the data), as
`ak.forms.Form` describes it. Every node has [`parameters`](@ref) and a [`form_key`](@ref).
"""
abstract type Form end

"""The `parameters` of a form node or view: `__array__`, `__record__`, `__list__`, user keys."""
const Parameters = Dict{String,Any}

"""
    form_key(form) -> Union{String,Nothing}

The node's `form_key`, which prefixes its buffer keys (`"{form_key}-{role}"`).
"""
form_key(f::Form) = f.form_key

"""
    parameters(x) -> Dict{String,Any}

The Awkward parameters of a form node or of a bridge view.
"""
parameters(f::Form) = f.parameters

"""Julia element type of each Awkward index type name (offsets, starts, index, tags, mask)."""
const INDEX_TYPES = Dict{String,DataType}("i8" => Int8, "u8" => UInt8, "i32" => Int32,
                                          "u32" => UInt32, "i64" => Int64)

"""Deepest form accepted: deeper nesting is refused rather than compiled into nested types."""
const FORM_MAX_DEPTH = 32

# One node of form JSON being read: the JSON object, where it sits, and how errors name it.
struct FormReader
    obj::Dict{String,Any}
    class::String
    path::String
    depth::Int
end

function node_label(r::FormReader)
    key = get(r.obj, "form_key", nothing)
    key isa String && return "$key ($(r.class))"
    return "at $(r.path) ($(r.class))"
end

form_error(r::FormReader, msg::AbstractString) = throw(InvalidArray("form node $(node_label(r)): $msg"))

json_kind(x) = x === nothing ? "null" : x isa AbstractDict ? "an object" :
               x isa AbstractVector ? "an array" : x isa String ? "a string" :
               x isa Bool ? "a boolean" : "a number"

function required(r::FormReader, key::String)
    haskey(r.obj, key) || form_error(r, "missing \"$key\"")
    return r.obj[key]
end

function required(r::FormReader, key::String, ::Type{T}, what::String) where {T}
    value = required(r, key)
    value isa T || form_error(r, "\"$key\" must be $what, not $(json_kind(value))")
    return value
end

function index_type_name(r::FormReader, key::String, allowed::Tuple)
    name = required(r, key, String, "a string")
    name in allowed || form_error(r, "\"$key\" must be one of $(join(allowed, ", ")), not \"$name\"")
    return name
end

function node_parameters(r::FormReader)
    params = get(r.obj, "parameters", nothing)
    params === nothing && return Parameters()
    params isa Dict{String,Any} || form_error(r, "\"parameters\" must be an object, not $(json_kind(params))")
    return params
end

function node_form_key(r::FormReader)
    key = get(r.obj, "form_key", nothing)
    key === nothing || key isa String || form_error(r, "\"form_key\" must be a string or null")
    return key
end

child_form(r::FormReader, key::String) =
    read_form_node(required(r, key), "$(r.path).$key", r.depth + 1)

function child_forms(r::FormReader, key::String)
    items = required(r, key, Vector{Any}, "an array")
    return Form[read_form_node(item, "$(r.path).$key[$(i - 1)]", r.depth + 1)
                for (i, item) in enumerate(items)]
end

# Writes `{"class": …, <entries>, "parameters": …, "form_key": …}` with awkward's key order.
function write_node(io::IO, f::Form, entries::Pair{String}...)
    print(io, "{\"class\": \"", class_name(typeof(f)), "\"")
    for (key, value) in entries
        print(io, ", \"", key, "\": ")
        write_json(io, value)
    end
    print(io, ", \"parameters\": ")
    write_json(io, f.parameters)
    print(io, ", \"form_key\": ")
    write_json(io, f.form_key)
    print(io, "}")
end

# A form inside form JSON (a node's content, a list of contents) is written as its node.
write_json(io::IO, f::Form) = write_form(io, f)

"""
    form_json(form) -> String

The form as JSON that `ak.forms.from_json` reads back to an equal form.
"""
form_json(f::Form) = sprint(write_form, f)

"""
    form_contents(form) -> collection of Form

The node's direct children (none for leaves).
"""
form_contents(::Form) = ()

"""
    buffer_roles(form) -> Tuple of String

The roles of the buffers this node owns (`"data"`, `"offsets"`, `"starts"`, …); its buffer
keys are `"{form_key}-{role}"`.
"""
buffer_roles(::Form) = ()
