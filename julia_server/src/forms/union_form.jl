"""
    UnionForm(tags, index, contents, parameters, form_key)

A `UnionArray` node: element `i` is `contents[tags[i]][index[i]]` (0-based). `tags` is `"i8"`;
`index` is `"i32"`, `"u32"` or `"i64"`.
"""
struct UnionForm <: Form
    tags::String
    index::String
    contents::Vector{Form}
    parameters::Parameters
    form_key::Union{String,Nothing}
end

class_name(::Type{UnionForm}) = "UnionArray"
buffer_roles(::UnionForm) = ("tags", "index")
form_contents(f::UnionForm) = f.contents

function read_form(::Type{UnionForm}, r::FormReader)
    tags = index_type_name(r, "tags", ("i8",))
    index = index_type_name(r, "index", ("i32", "u32", "i64"))
    contents = child_forms(r, "contents")
    isempty(contents) && form_error(r, "\"contents\" is empty")
    length(contents) > typemax(Int8) + 1 && form_error(r, "more than 128 contents")
    return UnionForm(tags, index, contents, node_parameters(r), node_form_key(r))
end

write_form(io::IO, f::UnionForm) =
    write_node(io, f, "tags" => f.tags, "index" => f.index, "contents" => f.contents)
