# What one job (`eval`, `call`, `send`) may touch: the segments it maps, pinned until it ends,
# and the server's answers it needs on the way. `resolve!` and `allocate!` are the callbacks the
# codec (`open_array`, `place_array`) is given. The server already checked that the client may
# name every segment of the job's arguments; the executor maps them and checks the byte ranges.

"""
    Scope(executor, job, offered = nothing)

One job's view of the executor: `pins` are segment names it holds a use of, `returned` the
array arguments by view, with where they lie (should the call return one unchanged), `built`
the results the job laid out in shared memory itself (`shared_array`, …) with their leases,
`growing` the results it grows there (`growing_lists`, …) with their memory (`GrowingBlock`),
`functions` the ids of functions its result kept (let go of if the job fails), `offered`
the result block the server leased with the job (its `run` message's `block`) until a result
takes it, and `opened` the handles it opened (its `done` tells the server, which from then on
names them by id alone).
"""
struct Scope
    executor::ExecutorState
    job::Int
    pins::Vector{String}
    returned::IdDict{Any,ArrayRef}
    built::IdDict{Any,Tuple{ArrayRef,Int}}
    growing::IdDict{Any,Any}
    validations::Base.RefValue{Int}    # arrays this job checked in full
    functions::Vector{Int}
    offered::Base.RefValue{Union{Nothing,Dict{String,Any}}}
    opened::Vector{Int}
end

Scope(executor::ExecutorState, job::Int, offered::Union{Nothing,Dict{String,Any}} = nothing) =
    Scope(executor, job, String[], IdDict{Any,ArrayRef}(), IdDict{Any,Tuple{ArrayRef,Int}}(), IdDict{Any,Any}(),
          Ref(0), Int[], Ref{Union{Nothing,Dict{String,Any}}}(offered), Int[])

"""
    resolve!(scope, b::BufferRef) -> Ptr{UInt8}

The address of buffer `b`, its segment mapped and pinned for the job, after checking the byte
range lies inside the segment (`InvalidArray` otherwise).
"""
function resolve!(scope::Scope, b::BufferRef)
    seg = acquire!(scope.executor.mappings, b.segment)
    push!(scope.pins, seg.name)
    (b.offset >= 0 && b.nbytes >= 0 && b.offset <= seg.nbytes - b.nbytes) ||
        throw(InvalidArray("$(b.nbytes) bytes at offset $(b.offset) run past the end of segment $(b.segment) ($(seg.nbytes) bytes)"))
    return seg.ptr + b.offset
end

"""
    open_checked!(scope, ref) -> AbstractVector

The validated view of `ref`, counted as one validation.
"""
function open_checked!(scope::Scope, ref::ArrayRef)
    view = open_array(ref, b -> resolve!(scope, b))
    scope.validations[] += 1
    return view
end

"""
    result_view!(scope, ref, block) -> AbstractVector

The view of an earlier result of the client sent back as `ref`, lying in the result `block`
(chunk, offset) the server named: validated the first time, then kept until the server says
the block was freed.
"""
function result_view!(scope::Scope, ref::ArrayRef, block::Tuple{String,Int})
    results = scope.executor.results
    known = get(results, block, nothing)
    known !== nothing && same_array(known[1], ref) && return known[2]
    first_pin = length(scope.pins) + 1
    view = open_checked!(scope, ref)
    known === nothing || unpin!(scope.executor, known[3])
    results[block] = (ref, view, pin!(scope.executor, scope.pins[first_pin:end]))
    return view
end

"""
    handle_view!(scope, id, ref) -> AbstractVector

The view behind the client's handle `id`, whose array is `ref` (`nothing` for a handle value,
which names an opened handle by id alone): validated the first time this executor sees it (at
`send`, or from a job's `handle_arrays` after a restart), then kept until the handle is dropped.
"""
function handle_view!(scope::Scope, id::Int, ref::Union{Nothing,ArrayRef})
    handles = scope.executor.handles
    known = get(handles, id, nothing)
    known === nothing || return known[1]
    ref === nothing && throw(ProtocolError("handle $id came without its array, and this executor has not opened it"))
    first_pin = length(scope.pins) + 1
    view = open_checked!(scope, ref)
    handles[id] = (view, pin!(scope.executor, scope.pins[first_pin:end]))
    push!(scope.opened, id)
    return view
end

"""
    allocate!(scope, nbytes) -> NamedTuple

A block of `nbytes` bytes in the client's result arena, from the server, leased to the client:
`(segment, offset, ptr, lease)`, the chunk mapped read-write. The first is the block the server
offered with the job when it fits (at most the block, at least half of it: a smaller result
would keep the rest leased for as long as it lives); otherwise, and for later ones, it asks for
one (`alloc`), declining the offer so that the server ends its lease before it counts the quota.
"""
function allocate!(scope::Scope, nbytes::Integer)
    offered, scope.offered[] = scope.offered[], nothing
    answer = if offered !== nothing && int_field(offered, "nbytes", "run block") ÷ 2 <= nbytes <= offered["nbytes"]
        offered
    else
        declined = offered === nothing ? () : ("declined" => int_field(offered, "lease", "run block"),)
        answer_of(ask!(scope.executor.link, scope.job, "alloc", "nbytes" => Int(nbytes), declined...))
    end
    name = str_field(answer, "segment", "alloc answer")
    offset = int_field(answer, "offset", "alloc answer")
    seg = writable!(scope.executor.mappings, name; populate = get(answer, "populate", false) === true)
    offset <= seg.nbytes - nbytes || throw(ProtocolError("the server allocated past the end of chunk $name"))
    return (segment = seg.name, offset = offset, ptr = seg.ptr + offset,
            lease = int_field(answer, "lease", "alloc answer"))
end

"""
    reserve_growing!(scope, buffers) -> NamedTuple

A sparse chunk of the client's result arena for one growing result of `buffers` buffers, from
the server (`growing`), leased to the client and mapped read-write: `(segment, ptr, span,
lease, quota, reused)`, buffer `k` (from 0) at `ptr + k * span`. A new chunk holds no memory
until committed; a `reused` one, freed by an earlier result, holds the pages that result kept.
With a `quota`, the server approves each growth (`commit!`) before it is committed.
"""
function reserve_growing!(scope::Scope, buffers::Int)
    answer = answer_of(ask!(scope.executor.link, scope.job, "growing", "buffers" => buffers))
    name = str_field(answer, "segment", "growing answer")
    span = int_field(answer, "span", "growing answer")
    seg = writable!(scope.executor.mappings, name)
    (span > 0 && span * buffers <= seg.nbytes) || throw(ProtocolError("the server reserved past the end of chunk $name"))
    return (segment = seg.name, ptr = seg.ptr, span = span, lease = int_field(answer, "lease", "growing answer"),
            quota = get(answer, "quota", true) !== false, reused = get(answer, "reused", false) === true)
end

"""
    commit!(scope, lease, nbytes)

Tell the server that the growing result of `lease` now holds `nbytes` bytes in all (it counts
them against the client's quota, `SharedMemoryFull` past it): before reserving new pages, and
once more when the result is returned.
"""
function commit!(scope::Scope, lease::Int, nbytes::Int)
    answer_of(ask!(scope.executor.link, scope.job, "commit", "lease" => lease, "nbytes" => nbytes))
    return nothing
end

"""
    relend!(scope, ref) -> Union{Int,Nothing,Bool}

For an argument returned unchanged: the new lease on its result block when it is an earlier
result (no copy), `true` when it lies in the client's own memory (the reply names it as it is,
without a lease), `false` when it must be copied.
"""
function relend!(scope::Scope, ref::ArrayRef)
    answer = answer_of(ask!(scope.executor.link, scope.job, "relend", "array" => wire_array(ref, nothing)))
    lease = get(answer, "lease", nothing)
    lease isa Int64 && return lease
    return get(answer, "by_reference", false) === true
end

const ANSWER_ERRORS = Dict("SharedMemoryFull" => SharedMemoryFull, "ShuttingDown" => ShuttingDown,
                           "UnknownClient" => UnknownClient, "ProtocolError" => ProtocolError,
                           "InvalidArray" => InvalidArray)

# The server's answer, or the error it answered thrown as the bridge's own exception.
function answer_of(answer::Dict{String,Any})
    get(answer, "ok", false) === true && return answer
    error = map_field(answer, "error", "answer")
    type = get(ANSWER_ERRORS, str_field(error, "type", "answer error"), ProtocolError)
    throw(type(str_field(error, "message", "answer error")))
end

"""
    finish!(scope, ok)

End the job: unpin its segments and, when it failed (its reply names no function), let go of
the functions its result had kept.
"""
function finish!(scope::Scope, ok::Bool)
    foreach(close!, values(scope.growing))
    unpin!(scope.executor, scope.pins)
    empty!(scope.pins)
    ok || foreach(id -> delete!(scope.executor.functions, id), scope.functions)
    return nothing
end
