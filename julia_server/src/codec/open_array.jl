"""
    open_array(ref::ArrayRef, resolve) -> AbstractVector

The natural Julia view of an Awkward Array in shared memory: parse `ref.form`, validate every
buffer (`validate`; any problem raises `InvalidArray` before a view exists), then build views
over the mapped buffers without copying. `resolve(b::BufferRef)::Ptr{UInt8}` maps a buffer.

A `NumpyArray` becomes a `Vector{T}` over its buffer (`bool` a [`BoolVector`](@ref), `datetime64`
a `Vector{Datetime64{P}}`, `timedelta64` a vector of `Dates` periods, `inner_shape` nested
[`RegularVector`](@ref)s); lists become [`ListVector`](@ref)s, strings a [`StringVector`](@ref),
records a [`RecordVector`](@ref), option types vectors with `missing`, an `IndexedArray` an
[`IndexedVector`](@ref), a `UnionArray` a [`UnionVector`](@ref), an `EmptyArray` `Any[]`.
The views stay valid only while the buffers stay mapped.
"""
function open_array(ref::ArrayRef, resolve)
    form = parse_form(ref.form)
    return build_view(validate(form, ref.length, ref.buffers, resolve))
end

"""
    build_view(node::CheckedNode) -> AbstractVector

The view of a validated node (see [`open_array`](@ref)).
"""
build_view(c::CheckedNode) = build_view(c.form, c)

content_view(c::CheckedNode) = build_view(c.contents[1])

function build_view(f::NumpyForm, c::CheckedNode)
    data = c.buffers["data"]
    leaf = element_type(f) === Bool ? BoolVector(data) : data
    isempty(f.inner_shape) && return isempty(f.parameters) ? leaf : ParameterizedVector(leaf, f.parameters)
    # One RegularVector per inner dimension, innermost first; the parameters go outermost.
    nested = leaf
    for d in length(f.inner_shape):-1:1
        outer_length = c.length * prod(f.inner_shape[1:d-1])
        params = d == 1 ? f.parameters : Parameters()
        nested = RegularVector(nested, f.inner_shape[d], outer_length, params)
    end
    return nested
end

build_view(::EmptyForm, ::CheckedNode) = Any[]

function list_view(f::Form, content::AbstractVector, starts, stops)
    lists = ListVector(content, starts, stops, f.parameters)
    is_string = get(f.parameters, "__array__", nothing) == "string" && eltype(content) === UInt8
    return is_string ? StringVector(lists) : lists
end

function build_view(f::ListOffsetForm, c::CheckedNode)
    offsets = c.buffers["offsets"]
    return list_view(f, content_view(c), view(offsets, 1:c.length), view(offsets, 2:c.length+1))
end

build_view(f::ListForm, c::CheckedNode) =
    list_view(f, content_view(c), c.buffers["starts"], c.buffers["stops"])

build_view(f::RegularForm, c::CheckedNode) =
    RegularVector(content_view(c), f.size, c.length, f.parameters)

function build_view(f::RecordForm, c::CheckedNode)
    columns = Tuple(build_view(x) for x in c.contents)
    f.fields === nothing && return RecordVector(columns, c.length, f.parameters)
    return RecordVector(NamedTuple{Tuple(Symbol.(f.fields))}(columns), c.length, f.parameters)
end

build_view(f::IndexedForm, c::CheckedNode) =
    IndexedVector(content_view(c), c.buffers["index"], f.parameters)

build_view(f::IndexedOptionForm, c::CheckedNode) =
    IndexedOptionVector(content_view(c), c.buffers["index"], f.parameters)

build_view(f::ByteMaskedForm, c::CheckedNode) =
    ByteMaskedVector(content_view(c), c.buffers["mask"], f.valid_when, f.parameters)

build_view(f::BitMaskedForm, c::CheckedNode) =
    BitMaskedVector(content_view(c), c.buffers["mask"], f.valid_when, f.lsb_order, c.length, f.parameters)

build_view(f::UnmaskedForm, c::CheckedNode) = UnmaskedVector(content_view(c), f.parameters)

build_view(f::UnionForm, c::CheckedNode) =
    UnionVector(c.buffers["tags"], c.buffers["index"], Tuple(build_view(x) for x in c.contents), f.parameters)
