# What the server holds for each client (docs/ownership.md): the handles it placed with `send`
# (the server holds a lease on the client's segments) and the results it was sent (the client
# holds a lease on the server's segments), with the monotonic time it was last heard from. The
# views themselves live in the client's executor; the server keeps where the arrays are.

"""
Silence after which a client is forgotten, in units of its lease TTL. The half period beyond
the TTL is the safety margin of Gray & Cheriton's leases (SOSP 1989): it absorbs scheduling
delays and a slow heartbeat thread, so a live client that pings every TTL/4 is never reclaimed.
"""
const LEASE_MARGIN = 1.5

"""
    Handle(ref, nbytes)

An array a client placed with `send`: where its buffers are, and how many bytes they hold.
"""
struct Handle
    ref::ArrayRef
    nbytes::Int
end

"""
    Forgotten()

What a client's executor must forget before its next job: dropped handles, freed result blocks
(whose views it keeps for when they are sent back), segments that no longer exist, and the
functions the client dropped.
"""
struct Forgotten
    handles::Vector{Int}
    blocks::Vector{Tuple{String,Int}}
    segments::Vector{String}
    functions::Vector{Int}
end

Forgotten() = Forgotten(Int[], Tuple{String,Int}[], String[], Int[])

Base.isempty(f::Forgotten) = isempty(f.handles) && isempty(f.blocks) && isempty(f.segments) && isempty(f.functions)

"""
    Client(id, pid, name, lease_ttl)

A registered client: its id, the pid that owns its segments, an optional display name, its
granted lease TTL (seconds), the secret token every request of it shows, its handles, and its
result leases with the arena their blocks come from.
"""
mutable struct Client
    id::String
    pid::Int
    name::String
    lease_ttl::Float64
    token::String
    last_heard::UInt64                 # time_ns() of its last message
    handles::Dict{Int,Handle}
    results::Dict{Int,Tuple{String,Int}}   # result lease id → (arena chunk, block offset)
    arena::Arena
    unlinked::Vector{String}           # chunks dropped since the client's last reply told it
    forgotten::Forgotten               # for its executor, before its next job
    own_segments::Set{String}          # its segments the server checked belong to the server's user
    next_id::Int                       # handle and lease ids share one counter per client
    told_threads::Bool                 # warned that its executor has fewer threads than asked
    last_result_bytes::Int             # the block its last `alloc` took: what the next job is offered
    executor_ended::String             # when and why its last executor ended, "" while none has
end

Client(id::String, pid::Int, name::String, lease_ttl::Float64) =
    Client(id, pid, name, lease_ttl, random_token(), time_ns(), Dict{Int,Handle}(),
           Dict{Int,Tuple{String,Int}}(), Arena(), String[], Forgotten(), Set{String}(), 0, false, 0, "")

"""
    random_token() -> String

128 random bits in hex, from the operating system.
"""
random_token() = string(rand(RandomDevice(), UInt128), base = 16, pad = 32)

"""
    check_token(client, token)

`AuthenticationFailed` unless `token` is the client's: a request speaks for a client only when it
shows the token its `hello` returned. The comparison takes the same time whatever the token.
"""
function check_token(client::Client, token::String)
    same = sizeof(token) == sizeof(client.token)
    for (a, b) in zip(codeunits(token), codeunits(client.token))
        same &= a == b
    end
    same && return nothing
    throw(AuthenticationFailed("this request does not show client $(short_id(client.id))'s token"))
end

"""
    label(client) -> String

How the log and `stats` name a client: the start of its id, and its name if it gave one.
"""
label(c::Client) = isempty(c.name) ? short_id(c.id) : "$(short_id(c.id)) ($(c.name))"

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
    new_id!(client) -> Int

A fresh handle or lease id of the client.
"""
new_id!(client::Client) = client.next_id += 1

"""
    add_result!(client, chunk, offset) -> Int

Lease the block at `offset` in the client's arena chunk `chunk` to the client and return the
lease id.
"""
function add_result!(client::Client, chunk::String, offset::Int)
    id = new_id!(client)
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

"""
    handle_bytes(client) -> Int

Bytes of shared memory the client's handles hold.
"""
handle_bytes(client::Client) = mapreduce(h -> h.nbytes, +, values(client.handles); init = 0)
