"""
    open_array(ref::ArrayRef, resolve) -> AbstractVector

The natural Julia view of an Awkward Array in shared memory: parse `ref.form` (once per distinct
JSON while it stays in `FORM_CACHE`), validate every buffer (`validate`, on every call; any
problem raises `InvalidArray` before a view exists), then build views over the mapped buffers
without copying. `resolve(b::BufferRef)::Ptr{UInt8}` maps a buffer.

A `NumpyArray` becomes a `Vector{T}` over its buffer (`bool` a [`BoolVector`](@ref), `datetime64`
a `Vector{Datetime64{P}}`, `timedelta64` a vector of `Dates` periods, `inner_shape` an array of that shape, `A[i, j]`
as NumPy's `a[i-1, j-1]` ([`numpy_rows`](@ref))); lists become [`ListVector`](@ref)s, strings a [`StringVector`](@ref),
records a [`RecordVector`](@ref), option types vectors with `missing`, an `IndexedArray` an
[`IndexedVector`](@ref), a `UnionArray` a [`UnionVector`](@ref), an `EmptyArray` `Any[]`.
The views stay valid only while the buffers stay mapped.
"""
function open_array(ref::ArrayRef, resolve)
    # The parse of a JSON seen before is reused (`FORM_CACHE`); the buffers never are.
    form = cached_form(FORM_CACHE, ref.form)
    return build_view(validate(form, ref.length, ref.buffers, resolve))
end

# A view gets its own copy of its node's parameters: the form is shared through `FORM_CACHE`
# with every later array of that form, so user code that modifies `parameters(view)` must not
# reach it.
view_parameters(f::Form) = isempty(f.parameters) ? Parameters() : deepcopy(f.parameters)

"""
    build_view(node::CheckedNode) -> AbstractVector

The view of a validated node (see [`open_array`](@ref)).
"""
build_view(c::CheckedNode) = build_view(c.form, c)

content_view(c::CheckedNode) = build_view(c.contents[1])

function build_view(f::NumpyForm, c::CheckedNode)
    data = c.buffers["data"]
    leaf = element_type(f) === Bool ? BoolVector(data) : data
    isempty(f.inner_shape) && return isempty(f.parameters) ? leaf : ParameterizedVector(leaf, view_parameters(f))
    # A plain NumPy array is a Julia array of its shape; with parameters to keep for the way
    # back, one RegularVector per inner dimension, innermost first, parameters outermost.
    isempty(f.parameters) && return numpy_rows(leaf, (c.length, f.inner_shape...))
    nested = leaf
    for d in length(f.inner_shape):-1:1
        outer_length = c.length * prod(f.inner_shape[1:d-1])
        params = d == 1 ? view_parameters(f) : Parameters()
        nested = RegularVector(nested, f.inner_shape[d], outer_length, params)
    end
    return nested
end

build_view(::EmptyForm, ::CheckedNode) = Any[]

function list_view(f::Form, content::AbstractArray, starts, stops)
    lists = ListVector(content, starts, stops, view_parameters(f))
    is_string = get(f.parameters, "__array__", nothing) == "string" && eltype(content) === UInt8
    return is_string ? StringVector(lists) : lists
end

function build_view(f::ListOffsetForm, c::CheckedNode)
    return list_view(f, content_view(c), offset_windows(c.buffers["offsets"], c.length)...)
end

# A ListOffsetArray's starts and stops: two `Vector`s over the mapped offsets, one item apart,
# rather than two `SubArray`s of one. Julia 1.5 keeps a struct with pointers inline in another
# only while each of its fields is under 128 bytes and starts within its first 256; a `SubArray`
# (40 bytes) makes a list of four-column records 136 bytes, so the columns of events made of such
# lists were boxed on the heap, and a loop over events read every list through that box
# (docs/performance.md, "Lists over windows"). Like the buffer itself, the windows do not keep
# the mapping alive: the request does.
function offset_windows(offsets::Vector{T}, n::Int) where {T}
    return unsafe_wrap(Array, pointer(offsets), n; own=false),
           unsafe_wrap(Array, pointer(offsets) + sizeof(T), n; own=false)
end

build_view(f::ListForm, c::CheckedNode) =
    list_view(f, content_view(c), c.buffers["starts"], c.buffers["stops"])

build_view(f::RegularForm, c::CheckedNode) =
    RegularVector(content_view(c), f.size, c.length, view_parameters(f))

function build_view(f::RecordForm, c::CheckedNode)
    views = AbstractArray[build_view(x) for x in c.contents]
    f.fields === nothing && return RecordVector(Tuple(views), c.length, view_parameters(f))
    names = Symbol.(f.fields)
    columns = length(views) > WIDE_RECORD_FIELDS ? WideColumns(names, views) : NamedTuple{Tuple(names)}(Tuple(views))
    return RecordVector(columns, c.length, view_parameters(f))
end

build_view(f::IndexedForm, c::CheckedNode) =
    IndexedVector(content_view(c), c.buffers["index"], view_parameters(f))

build_view(f::IndexedOptionForm, c::CheckedNode) =
    IndexedOptionVector(content_view(c), c.buffers["index"], view_parameters(f))

build_view(f::ByteMaskedForm, c::CheckedNode) =
    ByteMaskedVector(content_view(c), c.buffers["mask"], f.valid_when, view_parameters(f))

build_view(f::BitMaskedForm, c::CheckedNode) =
    BitMaskedVector(content_view(c), c.buffers["mask"], f.valid_when, f.lsb_order, c.length, view_parameters(f))

build_view(f::UnmaskedForm, c::CheckedNode) = UnmaskedVector(content_view(c), view_parameters(f))

build_view(f::UnionForm, c::CheckedNode) =
    UnionVector(c.buffers["tags"], c.buffers["index"], Tuple(build_view(x) for x in c.contents), view_parameters(f))
