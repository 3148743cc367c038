# The four option-type nodes: each makes some elements of its content missing.

"""
    IndexedOptionForm(index, content, parameters, form_key)

An `IndexedOptionArray` node: element `i` is missing where `index[i] < 0`, else
`content[index[i]]` (0-based).
"""
struct IndexedOptionForm <: Form
    index::String
    content::Form
    parameters::Parameters
    form_key::Union{String,Nothing}
end

class_name(::Type{IndexedOptionForm}) = "IndexedOptionArray"
buffer_roles(::IndexedOptionForm) = ("index",)
form_contents(f::IndexedOptionForm) = (f.content,)

read_form(::Type{IndexedOptionForm}, r::FormReader) =
    IndexedOptionForm(index_type_name(r, "index", ("i32", "i64")), child_form(r, "content"),
                      node_parameters(r), node_form_key(r))

write_form(io::IO, f::IndexedOptionForm) =
    write_node(io, f, "index" => f.index, "content" => f.content)

"""
    ByteMaskedForm(mask, valid_when, content, parameters, form_key)

A `ByteMaskedArray` node: element `i` is `content[i]` where `(mask[i] != 0) == valid_when`,
else missing. `mask` is `"i8"`.
"""
struct ByteMaskedForm <: Form
    mask::String
    valid_when::Bool
    content::Form
    parameters::Parameters
    form_key::Union{String,Nothing}
end

class_name(::Type{ByteMaskedForm}) = "ByteMaskedArray"
buffer_roles(::ByteMaskedForm) = ("mask",)
form_contents(f::ByteMaskedForm) = (f.content,)

read_form(::Type{ByteMaskedForm}, r::FormReader) =
    ByteMaskedForm(index_type_name(r, "mask", ("i8",)),
                   required(r, "valid_when", Bool, "a boolean"), child_form(r, "content"),
                   node_parameters(r), node_form_key(r))

write_form(io::IO, f::ByteMaskedForm) =
    write_node(io, f, "mask" => f.mask, "valid_when" => f.valid_when, "content" => f.content)

"""
    BitMaskedForm(mask, valid_when, lsb_order, content, parameters, form_key)

A `BitMaskedArray` node: element `i` is `content[i]` where bit `i` of the `"u8"` mask equals
`valid_when`, else missing; `lsb_order` says whether bit 0 of a byte is its least significant.
"""
struct BitMaskedForm <: Form
    mask::String
    valid_when::Bool
    lsb_order::Bool
    content::Form
    parameters::Parameters
    form_key::Union{String,Nothing}
end

class_name(::Type{BitMaskedForm}) = "BitMaskedArray"
buffer_roles(::BitMaskedForm) = ("mask",)
form_contents(f::BitMaskedForm) = (f.content,)

read_form(::Type{BitMaskedForm}, r::FormReader) =
    BitMaskedForm(index_type_name(r, "mask", ("u8",)),
                  required(r, "valid_when", Bool, "a boolean"),
                  required(r, "lsb_order", Bool, "a boolean"), child_form(r, "content"),
                  node_parameters(r), node_form_key(r))

write_form(io::IO, f::BitMaskedForm) =
    write_node(io, f, "mask" => f.mask, "valid_when" => f.valid_when,
               "lsb_order" => f.lsb_order, "content" => f.content)

"""
    UnmaskedForm(content, parameters, form_key)

An `UnmaskedArray` node: an option type whose elements are never missing; no buffers.
"""
struct UnmaskedForm <: Form
    content::Form
    parameters::Parameters
    form_key::Union{String,Nothing}
end

class_name(::Type{UnmaskedForm}) = "UnmaskedArray"
form_contents(f::UnmaskedForm) = (f.content,)

read_form(::Type{UnmaskedForm}, r::FormReader) =
    UnmaskedForm(child_form(r, "content"), node_parameters(r), node_form_key(r))

write_form(io::IO, f::UnmaskedForm) = write_node(io, f, "content" => f.content)
