"""
    NumpyForm(primitive, inner_shape, parameters, form_key)

A `NumpyArray` node: a contiguous buffer of `primitive` values (`"float32"`, `"bool"`,
`"datetime64[ns]"`, …), each element a C-ordered block of shape `inner_shape`.
"""
struct NumpyForm <: Form
    primitive::String
    inner_shape::Vector{Int}
    parameters::Parameters
    form_key::Union{String,Nothing}
end

class_name(::Type{NumpyForm}) = "NumpyArray"
buffer_roles(::NumpyForm) = ("data",)

"""
    element_type(form::NumpyForm) -> DataType

The Julia type of the node's values (`Float32`, `Bool`, `Datetime64{Nanosecond}`, …).
"""
element_type(f::NumpyForm) = PRIMITIVE_TYPES[f.primitive]

function read_form(::Type{NumpyForm}, r::FormReader)
    primitive = required(r, "primitive", String, "a string")
    haskey(PRIMITIVE_TYPES, primitive) || form_error(r, "unsupported primitive \"$primitive\"")
    shape = get(r.obj, "inner_shape", Any[])
    shape isa Vector{Any} && all(d -> d isa Int64 && d >= 0, shape) ||
        form_error(r, "\"inner_shape\" must be an array of non-negative integers")
    return NumpyForm(primitive, Vector{Int}(shape), node_parameters(r), node_form_key(r))
end

write_form(io::IO, f::NumpyForm) =
    write_node(io, f, "primitive" => f.primitive, "inner_shape" => f.inner_shape)
