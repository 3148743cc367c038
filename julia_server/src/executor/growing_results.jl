# Results a kernel grows with `push!`, straight into the client's shared memory, when it does not
# know their sizes in advance (for that, `shared_lists` and friends need a count first). Each
# buffer of the result is a region of one sparse chunk, `span` bytes from the next, so a buffer
# grows in place and nothing it holds ever moves or is copied: the pages are committed as the
# buffer fills (`commit_range`, approved first by the server when the client has a quota), and
# returned, the result reaches Python as it is. In the spirit of awkward's LayoutBuilder and
# AwkwardArray.jl's `push!`/`end_list!`.

# A buffer below this many bytes grows by doubling, from `FIRST_COMMIT`; beyond, by a
# sixteenth, so that a 1 GB result holds at most 1/16 more than it needs while it grows (and
# exactly its pages once returned), while a small one takes few steps.
const DOUBLING_UP_TO = 16 << 20
const FIRST_COMMIT = 64 << 10

"""
    GrowingBlock

The memory under one growing result in a call: its sparse chunk, where it is mapped, the
distance between buffers, its lease, whether the server must approve each growth (the client
has a quota), the bytes committed to each buffer, and the buffers themselves
(`GrowingVector`s), which it empties when the call ends.
"""
mutable struct GrowingBlock
    scope::Scope
    segment::String
    ptr::Ptr{UInt8}
    span::Int
    lease::Int
    quota::Bool
    committed::Vector{Int}
    buffers::Vector{Any}
    open::Bool
end

"""
    GrowingVector{T} <: AbstractVector{T}

A vector of numbers that grows with `push!` and `append!` (`growing_array`), in the client's
shared memory during a call, in Julia's memory elsewhere.
"""
mutable struct GrowingVector{T} <: AbstractVector{T}
    data::Vector{T}      # over the committed pages: `length(data)` is the capacity
    length::Int
    block::Union{Nothing,GrowingBlock}
    index::Int           # which buffer of `block` (from 0)
end

Base.size(v::GrowingVector) = (check_in_call(v.block); (v.length,))

# A builder's memory is the client's once its call has ended: reading or growing it then is an
# error, never a look at a later result's memory.
check_in_call(block) = (block === nothing || block.open) ||
    throw(ArgumentError("this growing result belongs to a call that has ended; its memory is the client's now"))
Base.IndexStyle(::Type{<:GrowingVector}) = IndexLinear()
Base.@propagate_inbounds function Base.getindex(v::GrowingVector, i::Int)
    @boundscheck checkbounds(v, i)
    return @inbounds v.data[i]
end
Base.@propagate_inbounds function Base.setindex!(v::GrowingVector, x, i::Int)
    @boundscheck checkbounds(v, i)
    @inbounds v.data[i] = x
    return v
end

@inline function Base.push!(v::GrowingVector, x)
    n = v.length + 1
    n > length(v.data) && grow!(v, n)
    @inbounds v.data[n] = x
    v.length = n
    return v
end

# Room for at least `n` values: Julia memory grows as a `Vector` does; shared memory commits more
# pages of the buffer's region, which stays where it is.
@noinline function grow!(v::GrowingVector{T}, n::Int) where {T}
    block = v.block
    if block === nothing
        resize!(v.data, max(n, 2 * length(v.data), 16))
        return nothing
    end
    check_in_call(block)
    old = block.committed[v.index+1]
    wanted = max(n * sizeof(T), FIRST_COMMIT, old < DOUBLING_UP_TO ? 2 * old : old + old ÷ 16)
    nbytes = min(round_up(wanted, PAGE_SIZE), block.span)
    nbytes >= n * sizeof(T) ||
        throw(SharedMemoryFull("a buffer of this growing result holds at most $(format_bytes(block.span)) (the " *
                               "client's quota, /dev/shm, or 128 GiB shared by its buffers); this one needs " *
                               "$(format_bytes(n * sizeof(T))): count first and use shared_lists for more"))
    commit_buffer!(block, v.index, nbytes)
    v.data = unsafe_wrap(Array, Ptr{T}(block.ptr + v.index * block.span), nbytes ÷ sizeof(T); own = false)
    return nothing
end

# Buffer `index` holds `nbytes` bytes from now on: its pages are reserved (growing), once the
# server counted them against the client's quota if it has one, or given back (trimming). A
# client without a quota has nothing to approve, so its growth costs no round trip; the server
# learns the final size when the result is returned (`growing_ref`).
function commit_buffer!(block::GrowingBlock, index::Int, nbytes::Int)
    old = block.committed[index+1]
    start = index * block.span
    if nbytes > old
        total = sum(block.committed)
        block.quota && commit!(block.scope, block.lease, total - old + nbytes)
        try
            commit_range(block.segment, start + old, nbytes - old)
        catch
            # the server counted pages that were not reserved (/dev/shm is full): take them back
            block.quota && commit!(block.scope, block.lease, total)
            rethrow()
        end
    elseif nbytes < old
        decommit_range(block.segment, start + nbytes, old - nbytes)
    end
    block.committed[index+1] = nbytes
    return nothing
end

# A buffer of the result `block` (or of Julia memory, with `nothing`), empty; in a reused chunk,
# over the pages the buffer of that place kept.
function growing_vector(::Type{T}, block::Union{Nothing,GrowingBlock}) where {T}
    block === nothing && return GrowingVector{T}(T[], 0, nothing, 0)
    index = length(block.buffers)
    index < length(block.committed) || push!(block.committed, 0)
    data = unsafe_wrap(Array, Ptr{T}(block.ptr + index * block.span), block.committed[index+1] ÷ sizeof(T); own = false)
    v = GrowingVector{T}(data, 0, block, index)
    push!(block.buffers, v)
    return v
end

"""
    GrowingRecords <: AbstractVector

Records that grow with `push!(records, (pt = 1.0f0, eta = 0.5f0))` (`growing_records`), a
`GrowingVector` per field: `records.pt` is the column, `records[i]` a `NamedTuple`.
"""
struct GrowingRecords{R<:NamedTuple,names,C<:Tuple} <: AbstractVector{R}
    columns::NamedTuple{names,C}
end

GrowingRecords(columns::NamedTuple{names,C}) where {names,C} =
    GrowingRecords{NamedTuple{names,Tuple{map(eltype, values(columns))...}},names,C}(columns)

Base.size(r::GrowingRecords) = (length(first(getfield(r, :columns))),)
Base.IndexStyle(::Type{<:GrowingRecords}) = IndexLinear()
Base.getindex(r::GrowingRecords{R}, i::Int) where {R} = R(map(c -> c[i], values(getfield(r, :columns))))
Base.getproperty(r::GrowingRecords, name::Symbol) = getfield(getfield(r, :columns), name)
Base.propertynames(r::GrowingRecords{R,names}) where {R,names} = names

# One value per field, each taken from `x` by name (a NamedTuple, a struct, a record view).
@generated function Base.push!(r::GrowingRecords{R,names}, x) where {R,names}
    pushes = [:(push!(getfield(columns, $(QuoteNode(n))), getproperty(x, $(QuoteNode(n))))) for n in names]
    return :(columns = getfield(r, :columns); $(pushes...); r)
end

function Base.append!(v::Union{GrowingVector,GrowingRecords}, xs)
    for x in xs
        push!(v, x)
    end
    return v
end

growing_records_of(fields, block) =
    GrowingRecords(NamedTuple{Tuple(keys(fields))}(Tuple(growing_vector(T, block) for T in values(fields))))

"""
    ListBuilder <: AbstractVector

Lists that grow item by item (`growing_lists`): `push!(lists, x)` adds `x` to the list being
built, `end_list!(lists)` ends it and starts the next. `lists[i]` is the `i`th ended list.
"""
struct ListBuilder{C<:AbstractVector} <: AbstractVector{Any}
    offsets::GrowingVector{Int64}
    content::C
end

Base.size(b::ListBuilder) = (length(b.offsets) - 1,)
Base.IndexStyle(::Type{<:ListBuilder}) = IndexLinear()
Base.getindex(b::ListBuilder, i::Int) = (checkbounds(b, i); view(b.content, b.offsets[i]+1:b.offsets[i+1]))
Base.push!(b::ListBuilder, x) = (push!(b.content, x); b)
Base.append!(b::ListBuilder, xs) = (append!(b.content, xs); b)

"""
    end_list!(lists::ListBuilder) -> lists

End the list being built (it may be empty) and start the next one.
"""
end_list!(b::ListBuilder) = (push!(b.offsets, length(b.content)); b)

function list_builder(content_of, block)
    offsets = growing_vector(Int64, block)
    push!(offsets, 0)
    return ListBuilder(offsets, content_of(block))
end

"""
    growing_array(T) -> GrowingVector{T}

An empty vector of number type `T` (or `Bool`) to grow with `push!`/`append!` and return: in a
call its values are written straight into the client's shared memory, and Python gets them
without a copy. Use `shared_array` when the length is known first.
"""
growing_array(::Type{T}) where {T} = (check_number_type(T); growing_result(block -> growing_vector(T, block), 1))

"""
    growing_records(; field = T, …) -> GrowingRecords

Empty records of the given number fields to grow with `push!(records, (field = x, …))`;
returned, Python gets `n * {field: T, …}` without a copy.
"""
function growing_records(; fields...)
    check_fields(fields)
    foreach(check_number_type, values(fields))
    return growing_result(block -> growing_records_of(fields, block), length(fields))
end

"""
    growing_lists(T) -> ListBuilder
    growing_lists(; field = T, …) -> ListBuilder

Empty jagged lists of numbers of type `T`, or of records of the given fields, to grow item by
item: `push!(lists, x)` adds to the current list, `end_list!(lists)` ends it. Returned, Python
gets `n * var * T` without a copy (every list ended: a pushed item after the last `end_list!`
is an error).
"""
growing_lists(::Type{T}) where {T} =
    (check_number_type(T); growing_result(block -> list_builder(b -> growing_vector(T, b), block), 2))

function growing_lists(; fields...)
    check_fields(fields)
    foreach(check_number_type, values(fields))
    return growing_result(block -> list_builder(b -> growing_records_of(fields, b), block), 1 + length(fields))
end

# `make(block)` over a new sparse chunk of `buffers` buffers in a call, over Julia memory
# elsewhere.
function growing_result(make, buffers::Int)
    scope = get(task_local_storage(), SCOPE_KEY, nothing)
    scope === nothing && return make(nothing)
    buffers <= MAX_GROWING_BUFFERS ||
        throw(ArgumentError("a growing result has at most $MAX_GROWING_BUFFERS buffers (fields), not $buffers"))
    length(scope.growing) < MAX_GROWING_PER_CALL ||
        throw(ArgumentError("a call grows at most $MAX_GROWING_PER_CALL results; grow one result for all the " *
                            "events (growing_lists) rather than one per event"))
    reserved = reserve_growing!(scope, buffers)
    block = GrowingBlock(scope, reserved.segment, reserved.ptr, reserved.span, reserved.lease, reserved.quota,
                         reused_pages!(scope.executor, reserved, buffers), Any[], true)
    built = make(block)
    scope.growing[built] = block
    return built
end

# The bytes committed to each buffer of a chunk the server handed out again, as this executor
# left them (`close!`); a chunk it does not know (it grew it before a restart) is emptied first.
function reused_pages!(executor::ExecutorState, reserved, buffers::Int)
    reserved.reused || return Int[]
    committed = pop!(executor.grown, reserved.segment, nothing)
    committed !== nothing && length(committed) == buffers && return committed
    decommit_range(reserved.segment, 0, buffers * reserved.span)
    return zeros(Int, buffers)
end

"""
    growing_ref(built, block) -> ArrayRef

The buffers of the growing result `built` as they stand, each buffer's unused pages given back
and the server told the bytes the result holds; `ArgumentError` for a result that is not
complete (a list not ended, columns of different lengths).
"""
function growing_ref(built, block::GrowingBlock)
    ref = located_ref(growing_plan(built), length(built), function (i, T, count)
        v = block.buffers[i]
        (eltype(v) === T && length(v) == count) || throw(ArgumentError("a growing result is not laid out as planned"))
        commit_buffer!(block, v.index, round_up(count * sizeof(T), PAGE_SIZE))
        return block.segment, v.index * block.span
    end)
    commit!(block.scope, block.lease, sum(block.committed))
    return ref
end

growing_plan(v::GrowingVector{T}) where {T} = numpy_plan(T, length(v))

function growing_plan(r::GrowingRecords)
    columns = getfield(r, :columns)
    all(c -> length(c) == length(r), columns) ||
        throw(ArgumentError("growing records have fields of different lengths ($(join(map(length, columns), ", "))): " *
                              "a push! to a single field, or a push! of a record that failed half-way; push! whole records"))
    return record_plan_of(map(eltype, columns), length(r))
end

function growing_plan(b::ListBuilder)
    b.offsets[end] == length(b.content) ||
        throw(ArgumentError("the last list of a growing_lists has $(length(b.content) - b.offsets[end]) items " *
                              "but no end_list!: end every list before returning"))
    plan = ListPlan(Parameters(), growing_plan(b.content))
    plan.length = length(b)
    return plan
end

# The call is over: its chunk is no longer this executor's to write until the server hands it
# out again, freed (`reused_pages!`), so the buffers forget it. Its mapping stays, so that a
# result grown there again writes pages already mapped; it goes when the chunk is unlinked.
function close!(block::GrowingBlock)
    block.open = false
    block.scope.executor.grown[block.segment] = copy(block.committed)
    for v in block.buffers
        v.data = empty(v.data)
        v.length = 0
    end
    return nothing
end
