# Writing a Julia result as Awkward buffers, straight into the block the caller allocates:
# plan the layout, measure every node (pass 1), allocate once, fill the buffers (pass 2).
# Every write into the block is checked against the node's measured size, through bounds-checked
# vectors or a check before a raw copy, and every node must end exactly full, so a source that
# changes between or during the passes (user code on another thread) raises an error instead of
# writing outside the block.

"""Alignment of every buffer inside the allocated block, in bytes."""
const BUFFER_ALIGNMENT = 64

"""
    is_placeable(x) -> Bool

Whether a Julia result becomes an Awkward Array (any `AbstractVector`, including the bridge's
views, and any `Matrix` or other `AbstractArray`) rather than a scalar value.
"""
is_placeable(x) = x isa AbstractArray && ndims(x) >= 1

"""
    place_array(x::AbstractVector, allocate) -> ArrayRef

Write `x` as Awkward buffers. `allocate(nbytes::Int) -> (segment::String, offset::Int,
ptr::Ptr{UInt8})` is called once with the total size (a positive multiple of 64) and must
return a writable block at a 64-byte aligned `offset`; buffers are laid out at 64-byte aligned
offsets inside it. If `place_array` throws after allocating, the caller frees the block.

Numbers and `Bool` become a `NumpyArray`; `DateTime`/`Date` a `datetime64[ms]`/`[D]`;
vectors of vectors a `ListOffsetArray` (int64 offsets); strings an Awkward string array;
`missing` an `IndexedOptionArray`; `NamedTuple`s and structs a `RecordArray` (a struct's named
after its type in `"__record__"`); tuples a tuple `RecordArray`; a `Matrix` (or any
`AbstractArray`) nested `RegularArray`s of its rows;
mixed element types a `UnionArray` (numbers of different types are promoted instead). A bridge
view from `open_array` comes back with its node classes' types and parameters unchanged, and a
`ByteMaskedArray`, `BitMaskedArray` or `UnmaskedArray` keeps its class, `valid_when` and
`lsb_order` (other list and index classes are written with int64 offsets and indexes).
Form keys are `node0`, `node1`, … in depth-first order. Anything else raises `ResultTypeError`.
"""
function place_array(x::AbstractVector, allocate)
    plan = plan_for_array(x)
    count_array!(plan, x)
    ref, nodes = lay_out!(plan, length(x), allocate)
    fill_array!(plan, x)
    for (p, key) in nodes
        p.cursor == p.length ||
            throw(ArgumentError("node $key was planned with $(p.length) elements but got $(p.cursor); was the result changed while it was written?"))
    end
    return ref
end

"""
    lay_out!(plan, length, allocate) -> (ArrayRef, nodes)

Allocate one block for a measured plan (`allocate` as for [`place_array`](@ref)) and attach
each node's buffers, vectors over the block, ready to fill; the `ArrayRef` names them, and
`nodes` lists each node with its form key.
"""
function lay_out!(plan::Plan, len::Int, allocate)
    nodes = Tuple{Plan,String}[]
    form = plan_form!(plan, nodes)
    layout, total = buffer_layout(nodes)
    segment, block_offset, base = allocate(total)
    block_offset % BUFFER_ALIGNMENT == 0 ||
        throw(ArgumentError("allocate returned offset $block_offset, not a multiple of $BUFFER_ALIGNMENT"))
    buffers = Dict{String,BufferRef}()
    for (p, key, role, T, count, offset) in layout
        attach!(p, role, unsafe_wrap(Array, Ptr{T}(base + offset), count; own=false))
        buffers["$key-$role"] = BufferRef(segment, block_offset + offset, count * sizeof(T))
    end
    return ArrayRef(form_json(form), len, buffers), nodes
end

"""
    located_ref(plan, length, locate) -> ArrayRef

The `ArrayRef` of a measured plan whose buffers were written elsewhere (a growing result):
`locate(i, T, count)` gives the `(segment, offset)` of its `i`th buffer, depth first, which
holds `count` values of type `T`.
"""
function located_ref(plan::Plan, len::Int, locate)
    nodes = Tuple{Plan,String}[]
    form = plan_form!(plan, nodes)
    layout, _ = buffer_layout(nodes)
    buffers = Dict{String,BufferRef}()
    for (i, (_, key, role, T, count, _)) in enumerate(layout)
        segment, offset = locate(i, T, count)
        buffers["$key-$role"] = BufferRef(segment, offset, count * sizeof(T))
    end
    return ArrayRef(form_json(form), len, buffers)
end

# A matrix or higher array is written as its rows, as NumPy holds it: `A[i, j]` is row i, column j.
function place_array(x::AbstractArray, allocate)
    ndims(x) >= 2 || throw(ResultTypeError("a 0-dimensional array has no Awkward Array equivalent; return x[]"))
    return place_array(regular_rows(x), allocate)
end

place_array(x, allocate) = throw(ResultTypeError("a Julia $(typeof(x)) is not an AbstractArray"))

# ---- pass 1: measure -------------------------------------------------------------------

list_items(v::AbstractArray) = regular_rows(v)
list_items(v::StringLike) = codeunits(string(v))
list_items(v) = layout_mismatch(v)

field_value(p::RecordPlan, r, i::Int) = p.fields === nothing ? r[i] : getproperty(r, p.fields[i])

regular_items(p::RegularPlan, v) =
    v isa AbstractArray && size(v, 1) == p.size ? regular_rows(v) : layout_mismatch(v)

# The columns of `xs` in the plan's field order when `xs` is a RecordVector (a selection of one
# included), or a collection of one concrete record type (NamedTuples, structs, tuples), so
# records are written column by column, each column with its own compiled loop; `nothing`
# otherwise.
record_columns_of(p::RecordPlan, xs) = record_columns_of(p, xs, eltype(xs))
record_columns_of(p::RecordPlan, xs::RecordVector) = columns_in_order(p, record_columns(xs))

function record_columns_of(p::RecordPlan, xs, T::Type)
    is_record_type_of(p, T) || return nothing
    return ntuple(i -> Sized{fieldtype(T, i)}(Base.Generator(FieldOf{i}(), xs), length(xs)), fieldcount(T))
end

# Records of views of one type (`collect(ev.Jet)`, the items of `[ev.Jet for ev in events]`),
# whichever views they come from: each field is read from its record's column.
function record_columns_of(p::RecordPlan, xs, ::Type{Record{C}}) where {C<:NamedTuple}
    isconcretetype(C) && all(F -> F <: AbstractVector, fieldtypes(C)) && collect(Symbol, fieldnames(C)) == p.fields ||
        return nothing
    return ntuple(i -> Sized{eltype(fieldtype(C, i))}(Base.Generator(FieldOf{i}(), xs), length(xs)), fieldcount(C))
end

# Whether `T` is one concrete record type (NamedTuple, struct, tuple) with the plan's fields in order.
function is_record_type_of(p::RecordPlan, T::Type)
    isconcretetype(T) && (T <: Union{Tuple,NamedTuple} || is_struct_record(T)) || return false
    return p.fields === nothing ? T <: Tuple && fieldcount(T) == length(p.contents) :
           !(T <: Tuple) && collect(Symbol, fieldnames(T)) == p.fields
end

"""`FieldOf{i}()(r)` is field `i` of `r`, a function whose field is known when it compiles."""
struct FieldOf{i} end
(::FieldOf{i})(r) where {i} = getfield(r, i)
(::FieldOf{i})(r::Record) where {i} = getfield(getfield(r, :columns), i)[getfield(r, :index)]

"""
    Sized{T}(iter, length)

An iterable of `length` values of type `T`: a column of records, or the items of every list,
written in one pass without a collection of its own.
"""
struct Sized{T,I}
    iter::I
    length::Int
end
Sized{T}(iter, length::Int) where {T} = Sized{T,typeof(iter)}(iter, length)
Base.length(s::Sized) = s.length
Base.eltype(::Type{<:Sized{T}}) where {T} = T
Base.iterate(s::Sized, state...) = iterate(s.iter, state...)

"""Lists of type `L`: a vector of them, or a record column of them (`Sized`)."""
const ListsOf{L} = Union{AbstractVector{L},Sized{L}}

# `(view, rows)` when `xs` is a `V` or a contiguous view into one, so a masked option is
# written from its view's mask and content; `nothing` otherwise.
rows_of(::Type{V}, xs) where {V} = nothing
rows_of(::Type{V}, xs::V) where {V} = (xs, Base.OneTo(length(xs)))
rows_of(::Type{V}, xs::SubArray{<:Any,1,<:V,<:Tuple{AbstractUnitRange}}) where {V} =
    (parent(xs), parentindices(xs)[1])

# Elements `rows` of a masked view's content, which may be longer than the view.
content_rows(v, rows::AbstractUnitRange) = regular_rows(select_rows(getfield(v, :content), UnitRange{Int}(rows)))

view_class(::ByteMaskedPlan) = ByteMaskedVector
view_class(::BitMaskedPlan) = BitMaskedVector
view_class(::UnmaskedPlan) = UnmaskedVector

# Whether element `i` of a view is present (not missing).
is_valid(v::ByteMaskedVector, i::Int) = (getfield(v, :mask)[i] != 0) == getfield(v, :valid_when)
is_valid(v::BitMaskedVector, i::Int) = mask_bit(getfield(v, :mask), i, getfield(v, :lsb_order)) == getfield(v, :valid_when)
is_valid(::UnmaskedVector, ::Int) = true


# What a masked option's content gets for element `v`: the value, or a placeholder if missing.
content_value(p::Union{ByteMaskedPlan,BitMaskedPlan}, v) = v === missing ? placeholder(p.content) : v
content_value(::UnmaskedPlan, v) = v === missing ? layout_mismatch(v) : v

function columns_in_order(p::RecordPlan, columns::Union{NamedTuple,Tuple,WideColumns})
    if p.fields === nothing
        return columns isa Tuple && length(columns) == length(p.contents) ? map(regular_rows, columns) : nothing
    end
    columns isa Tuple || all(f -> has_field(columns, f), p.fields) || return nothing
    return map(f -> regular_rows(column_at(columns, f)), Tuple(p.fields))
end

"""
    count_array!(plan, xs)

Measure pass: add the elements of `xs` (and everything inside them) to the plan's lengths.
"""
count_array!(p::Plan, xs) = count_each!(p, xs)
count_array!(p::NumpyPlan, xs) = (p.length += length(xs))
count_array!(p::ListPlan, xs) = count_lists!(p, p.content, xs)

# A list view is measured, and written, through its content: the items of all its lists are one
# selection of it (`flatten`), written as a whole (numbers by memcpy, records column by column)
# instead of list by list and item by item. Lists whose stops come before their starts (a view
# built by hand) go item by item, where they are empty.
function count_array!(p::ListPlan, xs::ListVector)
    items = list_view_items(xs)
    items === nothing && return count_lists!(p, p.content, xs)
    p.length += length(xs)
    count_array!(p.content, items)
end

count_array!(p::ListPlan, xs::StringVector) = count_array!(p, xs.lists)

function list_view_items(xs::ListVector)
    starts, stops = getfield(xs, :starts), getfield(xs, :stops)
    axes(stops) == axes(starts) && holds_for_each(>=, stops, starts) || return nothing
    return regular_rows(flatten(xs))   # a matrix's items are its rows, as `list_items` has them
end

count_each!(p::Plan, xs) = foreach(v -> count_value!(p, v), xs)

function count_lists!(p::ListPlan, content::Plan, xs)   # `content` typed: a function barrier
    for v in xs
        p.length += 1
        count_array!(content, list_items(v))
    end
end

# Strings and vectors of numbers, the commonest lists, are each one block of memory: measured by
# their headers alone and copied in one loop (`fill_dense_lists!`).
count_lists!(p::ListPlan, content::NumpyPlan{T}, xs::ListsOf{Vector{T}}) where {T} = count_dense_lists!(p, content, xs)
count_lists!(p::ListPlan, content::NumpyPlan{UInt8}, xs::ListsOf{String}) = count_dense_lists!(p, content, xs)

function count_dense_lists!(p::ListPlan, content::NumpyPlan, xs::ListsOf)
    total = 0
    for v in xs
        total += dense_length(v)
    end
    p.length += length(xs)
    content.length += total
end

# Records in lists are measured, and written, as one column pass over every list's items.
function count_lists!(p::ListPlan, content::RecordPlan, xs)
    total = 0
    for v in xs
        p.length += 1
        total += length(list_items(v))
    end
    count_array!(content, all_items(xs, total))
end

# The items of every list of `xs`, in order: `total` of them.
all_items(xs::AbstractVector, total::Int) = Sized{eltype(list_items_type(eltype(xs)))}(AllItems(xs), total)
all_items(xs, total::Int) = Sized{Any}(Iterators.flatten(Base.Generator(list_items, xs)), total)
list_items_type(T::Type) = T <: AbstractVector ? T : Any

"""The items of every list of a vector of lists, iterated list by list."""
struct AllItems{X<:AbstractVector}
    lists::X
end

function Base.iterate(a::AllItems, (i, j)=(1, 1))
    lists = a.lists
    while i <= length(lists)
        items = list_items(lists[i])
        j <= length(items) && return items[j], (i, j + 1)
        i, j = i + 1, 1
    end
    return nothing
end

function count_array!(p::RecordPlan, xs)
    columns = record_columns_of(p, xs)
    columns === nothing && return count_each!(p, xs)
    p.length += length(xs)
    foreach(count_array!, p.contents, columns)
end

"""
    count_value!(plan, v)

Measure pass: add one element `v` to the plan's lengths.
"""
count_value!(p::NumpyPlan, v) = (p.length += 1)
count_value!(p::ListPlan, v) = (p.length += 1; count_array!(p.content, list_items(v)))
count_value!(p::RegularPlan, v) = (p.length += 1; count_array!(p.content, regular_items(p, v)))
count_value!(p::EmptyPlan, v) = layout_mismatch(v)

function count_value!(p::RecordPlan, r)
    p.length += 1
    for (i, c) in enumerate(p.contents)
        count_value!(c, field_value(p, r, i))
    end
end

function count_value!(p::IndexedPlan, v)
    p.length += 1
    haskey(p.positions, v) && return
    p.positions[v] = length(p.positions)
    count_value!(p.content, v)
end

function count_value!(p::IndexedOptionPlan, v)
    p.length += 1
    v === missing || count_value!(p.content, v)
end

count_array!(p::IndexedOptionPlan, xs) = count_options!(p, p.content, xs)

function count_options!(p::IndexedOptionPlan, content::Plan, xs)   # `content` typed: a function barrier
    for v in xs
        p.length += 1
        v === missing || count_value!(content, v)
    end
end

count_value!(p::MaskPlan, v) = (p.length += 1; count_value!(p.content, content_value(p, v)))

# A view of the plan's class is measured through its content, which is written whole.
function count_array!(p::MaskPlan, xs)
    found = rows_of(view_class(p), xs)
    found === nothing && return count_each!(p, xs)
    v, rows = found
    p.length += length(rows)
    count_array!(p.content, content_rows(v, rows))
end

function count_value!(p::UnionPlan, v)
    p.length += 1
    count_value!(p.contents[select_content(p, v)], v)
end

# ---- forms and buffer layout -------------------------------------------------------------

# Appends the node and returns its form key, so keys come out depth-first (parents first).
function next_key!(nodes::Vector{Tuple{Plan,String}}, p::Plan)
    key = "node$(length(nodes))"
    push!(nodes, (p, key))
    return key
end

"""
    plan_form!(plan, nodes) -> Form

The form of a measured plan; records each node with its form key in `nodes`.
"""
plan_form!(p::NumpyPlan{T}, nodes) where {T} =
    NumpyForm(TYPE_PRIMITIVES[T], Int[], p.parameters, next_key!(nodes, p))
plan_form!(p::EmptyPlan, nodes) = EmptyForm(Parameters(), next_key!(nodes, p))

function plan_form!(p::ListPlan, nodes)
    key = next_key!(nodes, p)
    return ListOffsetForm("i64", plan_form!(p.content, nodes), p.parameters, key)
end

function plan_form!(p::RegularPlan, nodes)
    key = next_key!(nodes, p)
    return RegularForm(p.size, plan_form!(p.content, nodes), p.parameters, key)
end

function plan_form!(p::RecordPlan, nodes)
    key = next_key!(nodes, p)
    fields = p.fields === nothing ? nothing : String.(p.fields)
    return RecordForm(fields, Form[plan_form!(c, nodes) for c in p.contents], p.parameters, key)
end

function plan_form!(p::IndexedOptionPlan, nodes)
    key = next_key!(nodes, p)
    return IndexedOptionForm("i64", plan_form!(p.content, nodes), p.parameters, key)
end

function plan_form!(p::ByteMaskedPlan, nodes)
    key = next_key!(nodes, p)
    return ByteMaskedForm("i8", p.valid_when, plan_form!(p.content, nodes), p.parameters, key)
end

function plan_form!(p::BitMaskedPlan, nodes)
    key = next_key!(nodes, p)
    return BitMaskedForm("u8", p.valid_when, p.lsb_order, plan_form!(p.content, nodes), p.parameters, key)
end

function plan_form!(p::UnmaskedPlan, nodes)
    key = next_key!(nodes, p)
    return UnmaskedForm(plan_form!(p.content, nodes), p.parameters, key)
end

function plan_form!(p::IndexedPlan, nodes)
    key = next_key!(nodes, p)
    return IndexedForm("i64", plan_form!(p.content, nodes), p.parameters, key)
end

function plan_form!(p::UnionPlan, nodes)
    key = next_key!(nodes, p)
    return UnionForm("i8", "i64", Form[plan_form!(c, nodes) for c in p.contents], p.parameters, key)
end

"""
    buffer_specs(plan) -> tuple of (role, item type, item count)

The buffers a measured plan node writes.
"""
buffer_specs(p::NumpyPlan{T}) where {T} = (("data", T, p.length),)
buffer_specs(p::ListPlan) = (("offsets", Int64, p.length + 1),)
buffer_specs(p::Union{IndexedOptionPlan,IndexedPlan}) = (("index", Int64, p.length),)
buffer_specs(p::ByteMaskedPlan) = (("mask", Int8, p.length),)
buffer_specs(p::BitMaskedPlan) = (("mask", UInt8, cld(p.length, 8)),)
buffer_specs(p::UnionPlan) = (("tags", Int8, p.length), ("index", Int64, p.length))
buffer_specs(::Plan) = ()

# Every buffer at a 64-byte aligned offset; the total is a positive multiple of 64.
function buffer_layout(nodes::Vector{Tuple{Plan,String}})
    layout = Tuple{Plan,String,String,DataType,Int,Int}[]
    offset = 0
    for (p, key) in nodes, (role, T, count) in buffer_specs(p)
        push!(layout, (p, key, role, T, count, offset))
        # checked: a length near typemax(Int) (a builder's) must fail, not wrap to a small block
        nbytes = Base.Checked.checked_mul(count, sizeof(T))
        offset = Base.Checked.checked_add(offset, round_up(nbytes, BUFFER_ALIGNMENT))
    end
    return layout, max(offset, BUFFER_ALIGNMENT)
end

attach!(p::NumpyPlan, ::String, buffer) = (p.data = buffer)
attach!(p::ListPlan, ::String, buffer) = (p.offsets = buffer; buffer[1] = 0)
attach!(p::Union{IndexedOptionPlan,IndexedPlan}, ::String, buffer) = (p.index = buffer)
attach!(p::ByteMaskedPlan, ::String, buffer) = (p.mask = buffer)
# Bits are set one at a time, so the block (which may hold old data) is cleared first; this also
# zeroes the unused bits of the last byte.
attach!(p::BitMaskedPlan, ::String, buffer) = (p.mask = fill!(buffer, 0x00))
attach!(p::UnionPlan, role::String, buffer) = role == "tags" ? (p.tags = buffer) : (p.index = buffer)

# ---- pass 2: fill ------------------------------------------------------------------------

"""
    fill_array!(plan, xs)

Fill pass: write the elements of `xs` at the plan's cursors.
"""
fill_array!(p::Plan, xs) = fill_each!(p, xs)
fill_array!(p::ListPlan, xs) = fill_lists!(p, p.content, xs)

function fill_array!(p::ListPlan, xs::ListVector)
    items = list_view_items(xs)
    items === nothing && return fill_lists!(p, p.content, xs)
    starts, stops, offsets, cursor = getfield(xs, :starts), getfield(xs, :stops), p.offsets, p.cursor
    n = length(starts)
    checkbounds(offsets, cursor+1:cursor+n+1)
    checkbounds(starts, 1:n)
    checkbounds(stops, 1:n)
    offset = offsets[cursor+1]
    for i in 1:n
        @inbounds offset += Int(stops[i]) - Int(starts[i])   # all three checked above
        @inbounds offsets[cursor+i+1] = offset
    end
    p.cursor += n
    fill_array!(p.content, items)
end

fill_array!(p::ListPlan, xs::StringVector) = fill_array!(p, xs.lists)

# Fewer items than this are copied by a loop: for a list's few items it costs less than a call
# to memmove.
const MEMMOVE_MIN_ITEMS = 16

function fill_array!(p::NumpyPlan, xs::AbstractVector)
    n = length(xs)
    n < MEMMOVE_MIN_ITEMS ? copy_items!(p.data, p.cursor, xs) : copyto!(p.data, p.cursor + 1, xs, 1, n)
    p.cursor += n
end

# The number of items of a list that is one block of memory: a `String`'s bytes, a `Vector`'s
# elements.
dense_length(v::String) = sizeof(v)
dense_length(v::Vector) = length(v)

# `n` items from `source` to `target`
function copy_dense!(target::Ptr{T}, source::Ptr{T}, n::Int) where {T}
    if n < MEMMOVE_MIN_ITEMS
        for k in 1:n
            unsafe_store!(target, unsafe_load(source, k), k)
        end
    else
        unsafe_copyto!(target, source, n)
    end
end

function copy_items!(data::AbstractVector, cursor::Int, xs::AbstractVector)
    checkbounds(data, cursor+1:cursor+length(xs))
    for (k, v) in enumerate(xs)
        @inbounds data[cursor+k] = v    # checked just above; `xs` is read with its own checks
    end
end

function fill_array!(p::NumpyPlan, xs)
    data, cursor = p.data, p.cursor
    for v in xs
        cursor += 1
        data[cursor] = v
    end
    p.cursor = cursor
end

fill_each!(p::Plan, xs) = foreach(v -> fill_value!(p, v), xs)

function fill_lists!(p::ListPlan, content::Plan, xs)   # `content` typed: a function barrier
    for v in xs
        items = list_items(v)
        p.cursor += 1
        p.offsets[p.cursor+1] = p.offsets[p.cursor] + length(items)
        fill_array!(content, items)
    end
end

fill_lists!(p::ListPlan, content::NumpyPlan{T}, xs::ListsOf{Vector{T}}) where {T} = fill_dense_lists!(p, content, xs)
fill_lists!(p::ListPlan, content::NumpyPlan{UInt8}, xs::ListsOf{String}) = fill_dense_lists!(p, content, xs)

function fill_dense_lists!(p::ListPlan, content::NumpyPlan{T}, xs::ListsOf) where {T}
    content.cursor = fill_offsets!(DenseItems(content.data), p, xs, content.cursor)
    return nothing
end

"""Writes a dense list's items into `data` with one copy."""
struct DenseItems{T}
    data::Vector{T}
end

@inline function write_list!(w::DenseItems{T}, v, at::Int) where {T}
    data, n = w.data, dense_length(v)
    at + n <= length(data) || throw(BoundsError(data, at+1:at+n))   # a list grown since measured
    GC.@preserve v data copy_dense!(pointer(data, at + 1), Ptr{T}(pointer(v)), n)
    return n
end

"""
    fill_offsets!(items, p::ListPlan, xs, at) -> Int

Fill pass of the lists `xs` one at a time, as many as were measured: `write_list!(items, v, at)`
writes list `v`'s items into the content from position `at` on and returns how many it wrote;
each list's end goes into the offsets. Returns the content position after the last list. A list
more than measured (`xs` grown by another thread meanwhile) raises instead of writing past the
offsets.
"""
function fill_offsets!(items, p::ListPlan, xs, at::Int)
    offsets, cursor, n = p.offsets, p.cursor, length(xs)
    checkbounds(offsets, cursor+1:cursor+n+1)
    offset, k = offsets[cursor+1], 0
    for v in xs
        k < n || throw(BoundsError(xs, k + 1))
        k += 1
        added = write_list!(items, v, at)
        at += added
        offset += added
        @inbounds offsets[cursor+k+1] = offset
    end
    p.cursor = cursor + k
    return at
end

function fill_lists!(p::ListPlan, content::RecordPlan, xs)
    columns = row_columns(content, xs)
    columns === nothing || return fill_record_rows!(p, content, columns, xs)
    first = p.offsets[p.cursor+1]
    for v in xs
        p.cursor += 1
        p.offsets[p.cursor+1] = p.offsets[p.cursor] + length(list_items(v))
    end
    fill_array!(content, all_items(xs, Int(p.offsets[p.cursor+1] - first)))
end

# Lists that are each a `Vector` of one record type whose fields are all numbers are written row
# by row, each field into its column, in one pass over the lists; other lists of records take one
# pass per column over all their items (`all_items`), which reads every list's header again.
row_columns(::RecordPlan, xs) = nothing

# The columns go with the record plan's cursor, which only a fill of whole records moves; a record
# with no fields has no column to write (nor to take the number of rows from).
function row_columns(p::RecordPlan, xs::ListsOf{Vector{R}}) where {R}
    is_record_type_of(p, R) && fieldcount(R) > 0 &&
        all(i -> p.contents[i] isa NumpyPlan{fieldtype(R, i)} && p.contents[i].cursor == p.cursor, 1:fieldcount(R)) ||
        return nothing
    return ntuple(i -> (p.contents[i].data::Vector{fieldtype(R, i)}, FieldOf{i}()), fieldcount(R))
end

function fill_record_rows!(p::ListPlan, content::RecordPlan, columns::Tuple, xs::ListsOf)
    rows = minimum(((data, _),) -> length(data), columns)
    at = fill_offsets!(RecordRows(columns, rows), p, xs, content.cursor)
    for c in content.contents
        c.cursor = at
    end
    content.cursor = at
    return nothing
end

"""Writes a list of records row by row into `columns` (column, field) pairs of `rows` rows."""
struct RecordRows{C<:Tuple}
    columns::C
    rows::Int
end

@inline function write_list!(w::RecordRows, v, at::Int)
    n = length(v)
    at + n <= w.rows || throw(BoundsError(w.columns[1][1], at+1:at+n))   # a list grown since measured
    for j in 1:n   # read with checks: a list another thread shrinks now raises
        write_row!(w.columns, at + j, v[j])
    end
    return n
end

# Each field of `r` into its column at `row`: `columns` pairs each column with its field
# (`FieldOf`), so every write compiles to a store.
@inline write_row!(::Tuple{}, ::Int, r) = nothing
@inline function write_row!(columns::Tuple, row::Int, r)
    data, field = first(columns)
    @inbounds data[row] = field(r)
    write_row!(Base.tail(columns), row, r)
end

function fill_array!(p::RecordPlan, xs)
    columns = record_columns_of(p, xs)
    columns === nothing && return fill_each!(p, xs)
    p.cursor += length(xs)
    foreach(fill_array!, p.contents, columns)
end

"""
    fill_value!(plan, v)

Fill pass: write one element `v` at the plan's cursor.
"""
function fill_value!(p::NumpyPlan, v)
    p.cursor += 1
    p.data[p.cursor] = v
end

fill_value!(p::ListPlan, v) = fill_lists!(p, p.content, (v,))
fill_value!(p::RegularPlan, v) = (p.cursor += 1; fill_array!(p.content, regular_items(p, v)))
fill_value!(p::EmptyPlan, v) = layout_mismatch(v)

function fill_value!(p::RecordPlan, r)
    p.cursor += 1
    for (i, c) in enumerate(p.contents)
        fill_value!(c, field_value(p, r, i))
    end
end

fill_value!(p::IndexedOptionPlan, v) = fill_options!(p, p.content, (v,))
fill_array!(p::IndexedOptionPlan, xs) = fill_options!(p, p.content, xs)

function fill_options!(p::IndexedOptionPlan, content::Plan, xs)   # `content` typed: a function barrier
    for v in xs
        p.cursor += 1
        p.index[p.cursor] = v === missing ? -1 : content.cursor
        v === missing || fill_value!(content, v)
    end
end

# Options of numbers, the commonest, with both cursors in local variables: through the plans'
# fields every element was a load and a store more (docs/performance.md, "Results from views").
function fill_options!(p::IndexedOptionPlan, content::NumpyPlan, xs::AbstractVector)
    index, data, at, next = p.index, content.data, p.cursor, content.cursor
    n = length(xs)
    checkbounds(index, at+1:at+n)
    for k in 1:n
        v = xs[k]   # read with its check: a vector another thread shrinks raises
        if v === missing
            @inbounds index[at+k] = -1
        else
            @inbounds index[at+k] = next
            next += 1
            data[next] = v   # checked: more present values than measured raise
        end
    end
    p.cursor, content.cursor = at + n, next
    return nothing
end

function fill_value!(p::MaskPlan, v)
    p.cursor += 1
    set_valid!(p, v !== missing)
    fill_value!(p.content, content_value(p, v))
end

function fill_array!(p::MaskPlan, xs)
    found = rows_of(view_class(p), xs)
    found === nothing && return fill_each!(p, xs)
    v, rows = found
    for i in rows
        p.cursor += 1
        set_valid!(p, is_valid(v, i))
    end
    fill_array!(p.content, content_rows(v, rows))
end

# Marks the element at the cursor present or missing in the plan's own mask convention.
set_valid!(p::ByteMaskedPlan, valid::Bool) = (p.mask[p.cursor] = valid == p.valid_when)
set_valid!(::UnmaskedPlan, valid::Bool) = valid || layout_mismatch(missing)

function set_valid!(p::BitMaskedPlan, valid::Bool)
    valid == p.valid_when || return    # the mask starts cleared
    byte = (p.cursor - 1) >> 3 + 1
    p.mask[byte] |= 0x01 << bit_shift(p.cursor, p.lsb_order)
end

function fill_value!(p::IndexedPlan, v)
    position = p.positions[v]
    p.cursor += 1
    p.index[p.cursor] = position
    # Positions were handed out in order of first appearance, and this pass sees the values in
    # the same order: a value is new exactly when its position is the content's next slot.
    position == p.content.cursor && fill_value!(p.content, v)
end

function fill_value!(p::UnionPlan, v)
    k = select_content(p, v)
    p.cursor += 1
    p.tags[p.cursor] = k - 1
    p.index[p.cursor] = p.contents[k].cursor
    fill_value!(p.contents[k], v)
end
