# The two variable-length list nodes: contiguous (offsets) and general (starts, stops).

const LIST_INDEX_TYPES = ("i32", "u32", "i64")

"""
    ListOffsetForm(offsets, content, parameters, form_key)

A `ListOffsetArray` node: list `i` is `content[offsets[i]:offsets[i+1]]` (0-based, half-open);
`offsets` is the index type name (`"i32"`, `"u32"` or `"i64"`).
"""
struct ListOffsetForm <: Form
    offsets::String
    content::Form
    parameters::Parameters
    form_key::Union{String,Nothing}
end

class_name(::Type{ListOffsetForm}) = "ListOffsetArray"
buffer_roles(::ListOffsetForm) = ("offsets",)
form_contents(f::ListOffsetForm) = (f.content,)

read_form(::Type{ListOffsetForm}, r::FormReader) =
    ListOffsetForm(index_type_name(r, "offsets", LIST_INDEX_TYPES), child_form(r, "content"),
                   node_parameters(r), node_form_key(r))

write_form(io::IO, f::ListOffsetForm) =
    write_node(io, f, "offsets" => f.offsets, "content" => f.content)

"""
    ListForm(starts, stops, content, parameters, form_key)

A `ListArray` node: list `i` is `content[starts[i]:stops[i]]` (0-based, half-open); `starts`
and `stops` name one index type (`"i32"`, `"u32"` or `"i64"`).
"""
struct ListForm <: Form
    starts::String
    stops::String
    content::Form
    parameters::Parameters
    form_key::Union{String,Nothing}
end

class_name(::Type{ListForm}) = "ListArray"
buffer_roles(::ListForm) = ("starts", "stops")
form_contents(f::ListForm) = (f.content,)

function read_form(::Type{ListForm}, r::FormReader)
    starts = index_type_name(r, "starts", LIST_INDEX_TYPES)
    stops = index_type_name(r, "stops", LIST_INDEX_TYPES)
    starts == stops || form_error(r, "\"starts\" ($starts) and \"stops\" ($stops) differ")
    return ListForm(starts, stops, child_form(r, "content"), node_parameters(r), node_form_key(r))
end

write_form(io::IO, f::ListForm) =
    write_node(io, f, "starts" => f.starts, "stops" => f.stops, "content" => f.content)
