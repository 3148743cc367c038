# Everything about an incoming array is checked here, once, before any view exists: the buffers
# the form needs (and no others), their sizes and alignment, and every position stored in an
# index buffer. Each index buffer is read once, so validation is linear in the index buffers.

"""
    CheckedNode(form, length, buffers, contents)

A form node that passed validation: its length, its buffers (role => vector of exactly the
items the node reads), and its checked children in form order.
"""
struct CheckedNode
    form::Form
    length::Int
    buffers::Dict{String,Any}
    contents::Vector{CheckedNode}
end

"""
    validate(form, length, buffers::Dict{String,BufferRef}, resolve) -> CheckedNode

Check an array against its form and return the checked tree `open_array` builds views from.
`resolve(ref::BufferRef)::Ptr{UInt8}` maps a buffer (the caller checks the segment and that
`offset + nbytes` lies inside it). Raises `InvalidArray` naming the node and buffer key.
"""
function validate(form::Form, len::Int, refs::Dict{String,BufferRef}, resolve)
    len >= 0 || throw(InvalidArray("array length $len is negative"))
    return check_node(form, len, resolve_buffers(form, refs, resolve))
end

node_label(f::Form) =
    form_key(f) === nothing ? class_name(typeof(f)) : "$(form_key(f)) ($(class_name(typeof(f))))"

node_error(f::Form, msg::AbstractString) = throw(InvalidArray("$(node_label(f)): $msg"))

buffer_key(f::Form, role::String) = "$(form_key(f))-$role"

buffer_error(f::Form, role::String, msg::AbstractString) =
    throw(InvalidArray("$(node_label(f)) buffer $(buffer_key(f, role)): $msg"))

"""
    buffer_eltype(form, role) -> DataType

The item type of a node's buffer: the index type named by the form field of the same name as
the role (`offsets`, `index`, `tags`, …), or the storage of a `NumpyArray`'s primitive (a
`bool` is stored, and read, as `UInt8`).
"""
buffer_eltype(f::NumpyForm, ::String) = element_type(f) === Bool ? UInt8 : element_type(f)
buffer_eltype(f::Form, role::String) = INDEX_TYPES[getfield(f, Symbol(role))]

# Maps every buffer the form needs and checks the buffer list, sizes and alignment.
function resolve_buffers(root::Form, refs::Dict{String,BufferRef}, resolve)
    mapped = Dict{String,Tuple{Ptr{UInt8},Int}}()
    stack = Form[root]
    while !isempty(stack)
        f = pop!(stack)
        append!(stack, form_contents(f))
        roles = buffer_roles(f)
        isempty(roles) && continue
        form_key(f) === nothing && node_error(f, "needs buffers but has no form_key")
        for role in roles
            key = buffer_key(f, role)
            haskey(refs, key) || buffer_error(f, role, "missing")
            mapped[key] = map_buffer(f, role, refs[key], resolve)
        end
    end
    for key in keys(refs)
        haskey(mapped, key) || throw(InvalidArray("buffer $key is not part of the form"))
    end
    return mapped
end

function map_buffer(f::Form, role::String, ref::BufferRef, resolve)
    itemsize = sizeof(buffer_eltype(f, role))
    ref.nbytes >= 0 || buffer_error(f, role, "nbytes $(ref.nbytes) is negative")
    ref.offset >= 0 || buffer_error(f, role, "offset $(ref.offset) is negative")
    ref.nbytes % itemsize == 0 ||
        buffer_error(f, role, "nbytes $(ref.nbytes) is not a multiple of the item size $itemsize")
    ref.offset % itemsize == 0 ||
        buffer_error(f, role, "offset $(ref.offset) is not a multiple of the item size $itemsize")
    # the resolver checks the segment and the byte range; its errors get the node and buffer key
    ptr = try
        resolve(ref)::Ptr{UInt8}
    catch err
        err isa InvalidArray ? buffer_error(f, role, err.msg) : rethrow()
    end
    # Julia may compile loads that assume its own alignment of the element type.
    alignment = Base.datatype_alignment(buffer_eltype(f, role))
    UInt(ptr) % alignment == 0 || buffer_error(f, role, "mapped address is not aligned to $alignment bytes")
    return (ptr, ref.nbytes)
end

# Exactly `count` items of a node's buffer, after checking the buffer holds that many.
function typed_buffer(f::Form, role::String, count::Int, mapped)
    T = buffer_eltype(f, role)
    ptr, nbytes = mapped[buffer_key(f, role)]
    available = nbytes ÷ sizeof(T)
    count <= available ||
        buffer_error(f, role, "holds $available items but the array needs $count")
    return unsafe_wrap(Array, Ptr{T}(ptr), count; own=false)
end

function checked_product(f::Form, a::Int, b::Int)
    product, overflow = Base.Checked.mul_with_overflow(a, b)
    overflow && node_error(f, "length $a × $b overflows")
    return product
end

function checked_successor(f::Form, a::Int)
    a < typemax(Int) || node_error(f, "length $a + 1 overflows")
    return a + 1
end

checked(f::Form, len::Int, buffers::Dict{String,Any}, contents::CheckedNode...) =
    CheckedNode(f, len, buffers, collect(CheckedNode, contents))

"""
    check_node(form, length, mapped) -> CheckedNode

Check one node of the given length and, recursively, its children.
"""
function check_node(f::NumpyForm, len::Int, mapped)
    items = len
    for dim in f.inner_shape
        items = checked_product(f, items, dim)
    end
    return checked(f, len, Dict{String,Any}("data" => typed_buffer(f, "data", items, mapped)))
end

function check_node(f::EmptyForm, len::Int, mapped)
    len == 0 || node_error(f, "length is $len but an EmptyArray has no elements")
    return checked(f, len, Dict{String,Any}())
end

function check_node(f::ListOffsetForm, len::Int, mapped)
    offsets = typed_buffer(f, "offsets", checked_successor(f, len), mapped)
    content = check_node(f.content, offsets_content_length(f, offsets), mapped)
    return checked(f, len, Dict{String,Any}("offsets" => offsets), content)
end

# The loops over index buffers are separate functions so they compile for the buffer's type.
function offsets_content_length(f::ListOffsetForm, offsets::Vector)
    offsets[1] >= 0 || buffer_error(f, "offsets", "offset $(offsets[1]) at position 0 is negative")
    # Branch-free, so it vectorizes: reading a large array's offsets is then bound by memory
    # bandwidth, where stopping at the first decrease is not (docs/performance.md).
    decreasing = false
    @inbounds @simd for i in 2:length(offsets)
        decreasing |= offsets[i] < offsets[i-1]
    end
    if decreasing
        i = findfirst(i -> offsets[i] < offsets[i-1], 2:length(offsets)) + 1
        buffer_error(f, "offsets", "offsets decrease at position $(i - 1)")
    end
    return Int(offsets[end])
end

function check_node(f::ListForm, len::Int, mapped)
    starts = typed_buffer(f, "starts", len, mapped)
    stops = typed_buffer(f, "stops", len, mapped)
    content = check_node(f.content, starts_stops_content_length(f, starts, stops), mapped)
    return checked(f, len, Dict{String,Any}("starts" => starts, "stops" => stops), content)
end

function starts_stops_content_length(f::ListForm, starts::Vector, stops::Vector)
    content_length = 0
    for i in eachindex(starts)
        start, stop = starts[i], stops[i]
        start == stop && continue    # an empty list points nowhere, as in awkward
        start < 0 && buffer_error(f, "starts", "start $start at position $(i - 1) is negative")
        stop < start && buffer_error(f, "stops", "stop $stop at position $(i - 1) is below its start $start")
        content_length = max(content_length, Int(stop))
    end
    return content_length
end

check_node(f::RegularForm, len::Int, mapped) =
    checked(f, len, Dict{String,Any}(), check_node(f.content, checked_product(f, len, f.size), mapped))

check_node(f::RecordForm, len::Int, mapped) =
    checked(f, len, Dict{String,Any}(), (check_node(c, len, mapped) for c in f.contents)...)

# The content length an index buffer implies: one past its largest entry. Negative entries
# are missing values where `missing_allowed`, and errors elsewhere.
function indexed_length(f::Form, index::Vector, missing_allowed::Bool)
    largest = -1
    for i in eachindex(index)
        j = Int(index[i])
        j < 0 && !missing_allowed &&
            buffer_error(f, "index", "index $j at position $(i - 1) is negative")
        largest = max(largest, j)
    end
    return checked_successor(f, largest)
end

function check_node(f::Union{IndexedForm,IndexedOptionForm}, len::Int, mapped)
    index = typed_buffer(f, "index", len, mapped)
    content = check_node(f.content, indexed_length(f, index, f isa IndexedOptionForm), mapped)
    return checked(f, len, Dict{String,Any}("index" => index), content)
end

function check_node(f::ByteMaskedForm, len::Int, mapped)
    mask = typed_buffer(f, "mask", len, mapped)
    return checked(f, len, Dict{String,Any}("mask" => mask), check_node(f.content, len, mapped))
end

function check_node(f::BitMaskedForm, len::Int, mapped)
    mask = typed_buffer(f, "mask", cld(len, 8), mapped)
    return checked(f, len, Dict{String,Any}("mask" => mask), check_node(f.content, len, mapped))
end

check_node(f::UnmaskedForm, len::Int, mapped) =
    checked(f, len, Dict{String,Any}(), check_node(f.content, len, mapped))

function check_node(f::UnionForm, len::Int, mapped)
    tags = typed_buffer(f, "tags", len, mapped)
    index = typed_buffer(f, "index", len, mapped)
    lengths = union_content_lengths(f, tags, index)
    contents = (check_node(c, lengths[k], mapped) for (k, c) in enumerate(f.contents))
    return checked(f, len, Dict{String,Any}("tags" => tags, "index" => index), contents...)
end

function union_content_lengths(f::UnionForm, tags::Vector{Int8}, index::Vector)
    ncontents = length(f.contents)
    largest = fill(-1, ncontents)
    for i in eachindex(tags)
        tag = Int(tags[i])
        0 <= tag < ncontents ||
            buffer_error(f, "tags", "tag $tag at position $(i - 1) is not below the $ncontents contents")
        j = Int(index[i])
        j < 0 && buffer_error(f, "index", "index $j at position $(i - 1) is negative")
        largest[tag+1] = max(largest[tag+1], j)
    end
    return [checked_successor(f, j) for j in largest]
end
