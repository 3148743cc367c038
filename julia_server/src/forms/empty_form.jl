"""
    EmptyForm(parameters, form_key)

An `EmptyArray` node: an array of unknown type that always has length 0 and no buffers.
"""
struct EmptyForm <: Form
    parameters::Parameters
    form_key::Union{String,Nothing}
end

class_name(::Type{EmptyForm}) = "EmptyArray"

read_form(::Type{EmptyForm}, r::FormReader) = EmptyForm(node_parameters(r), node_form_key(r))

write_form(io::IO, f::EmptyForm) = write_node(io, f)
