# What one worker request (`eval`, `call`, `send`) may touch: the segments its client may name,
# pinned for the request's duration so that a concurrent `drop`, `release` or expiry cannot
# unmap memory a running call reads or writes. `resolve!` and `allocate!` are the callbacks the
# codec (`open_array`, `place_array`) is given.

"""
    Scope(state, client)

One request's view of the server: `pins` are segment names it holds a use of, `leases` the
result leases it created (ended again if the request fails), `returned` the array arguments
that are earlier results of this client, by view, with where they lie (see `relend!`).
"""
struct Scope
    state::ServerState
    client::Client
    pins::Vector{String}
    leases::Vector{Int}
    returned::IdDict{Any,ArrayRef}
end

Scope(state::ServerState, client::Client) = Scope(state, client, String[], Int[], IdDict{Any,ArrayRef}())

"""
    resolve!(scope, b::BufferRef) -> Ptr{UInt8}

The address of buffer `b`, after checking the client may name its segment (its own, by pid, or
a chunk of its result arena), mapping the segment, and checking the byte range lies inside it.
Anything wrong is an `InvalidArray`.
"""
function resolve!(scope::Scope, b::BufferRef)
    state, client = scope.state, scope.client
    name = b.segment
    seg = lock(state.lock) do
        check_registered(state, client)
        if is_owned(state.segments, name)
            has_chunk(client.arena, name) ||
                throw(InvalidArray("segment $name belongs to the server and holds no results of this client"))
        else
            is_segment_name(name) ||
                throw(InvalidArray("segment name $(repr(name)) is not of the form akb-{pid}-{32 hex digits}"))
            segment_pid(name) == client.pid ||
                throw(InvalidArray("segment $name is not owned by this client (pid $(client.pid))"))
        end
        s = acquire!(state.segments, name)
        push!(scope.pins, s.name)
        return s
    end
    (b.offset >= 0 && b.nbytes >= 0 && b.offset <= seg.nbytes - b.nbytes) ||
        throw(InvalidArray("$(b.nbytes) bytes at offset $(b.offset) run past the end of segment $name ($(seg.nbytes) bytes)"))
    return seg.ptr + b.offset
end

"""
    allocate!(scope, nbytes) -> (segment, offset, ptr)

A block of `nbytes` bytes in the client's result arena, leased to the client (the lease id is
pushed on `scope.leases`), its chunk pinned while the request writes it. A new chunk is created
only when no chunk has room.
"""
function allocate!(scope::Scope, nbytes::Integer)
    state, client = scope.state, scope.client
    size = block_size(nbytes)
    chunk_bytes = lock(state.lock) do
        check_open(state, client)
        block = take_block!(client.arena, size)
        block === nothing && return chunk_size!(client.arena, size)
        return lease_block!(scope, block...)
    end
    chunk_bytes isa Int || return chunk_bytes
    # outside the lock: reserving gigabytes takes a while; a chunk of the result's own size is
    # written whole at once, so its pages are mapped in one go
    seg = create_segment(chunk_bytes; populate = chunk_bytes == size)
    lock(state.lock) do
        try
            check_open(state, client)
        catch
            unlink(seg.name)
            unmap(seg)
            rethrow()
        end
        add_owned!(state.segments, seg)   # the arena's use, until it drops the chunk
        add_chunk!(client.arena, seg)
        return lease_block!(scope, take_block!(client.arena, size)...)
    end
end

function lease_block!(scope::Scope, seg::Segment, offset::Int)
    acquire!(scope.state.segments, seg.name)
    push!(scope.pins, seg.name)
    push!(scope.leases, add_result!(scope.client, seg.name, offset))
    return seg.name, offset, seg.ptr + offset
end

"""
    relend!(scope, ref) -> Union{Nothing,Int}

For a result that is an array argument returned unchanged: when all of `ref`'s buffers lie in
one block of the client's result arena, lease that block again and return the new lease id (the
result is sent back by reference, not copied); otherwise `nothing`.
"""
relend!(scope::Scope, ref::ArrayRef) =
    in_result_block(scope, ref, share_block!) do chunk, offset
        lease = add_result!(scope.client, chunk, offset)
        push!(scope.leases, lease)
        return lease
    end

"""
    in_client_memory(scope, ref) -> Bool

Whether `ref`, an argument `resolve!` admitted, has buffers and none lies in a segment the
server made: `resolve!` admits only those and the client's own.
"""
function in_client_memory(scope::Scope, ref::ArrayRef)
    isempty(ref.buffers) && return false
    segments = scope.state.segments
    return lock(() -> !any(b -> is_owned(segments, b.segment), values(ref.buffers)), scope.state.lock)
end

"""
    result_view!(scope, ref) -> Union{Nothing,Any}

The view of an earlier result of this client sent back as `ref` unchanged, validated the first
time it was sent back, its chunk pinned for the request; `nothing` when there is none. A result
block is immutable while leased (the server never writes it again, the client maps it
read-only), so, like a handle's, its view need not be validated again.
"""
result_view!(scope::Scope, ref::ArrayRef) =
    in_result_block(scope, ref, block_holding) do chunk, offset
        known = get(scope.client.views, (chunk, offset), nothing)
        (known === nothing || !same_array(known[1], ref)) && return nothing
        acquire!(scope.state.segments, chunk)
        push!(scope.pins, chunk)
        return known[2]
    end

"""
    remember_result_view!(scope, ref, view)

Keep the validated `view` of `ref` for `result_view!` when `ref` is an earlier result of this
client (one block of its result arena), until that block is freed.
"""
remember_result_view!(scope::Scope, ref::ArrayRef, view) =
    in_result_block(scope, ref, block_holding) do chunk, offset
        scope.client.views[(chunk, offset)] = (ref, view)
        return nothing
    end

# Under the state lock, `f(chunk, offset)` for the block of the client's result arena that holds
# every buffer of `ref`, as `find` (`block_holding`, or `share_block!` to lease it again) finds
# it; `nothing` when no such block exists.
function in_result_block(f, scope::Scope, ref::ArrayRef, find)
    state, client = scope.state, scope.client
    span = byte_span(ref)
    span === nothing && return nothing
    lock(state.lock) do
        check_open(state, client)
        has_chunk(client.arena, span[1]) || return nothing
        offset = find(client.arena, span...)
        offset === nothing && return nothing
        return f(span[1], offset)
    end
end

# The one segment all of `ref`'s buffers lie in, and the bytes they span; `nothing` when they
# lie in several (or there are none).
function byte_span(ref::ArrayRef)
    isempty(ref.buffers) && return nothing
    name = first(values(ref.buffers)).segment
    all(b -> b.segment == name, values(ref.buffers)) || return nothing
    lo = minimum(b.offset for b in values(ref.buffers))
    hi = maximum(b.offset + b.nbytes for b in values(ref.buffers))
    return name, lo:max(hi, lo + 1)-1
end

function check_open(state::ServerState, client::Client)
    state.closing && throw(ShuttingDown("the server is shutting down"))
    check_registered(state, client)
    return nothing
end

"""
    handle_view!(scope, id) -> view

The view behind the client's handle `id`, its segments pinned for this request;
`InvalidArray` if the client has no such handle.
"""
function handle_view!(scope::Scope, id::Integer)
    state, client = scope.state, scope.client
    lock(state.lock) do
        check_registered(state, client)
        h = get(client.handles, id, nothing)
        h === nothing &&
            throw(InvalidArray("handle $id does not exist (dropped, expired, or not sent by this client)"))
        for name in h.segments
            acquire!(state.segments, name)
            push!(scope.pins, name)
        end
        return h.view
    end
end

"""
    store_handle!(scope, view) -> Int

Keep `view` as a new handle of the client; the segments this request pinned become the
handle's.
"""
function store_handle!(scope::Scope, view)
    state, client = scope.state, scope.client
    lock(state.lock) do
        check_registered(state, client)
        id = add_handle!(client, view, copy(scope.pins))
        empty!(scope.pins)
        return id
    end
end

"""
    finish!(scope; failed)

End the request: when it `failed`, end the result leases it created; then unpin its segments.
"""
function finish!(scope::Scope; failed::Bool)
    state = scope.state
    lock(state.lock) do
        failed && release_results!(state, scope.client, scope.leases)
        foreach(name -> release!(state.segments, name), scope.pins)
        empty!(scope.pins)
        empty!(scope.leases)
    end
    return nothing
end
