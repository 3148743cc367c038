"""
    IndexedForm(index, content, parameters, form_key)

An `IndexedArray` node: element `i` is `content[index[i]]` (0-based). With
`"__array__" => "categorical"` it is a categorical (dictionary-encoded) array.
"""
struct IndexedForm <: Form
    index::String
    content::Form
    parameters::Parameters
    form_key::Union{String,Nothing}
end

class_name(::Type{IndexedForm}) = "IndexedArray"
buffer_roles(::IndexedForm) = ("index",)
form_contents(f::IndexedForm) = (f.content,)

read_form(::Type{IndexedForm}, r::FormReader) =
    IndexedForm(index_type_name(r, "index", ("i32", "u32", "i64")), child_form(r, "content"),
                node_parameters(r), node_form_key(r))

write_form(io::IO, f::IndexedForm) = write_node(io, f, "index" => f.index, "content" => f.content)
