# Everything the socket loop (thread 1) and the workers share: the clients, the segment table
# and the counters, behind one lock that is only ever held for bookkeeping, never while user
# code runs or while a segment is being sized.

"""
    ServerState(; lease_ttl, workers, shared)

The server's shared state: `lease_ttl` is the longest TTL it grants, `workers` the number of
threads running calls, `shared` the module `--include` files were loaded into.
"""
mutable struct ServerState
    lock::ReentrantLock
    clients::Dict{String,Client}
    segments::SegmentTable
    shared::Module
    lease_ttl::Float64
    workers::Int
    started::UInt64
    calls::Threads.Atomic{Int}
    validations::Threads.Atomic{Int}   # arrays checked by `open_array`: once per argument, once per `send`
    closing::Bool              # set once at shutdown: no new segments from then on
    eval_lock::ReentrantLock   # evals run one at a time, whatever the client
end

ServerState(; lease_ttl::Float64, workers::Int, shared::Module) =
    ServerState(ReentrantLock(), Dict{String,Client}(), SegmentTable(), shared, lease_ttl,
                workers, time_ns(), Threads.Atomic{Int}(0), Threads.Atomic{Int}(0), false,
                ReentrantLock())

"""
    register!(state, id, pid, lease_ttl, name) -> (client, reconnected::Bool)

Register client `id` (`hello`), granting it `min(lease_ttl, state.lease_ttl)`. A known id keeps
its handles, leases and module: it is a reconnect.
"""
function register!(state::ServerState, id::String, pid::Integer, lease_ttl::Float64, name::String)
    granted = min(lease_ttl, state.lease_ttl)
    lock(state.lock) do
        client = get(state.clients, id, nothing)
        if client !== nothing
            client.pid, client.lease_ttl, client.name = pid, granted, name
            touch!(client)
            return client, true
        end
        mod = user_module(Symbol("client_", id))
        # eval'd code reaches the start-up --include definitions as `Shared.name`
        Core.eval(mod, :(const Shared = $(state.shared)))
        client = Client(id, Int(pid), name, granted, mod)
        state.clients[id] = client
        return client, false
    end
end

"""
    user_module(name) -> Module

A fresh module for user code, with the bridge's exported views (`Record`, `column`, …) in scope.
"""
function user_module(name::Symbol)
    mod = Module(name)
    Core.eval(mod, :(using AwkwardBridge))
    return mod
end

"""
    known_client(state, id, now) -> Client

The registered client `id`, its leases renewed; `UnknownClient` if there is none.
"""
function known_client(state::ServerState, id::String, now::UInt64)
    lock(state.lock) do
        client = get(state.clients, id, nothing)
        client === nothing &&
            throw(UnknownClient("client $id is not registered (no hello yet, or its leases expired)"))
        touch!(client, now)
        return client
    end
end

is_registered(state::ServerState, client::Client) = get(state.clients, client.id, nothing) === client

function check_registered(state::ServerState, client::Client)
    is_registered(state, client) ||
        throw(UnknownClient("client $(client.id) is no longer registered (bye, or its leases expired)"))
    return nothing
end

"""
    forget!(state, client) -> (handles, results)

Drop everything held for `client` (`bye`, expiry, shutdown): unmap what its handles pinned,
end its result leases and unlink its result arena. Returns how many handles and results there
were.
"""
function forget!(state::ServerState, client::Client)
    lock(state.lock) do
        is_registered(state, client) && delete!(state.clients, client.id)
        counts = (length(client.handles), length(client.results))
        drop_handles!(state, client, collect(keys(client.handles)))
        release_results!(state, client, collect(keys(client.results)))
        foreach(seg -> drop_chunk!(state, seg), take_chunks!(client.arena))
        forget_idle!(state.segments, name -> segment_pid(name) != client.pid)
        return counts
    end
end

"""
    expire!(state, now) -> Vector{Tuple{Client,Float64,Int,Int}}

Forget every client silent for longer than its TTL × `LEASE_MARGIN`; returns each one with its
silence in seconds and the numbers of handles and results reclaimed.
"""
function expire!(state::ServerState, now::UInt64)
    lock(state.lock) do
        gone = [c for c in values(state.clients) if is_expired(c, now)]
        return [(c, silence(c, now), forget!(state, c)...) for c in gone]
    end
end

"""
    drop_handles!(state, client, ids)

Forget the client's handles `ids` and unpin their segments; unknown ids are ignored (dropping
twice is harmless).
"""
function drop_handles!(state::ServerState, client::Client, ids)
    lock(state.lock) do
        for id in ids
            h = remove_handle!(client, id)
            h === nothing && continue
            foreach(name -> release!(state.segments, name), h.segments)
        end
    end
    return nothing
end

"""
    release_results!(state, client, ids)

End the client's result leases `ids`, freeing their blocks in its arena. Unknown ids are
ignored.
"""
function release_results!(state::ServerState, client::Client, ids)
    now = time_ns()
    lock(state.lock) do
        for id in ids
            block = remove_result!(client, id)
            block === nothing && continue
            free_block!(client.arena, block..., now)
            is_held(client.arena, block...) || delete!(client.views, block)
        end
    end
    return nothing
end

"""
    end_lingering!(state, now)

Drop every client's result chunks whose lingering is over: each is unlinked at once, unmapped
when its last user lets go, and named in the client's next reply.
"""
function end_lingering!(state::ServerState, now::UInt64)
    lock(state.lock) do
        for client in values(state.clients), seg in end_lingering!(client.arena, now)
            drop_chunk!(state, seg)
            push!(client.unlinked, seg.name)
        end
    end
    return nothing
end

# An arena chunk is no longer the arena's: unlink it, and end the arena's use of it.
function drop_chunk!(state::ServerState, seg::Segment)
    unlink_owned!(state.segments, seg.name)
    release!(state.segments, seg.name)
    return nothing
end

"""
    take_unlinked!(state, client) -> Vector{String}

The client's result chunks dropped since it was last told, for the next reply it waits for
(`unlinked`: to an `eval`, `call`, `send`, `ping` or `stats`).
"""
function take_unlinked!(state::ServerState, client::Client)
    lock(state.lock) do
        names = copy(client.unlinked)
        empty!(client.unlinked)
        return names
    end
end

"""
    forget_segments!(state, client, names)

The client unlinked its segments `names` (`release.segments`): unmap the idle cached mappings
of those among them it owns (by pid). Others' names, and mappings still in use, are left alone.
"""
function forget_segments!(state::ServerState, client::Client, names::Vector{String})
    unlinked = Set(name for name in names if segment_pid(name) == client.pid)
    lock(() -> forget_idle!(state.segments, name -> !(name in unlinked)), state.lock)
    return nothing
end

"""
    close!(state)

Shutdown: refuse new segments, forget every client, and unlink every segment the server still
owns (those a running call still writes stay mapped until it ends or the process exits).
"""
function close!(state::ServerState)
    lock(state.lock) do
        state.closing = true
        foreach(c -> forget!(state, c), collect(values(state.clients)))
        unlink_all_owned!(state.segments)
    end
    return nothing
end

"""
    stats(state) -> Dict{String,Any}

The `stats` reply (docs/protocol.md, section 6). `calls` counts the calls that returned a
result; `shm_bytes` counts the result arenas' chunks, free space included, and chunks dropped
that a running call still pins; `reserve_bytes` the part of it in entirely free chunks, kept for
the next results.
"""
function stats(state::ServerState)
    lock(state.lock) do
        handles = mapreduce(c -> length(c.handles), +, values(state.clients); init = 0)
        results = mapreduce(c -> length(c.results), +, values(state.clients); init = 0)
        return Dict{String,Any}(
            "clients" => length(state.clients),
            "handles" => handles,
            "leases" => results + handles,
            "shm_bytes" => owned_bytes(state.segments),
            "reserve_bytes" => mapreduce(c -> idle_bytes(c.arena), +, values(state.clients); init = 0),
            "mapped_bytes" => mapped_bytes(state.segments),
            "cached_bytes" => cached_bytes(state.segments),
            "calls" => state.calls[],
            "validations" => state.validations[],
            "threads" => state.workers,
            "uptime" => (time_ns() - state.started) / 1e9,
        )
    end
end
