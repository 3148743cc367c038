# What the server holds for each client (docs/ownership.md): the handles it placed with `send`
# (the server holds a lease on the client's segments) and the results it was sent (the client
# holds a lease on the server's segments), with the monotonic time it was last heard from.

"""
Silence after which a client is forgotten, in units of its lease TTL. The half period beyond
the TTL is the safety margin of Gray & Cheriton's leases (SOSP 1989): it absorbs scheduling
delays and a slow heartbeat thread, so a live client that pings every TTL/4 is never reclaimed.
"""
const LEASE_MARGIN = 1.5

"""
    Handle(view, segments)

An array a client placed with `send`: the view validated then, and the names of the client
segments it keeps mapped.
"""
struct Handle
    view::Any
    segments::Vector{String}
end

"""
    Client(id, pid, name, lease_ttl, mod)

A registered client: its id, the pid that owns its segments, an optional display name, its
granted lease TTL (seconds), the module its `eval`s run in, its handles, and its result leases
with the arena their blocks come from.
"""
mutable struct Client
    id::String
    pid::Int
    name::String
    lease_ttl::Float64
    mod::Module
    last_heard::UInt64                 # time_ns() of its last message
    handles::Dict{Int,Handle}
    results::Dict{Int,Tuple{String,Int}}   # result lease id → (arena chunk, block offset)
    arena::Arena
    views::Dict{Tuple{String,Int},Tuple{ArrayRef,Any}}   # by block: its result, sent back and validated once
    unlinked::Vector{String}           # chunks dropped since the client's last reply told it
    next_id::Int                       # handle and lease ids share one counter per client
end

Client(id::String, pid::Int, name::String, lease_ttl::Float64, mod::Module) =
    Client(id, pid, name, lease_ttl, mod, time_ns(), Dict{Int,Handle}(),
           Dict{Int,Tuple{String,Int}}(), Arena(), Dict{Tuple{String,Int},Tuple{ArrayRef,Any}}(),
           String[], 0)

"""
    touch!(client, now=time_ns())

Record that the client was heard from; every message renews all its leases.
"""
touch!(client::Client, now::UInt64 = time_ns()) = (client.last_heard = max(client.last_heard, now); nothing)

"""
    is_expired(client, now) -> Bool

Whether the client has been silent longer than `lease_ttl × LEASE_MARGIN`.
"""
function is_expired(client::Client, now::UInt64)
    now > client.last_heard || return false
    return (now - client.last_heard) / 1e9 > client.lease_ttl * LEASE_MARGIN
end

"""
    silence(client, now) -> Float64

Seconds since the client was last heard from.
"""
silence(client::Client, now::UInt64) = now > client.last_heard ? (now - client.last_heard) / 1e9 : 0.0

"""
    add_handle!(client, view, segments) -> Int

Store a handle and return its id.
"""
function add_handle!(client::Client, view, segments::Vector{String})
    id = client.next_id += 1
    client.handles[id] = Handle(view, segments)
    return id
end

"""
    remove_handle!(client, id) -> Union{Handle,Nothing}

Forget handle `id`; `nothing` if the client has no such handle.
"""
function remove_handle!(client::Client, id::Integer)
    h = get(client.handles, id, nothing)
    h === nothing || delete!(client.handles, id)
    return h
end

"""
    add_result!(client, chunk, offset) -> Int

Lease the block at `offset` in the client's arena chunk `chunk` to the client and return the
lease id.
"""
function add_result!(client::Client, chunk::String, offset::Int)
    id = client.next_id += 1
    client.results[id] = (chunk, offset)
    return id
end

"""
    remove_result!(client, id) -> Union{Tuple{String,Int},Nothing}

End result lease `id` and return its block's chunk and offset; `nothing` if the client holds
no such lease.
"""
function remove_result!(client::Client, id::Integer)
    block = get(client.results, id, nothing)
    block === nothing || delete!(client.results, id)
    return block
end
