# The server's bookkeeping: its clients, their leases, handles and result arenas, and the result
# chunks it owns. Only the socket loop's task touches it, so it needs no lock; the one slow step,
# reserving a new chunk's memory, runs on a worker (server/workers.jl) and only hands the loop a
# name.

"""
    ServerState(; lease_ttl, client_shm_quota)

The server's bookkeeping: `lease_ttl` is the longest TTL it grants, `client_shm_quota` the most
shared memory one client's handles, arguments and results may hold (0: no quota).
"""
mutable struct ServerState
    clients::Dict{String,Client}
    owned::Dict{String,Int}    # result chunks this server created and has not unlinked, with their sizes
    lease_ttl::Float64
    client_shm_quota::Int
    started::UInt64
    calls::Int
    validations::Int           # arrays the executors checked in full
    alloc_asks::Int            # result blocks executors asked for, not offered with their job
    closing::Bool              # set once at shutdown: no new chunks from then on
end

ServerState(; lease_ttl::Float64, client_shm_quota::Int = 0) =
    ServerState(Dict{String,Client}(), Dict{String,Int}(), lease_ttl, client_shm_quota, time_ns(), 0, 0, 0, false)

"""
    register!(state, id, pid, lease_ttl, name, token) -> (client, reconnected::Bool)

Register client `id` (`hello`), granting it `min(lease_ttl, state.lease_ttl)`. A known id keeps
its handles, leases and executor (a reconnect), but only when the hello shows the client's
`token`: otherwise it is `AuthenticationFailed`, so that knowing a client's id is not enough to
speak for it.
"""
function register!(state::ServerState, id::String, pid::Integer, lease_ttl::Float64, name::String,
                   token::String)
    granted = min(lease_ttl, state.lease_ttl)
    client = get(state.clients, id, nothing)
    if client !== nothing
        check_token(client, token)
        client.pid, client.lease_ttl, client.name = pid, granted, name
        touch!(client)
        return client, true
    end
    client = Client(id, Int(pid), name, granted)
    state.clients[id] = client
    return client, false
end

"""
    known_client(state, id, token, now) -> Client

The registered client `id`, its leases renewed, when the request shows its `token`;
`UnknownClient` if there is none, `AuthenticationFailed` (and nothing renewed) for a wrong token.
"""
function known_client(state::ServerState, id::String, token::String, now::UInt64)
    client = get(state.clients, id, nothing)
    client === nothing &&
        throw(UnknownClient("client $(short_id(id)) is not registered (no hello yet, or its leases expired)"))
    check_token(client, token)
    touch!(client, now)
    return client
end

is_registered(state::ServerState, client::Client) = get(state.clients, client.id, nothing) === client

"""
    check_open(state, client)

`ShuttingDown` once the server stops, `UnknownClient` once the client is forgotten.
"""
function check_open(state::ServerState, client::Client)
    state.closing && throw(ShuttingDown("the server is shutting down"))
    is_registered(state, client) ||
        throw(UnknownClient("client $(short_id(client.id)) is no longer registered (bye, or its leases expired)"))
    return nothing
end

"""
    forget!(state, client) -> (handles, results)

Drop everything held for `client` (`bye`, expiry, shutdown): its handles, its result leases,
and its result arena, unlinked. Returns how many handles and results there were.
"""
function forget!(state::ServerState, client::Client)
    is_registered(state, client) && delete!(state.clients, client.id)
    counts = (length(client.handles), length(client.results))
    empty!(client.handles)
    empty!(client.results)
    foreach(name -> unlink_chunk!(state, name), take_chunks!(client.arena))
    return counts
end

"""
    expire!(state, now) -> Vector{Tuple{Client,Float64,Int,Int}}

Forget every client silent for longer than its TTL × `LEASE_MARGIN`; returns each one with its
silence in seconds and the numbers of handles and results reclaimed.
"""
function expire!(state::ServerState, now::UInt64)
    gone = [c for c in values(state.clients) if is_expired(c, now)]
    return [(c, silence(c, now), forget!(state, c)...) for c in gone]
end

"""
    drop_handles!(state, client, ids)

Forget the client's handles `ids`; unknown ids are ignored (dropping twice is harmless).
"""
function drop_handles!(state::ServerState, client::Client, ids)
    for id in ids
        pop!(client.handles, id, nothing) === nothing && continue
        push!(client.forgotten.handles, id)
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
    for id in ids
        block = remove_result!(client, id)
        block === nothing && continue
        free_block!(client.arena, block..., now)
        is_held(client.arena, block...) || push!(client.forgotten.blocks, block)
    end
    return nothing
end

"""
    end_lingering!(state, now)

Unlink every client's result chunks whose lingering is over, and name them in the client's next
reply and to its executor.
"""
function end_lingering!(state::ServerState, now::UInt64)
    for client in values(state.clients), name in end_lingering!(client.arena, now)
        unlink_chunk!(state, name)
        push!(client.unlinked, name)
        push!(client.forgotten.segments, name)
    end
    return nothing
end

"""
    add_chunk!(state, client, name, nbytes)

A result chunk the server just created becomes one of the client's arena chunks.
"""
function add_chunk!(state::ServerState, client::Client, name::String, nbytes::Int)
    state.owned[name] = nbytes
    add_chunk!(client.arena, name, nbytes)
    return nothing
end

function unlink_chunk!(state::ServerState, name::String)
    pop!(state.owned, name, nothing) === nothing || unlink(name)
    return nothing
end

"""
    take_unlinked!(state, client) -> Vector{String}

The client's result chunks dropped since it was last told, for the next reply it waits for
(`unlinked`: to an `eval`, `call`, `send`, `ping` or `stats`).
"""
function take_unlinked!(state::ServerState, client::Client)
    names = copy(client.unlinked)
    empty!(client.unlinked)
    return names
end

"""
    forget_segments!(state, client, names)

The client unlinked its segments `names` (`release.segments`): its executor can unmap those
among them its requests named. Other names are ignored, so that what waits for the executor
is bounded by what the client sent.
"""
function forget_segments!(state::ServerState, client::Client, names::Vector{String})
    gone = [name for name in names if name in client.own_segments]
    append!(client.forgotten.segments, gone)
    foreach(name -> delete!(client.own_segments, name), gone)
    return nothing
end

"""
    held_bytes(client) -> Int

Shared memory the client holds outside its running requests: its handles and its results.
"""
held_bytes(client::Client) = handle_bytes(client) + leased_bytes(client.arena)

"""
    within_quota(state, client, nbytes, running = 0) -> Bool

Whether the client may hold `nbytes` more (`running`: what its unanswered jobs' arguments hold).
"""
within_quota(state::ServerState, client::Client, nbytes::Int, running::Int = 0) =
    state.client_shm_quota <= 0 || held_bytes(client) + running + nbytes <= state.client_shm_quota

"""
    check_quota(state, client, nbytes, what, running=0)

`SharedMemoryFull` when `nbytes` more bytes for `what` would take the client past its quota
(`running`: bytes its requests in progress already hold).
"""
function check_quota(state::ServerState, client::Client, nbytes::Int, what::String, running::Int = 0)
    within_quota(state, client, nbytes, running) && return nothing
    quota, held = state.client_shm_quota, held_bytes(client) + running
    throw(SharedMemoryFull("$what needs $(format_bytes(nbytes)) of shared memory, and this client " *
                           "already holds $(format_bytes(held)) of its $(format_bytes(quota)) quota " *
                           "(--client-shm-quota); drop handles or results it no longer needs"))
end

"""
    close!(state)

Shutdown: refuse new chunks, forget every client, and unlink every chunk the server still owns.
"""
function close!(state::ServerState)
    state.closing = true
    foreach(c -> forget!(state, c), collect(values(state.clients)))
    foreach(name -> unlink_chunk!(state, name), collect(keys(state.owned)))
    return nothing
end

"""
    remove_dead_owner_segments(pid) -> Int

Unlink every `akb-{pid}-…` segment when its owner is gone, and return how many there were: a
client the server reclaimed leaves its own arguments and handles behind when it was killed. Its
owner lock decides (shm/owner_lock.jl), from any pid namespace; without one, whether process
`pid` is gone, or a zombie, in this pid namespace.
"""
function remove_dead_owner_segments(pid::Int)
    return dead_owner(pid) do gone
        (gone === nothing ? !owner_alive(pid) : gone) || return 0
        removed = 0
        for name in readdir("/dev/shm")
            segment_pid(name) == pid || continue
            # a name anyone can make there (a directory, another user's file) is skipped
            removed += try
                unlink(name)
            catch e
                e isa SystemError || rethrow()
                false
            end
        end
        return removed
    end
end

# Whether process `pid` exists and is not a zombie (killed, not yet reaped: it runs no code).
function owner_alive(pid::Int)
    if ccall(:kill, Cint, (Cint, Cint), pid, 0) != 0
        Libc.errno() == ESRCH && return false
    end
    stat = try
        read("/proc/$pid/stat", String)
    catch
        return true   # no /proc: kill decided
    end
    fields = split(stat[findlast(')', stat)+1:end])
    return isempty(fields) || fields[1] != "Z"
end
