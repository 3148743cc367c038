"""
    RecordForm(fields, contents, parameters, form_key)

A `RecordArray` node: one content per field, all of the record's length. `fields` is a vector
of distinct names, or `nothing` for a tuple.
"""
struct RecordForm <: Form
    fields::Union{Vector{String},Nothing}
    contents::Vector{Form}
    parameters::Parameters
    form_key::Union{String,Nothing}
end

class_name(::Type{RecordForm}) = "RecordArray"
form_contents(f::RecordForm) = f.contents

function read_form(::Type{RecordForm}, r::FormReader)
    contents = child_forms(r, "contents")
    fields = required(r, "fields")
    fields === nothing || fields isa Vector{Any} && all(x -> x isa String, fields) ||
        form_error(r, "\"fields\" must be an array of strings or null")
    if fields !== nothing
        length(fields) == length(contents) ||
            form_error(r, "$(length(fields)) fields but $(length(contents)) contents")
        allunique(fields) || form_error(r, "field names repeat")
        fields = Vector{String}(fields)
    end
    return RecordForm(fields, contents, node_parameters(r), node_form_key(r))
end

write_form(io::IO, f::RecordForm) =
    write_node(io, f, "fields" => f.fields, "contents" => f.contents)
