# Results a kernel writes straight into the client's shared memory (docs/kernels.md): the
# buffers are laid out once, in one block of the client's result arena, and the vector handed
# to the kernel is a view of them; returned, it reaches Python as it is, without a copy, so a
# 1 GB result takes 1 GB. The kernel counts first (how many events, how many items per event),
# then fills.

"""
    shared_array(T, n) -> Vector{T}

A vector of `n` values of the number type `T` (or `Bool`) in the client's shared memory, to fill
and return: Python gets it without a copy. Inside a call only; elsewhere (a plain Julia session)
an ordinary vector of Julia's memory.
"""
function shared_array(::Type{T}, n::Integer) where {T}
    plan = numpy_plan(T, n)
    return shared_view(plan, n) do
        plan.data
    end
end

"""
    shared_lists(T, counts) -> ListVector
    shared_lists(@NamedTuple{field::T, …}, counts) -> ListVector
    shared_lists(counts; field = T, …) -> ListVector

A jagged vector whose list `i` has `counts[i]` elements, of number type `T` or records of the
given fields, in one block of the client's shared memory. `counts` is any collection of
integers with a length (a `Vector{Int32}` costs 4 bytes a list; `Iterators.repeated(4, n)`
nothing). Its lists are views to fill
(`lists[i][k] = x`, or `lists[i].pt[k] = x`); returned, Python gets `n * var * T` without a copy.
Given as types, the fields make a result whose type Julia infers, so the function that makes it
can fill it at full speed; the keyword form's type is known only when it runs.
"""
function shared_lists(::Type{T}, counts) where {T}
    content = numpy_plan(T, 0)
    return shared_list_view(ListPlan(Parameters(), content), counts) do
        content.data
    end
end

function shared_lists(::Type{NT}, counts) where {NT<:NamedTuple}
    content = record_plan_of(NT, 0)
    return shared_list_view(ListPlan(Parameters(), content), counts) do
        record_view(NT, content)
    end
end

shared_lists(counts; fields...) = shared_lists(keyword_record_type(fields), counts)

"""
    shared_records(@NamedTuple{field::T, …}, n) -> RecordVector
    shared_records(n; field = T, …) -> RecordVector

`n` records of the given number fields in the client's shared memory, one column per field
(`records.pt[i] = x`); returned, Python gets `n * {field: T, …}` without a copy. The first form's
result has a type Julia infers (see [`shared_lists`](@ref)).
"""
function shared_records(::Type{NT}, n::Integer) where {NT<:NamedTuple}
    plan = record_plan_of(NT, n)
    return shared_view(plan, n) do
        record_view(NT, plan)
    end
end

shared_records(n::Integer; fields...) = shared_records(keyword_record_type(fields), n)

# The values a builder's buffers hold (here and in growing_results.jl).
check_number_type(::Type{T}) where {T} =
    haskey(TYPE_PRIMITIVES, T) || throw(ArgumentError("a result built in shared memory holds numbers or Bool, not $T"))
check_number_type(x) = throw(ArgumentError("a field of records built in shared memory is a type (x = Float64), not $(repr(x))"))

check_fields(fields) = isempty(fields) && throw(ArgumentError("records built in shared memory need at least one field: name = T"))

function numpy_plan(::Type{T}, n::Integer) where {T}
    check_number_type(T)
    n >= 0 || throw(ArgumentError("a shared array's length is not negative: $n"))
    plan = NumpyPlan{T}()
    plan.length = n
    return plan
end

function record_plan_of(fields, n::Integer)
    check_fields(fields)
    plan = RecordPlan(Parameters(), collect(Symbol, keys(fields)), Plan[numpy_plan(T, n) for T in values(fields)])
    plan.length = n
    return plan
end

record_plan_of(::Type{NT}, n::Integer) where {NT<:NamedTuple} = record_plan_of(NamedTuple{fieldnames(NT)}(fieldtypes(NT)), n)

# The record type `@NamedTuple{field::T, …}` of keyword fields `field = T`, checked.
function keyword_record_type(fields)
    check_fields(fields)
    foreach(check_number_type, values(fields))
    return NamedTuple{Tuple(keys(fields)),Tuple{values(fields)...}}
end

# The columns of `plan`, laid out, as a record view of element type `NT`, with a type inferred
# from `NT` alone.
record_view(::Type{NamedTuple{names,types}}, plan::RecordPlan) where {names,types} =
    RecordVector(NamedTuple{names}(ntuple(i -> (plan.contents[i]::NumpyPlan{fieldtype(types, i)}).data, Val(fieldcount(types)))),
                 plan.length, Parameters())

function shared_list_view(view_of, plan::ListPlan, counts)
    all(c -> c isa Integer && c >= 0, counts) || throw(ArgumentError("a list's count is an integer, not negative"))
    n, total = length(counts), Int(reduce(+, counts; init=0))
    plan.length = n
    set_length!(plan.content, total)
    return shared_view(plan, n) do
        offsets = plan.offsets          # offsets[1] = 0, from `attach!`
        for (i, c) in enumerate(counts)
            offsets[i+1] = offsets[i] + c
        end
        # views, not `offset_windows`: outside a call the offsets keep the block alive
        # (`shared_view`), and a window made by `unsafe_wrap` would not
        ListVector(view_of(), view(offsets, 1:n), view(offsets, 2:n+1), Parameters())
    end
end

set_length!(p::NumpyPlan, n::Int) = (p.length = n)
set_length!(p::RecordPlan, n::Int) = (p.length = n; foreach(c -> set_length!(c, n), p.contents))

# Lays the plan's buffers out in one block and returns `view_of()` over them: in a call, a block
# of the client's result arena, which `placed` returns as it is; elsewhere, Julia memory that the
# buffers keep alive.
function shared_view(view_of, plan::Plan, len::Integer)
    scope = get(task_local_storage(), SCOPE_KEY, nothing)
    if scope === nothing
        block = UInt8[]
        lay_out!(plan, Int(len), nbytes -> (resize!(block, nbytes); ("julia", 0, pointer(block))))
        built = view_of()
        foreach(buffer -> finalizer(_ -> block, buffer), plan_buffers(plan))
        return built
    end
    lease = Ref(0)
    ref, _ = lay_out!(plan, Int(len), function (nbytes)
        block = allocate!(scope, nbytes)
        lease[] = block.lease
        return block.segment, block.offset, block.ptr
    end)
    built = view_of()
    scope.built[built] = (ref, lease[])
    return built
end

plan_buffers(p::NumpyPlan) = (p.data,)
plan_buffers(p::ListPlan) = (p.offsets, plan_buffers(p.content)...)
plan_buffers(p::RecordPlan) = Tuple(b for c in p.contents for b in plan_buffers(c))
