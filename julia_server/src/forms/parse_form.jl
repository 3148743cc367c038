# From form JSON to a tree of `Form` nodes, refusing anything malformed with `InvalidArray`.

const FORM_CLASSES = Dict{String,DataType}(
    class_name(T) => T for T in (NumpyForm, EmptyForm, ListOffsetForm, ListForm, RegularForm,
                                 RecordForm, IndexedForm, IndexedOptionForm, ByteMaskedForm,
                                 BitMaskedForm, UnmaskedForm, UnionForm))

"""
    parse_form(json::AbstractString) -> Form

Build the form tree from form JSON as `ak.forms.Form.to_json` writes it. Raises
`InvalidArray` naming the node for malformed JSON, an unknown class, a missing or mistyped key,
an unsupported primitive or index type, nesting deeper than `FORM_MAX_DEPTH`, or a `form_key`
used twice.
"""
function parse_form(json::AbstractString)
    doc = try
        parse_json(json)
    catch err
        err isa JSONError || rethrow()
        throw(InvalidArray("form is not valid JSON: $(err.msg)"))
    end
    form = read_form_node(doc, "root", 1)
    check_unique_form_keys(form)
    return form
end

function read_form_node(obj, path::String, depth::Int)
    obj isa Dict{String,Any} || throw(InvalidArray("form at $path: expected an object, not $(json_kind(obj))"))
    depth > FORM_MAX_DEPTH && throw(InvalidArray("form at $path: nested deeper than $FORM_MAX_DEPTH nodes"))
    class = get(obj, "class", nothing)
    class isa String || throw(InvalidArray("form at $path: missing \"class\""))
    haskey(FORM_CLASSES, class) || throw(InvalidArray("form at $path: unknown class \"$class\""))
    return read_form(FORM_CLASSES[class], FormReader(obj, class, path, depth))
end

# Two nodes with one form_key would claim the same buffer keys.
function check_unique_form_keys(root::Form)
    seen = Set{String}()
    stack = Form[root]
    while !isempty(stack)
        f = pop!(stack)
        key = form_key(f)
        if key !== nothing
            key in seen && throw(InvalidArray("form: form_key \"$key\" is used by more than one node"))
            push!(seen, key)
        end
        append!(stack, form_contents(f))
    end
end
