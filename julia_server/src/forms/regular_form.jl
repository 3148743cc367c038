"""
    RegularForm(size, content, parameters, form_key)

A `RegularArray` node: lists of exactly `size` elements of `content`, with no buffers. With
`size == 0` the node's length comes from its parent, not from its content.
"""
struct RegularForm <: Form
    size::Int
    content::Form
    parameters::Parameters
    form_key::Union{String,Nothing}
end

class_name(::Type{RegularForm}) = "RegularArray"
form_contents(f::RegularForm) = (f.content,)

function read_form(::Type{RegularForm}, r::FormReader)
    size = required(r, "size", Int64, "an integer")
    size >= 0 || form_error(r, "\"size\" must be non-negative, not $size")
    return RegularForm(size, child_form(r, "content"), node_parameters(r), node_form_key(r))
end

write_form(io::IO, f::RegularForm) = write_node(io, f, "size" => f.size, "content" => f.content)
