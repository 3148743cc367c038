# One client's result arena: server-owned segments ("chunks") carved into 64-byte aligned
# blocks, one block per result, the mirror of the client's bridge/shm/arena.py. A segment per result
# cost both sides a create, a reserve and a map at every call (docs/performance.md); with the
# arena a result in steady state creates and maps nothing, since the client caches its mapping
# of each chunk by name (names are random and never reused, so a name always means the same
# memory).
#
# Each client has its own arena, so a client can name only chunks holding its own results (and
# free space it used before): isolation between clients is by whole segments.
# Chunks grow geometrically (`ARENA_MIN_CHUNK` doubling to `ARENA_MAX_CHUNK`); a result larger
# than the next chunk gets a chunk of its own size, so a 40 MB result takes 40 MB, not 64 MiB.
# Freed blocks coalesce with their free neighbours; a chunk left entirely free is kept while the
# client's entirely-free chunks total at most `ARENA_RESERVE`. The reserve is per client, and a
# farm has many, so it is smaller than a client arena's. Beyond it a free chunk lingers for
# `ARENA_LINGER_NS`, for a block of at least half its size only, as in bridge/shm/arena.py: making a
# large segment's pages costs far more than writing them, and a function called in a loop
# returns results of one size again and again. The arena only does the bookkeeping: creating
# and unlinking chunks is the server's (server/state.jl), and writing into them the client's
# executor's. Not thread-safe; the server guards it with its state lock.

const ARENA_ALIGNMENT = 64
const ARENA_MIN_CHUNK = 1 << 20
const ARENA_MAX_CHUNK = 64 << 20
const ARENA_RESERVE = 16 << 20
const ARENA_LINGER_NS = UInt64(5_000_000_000)

"""
    Chunk(name, nbytes, sparse = false)

One chunk of an arena: its segment's name and size, its free ranges (sorted by offset and never
adjacent), and, while it is entirely free beyond the reserve, the `time_ns()` at which it stops
lingering (else 0). A `sparse` chunk holds one growing result (`add_sparse_chunk!`): it is one
block from the start and holds only the pages committed to it; freed, it lingers with the pages
its last result `kept`, for the next growing result of its shape (`take_sparse_chunk!`).
"""
mutable struct Chunk
    name::String
    nbytes::Int
    free::Vector{UnitRange{Int}}
    lingers_until::UInt64
    sparse::Bool
    kept::Int
end

Chunk(name::String, nbytes::Int, sparse::Bool = false) =
    Chunk(name, nbytes, sparse ? UnitRange{Int}[] : [0:nbytes-1], 0, sparse, 0)

is_lingering(c::Chunk) = c.lingers_until != 0

is_empty(c::Chunk) = length(c.free) == 1 && c.free[1] == 0:c.nbytes-1

"""
    LeasedBlock(size, leases, span = size)

A block handed out: the bytes it holds, how many result leases hold it (a result sent back to
Julia and returned unchanged is leased again, not copied), and the bytes of its chunk it spans
(more than it holds for a sparse chunk's block, which holds only its committed pages).
"""
mutable struct LeasedBlock
    size::Int
    leases::Int
    span::Int
end

LeasedBlock(size::Int, leases::Int) = LeasedBlock(size, leases, size)

"""
    Arena()

A client's result chunks, oldest first, and the blocks handed out from them.
"""
mutable struct Arena
    chunks::Vector{Chunk}
    used::Dict{Tuple{String,Int},LeasedBlock}   # by (chunk name, offset)
    next_chunk::Int                       # size of the next chunk that is not a dedicated one
end

Arena() = Arena(Chunk[], Dict{Tuple{String,Int},LeasedBlock}(), ARENA_MIN_CHUNK)

"""
    round_up(nbytes, step) -> Int

`nbytes` rounded up to a multiple of `step`; `OverflowError` beyond `typemax(Int)`, never a
size that wrapped around.
"""
round_up(nbytes::Integer, step::Int) = Base.Checked.checked_mul(cld(Int(nbytes), step), step)

"""
    block_size(nbytes) -> Int

`nbytes` rounded up to the block alignment.
"""
block_size(nbytes::Integer) = round_up(nbytes, ARENA_ALIGNMENT)

"""
    take_block!(arena, size) -> Union{Nothing,Tuple{String,Int}}

A block of `size` bytes (a multiple of 64) from the first chunk with room: its chunk's name and
its offset; `nothing` when no chunk has room (see `chunk_size!`, `add_chunk!`).
"""
function take_block!(arena::Arena, size::Int)
    for chunk in arena.chunks
        (chunk.sparse || is_lingering(chunk) && 2 * size < chunk.nbytes) && continue
        for (i, range) in enumerate(chunk.free)
            length(range) >= size || continue
            offset = first(range)
            if length(range) == size
                deleteat!(chunk.free, i)
            else
                chunk.free[i] = offset+size:last(range)
            end
            arena.used[(chunk.name, offset)] = LeasedBlock(size, 1)
            chunk.lingers_until = 0
            return chunk.name, offset
        end
    end
    return nothing
end

"""
    chunk_size!(arena, size) -> Int

The size of a new chunk for a block of `size` bytes, growing the arena's next chunk size.
"""
function chunk_size!(arena::Arena, size::Int)
    size > arena.next_chunk && return size   # a chunk of its own
    chosen = arena.next_chunk
    arena.next_chunk = min(2 * arena.next_chunk, ARENA_MAX_CHUNK)
    return chosen
end

"""
    add_chunk!(arena, name, nbytes)

Make a new, entirely free segment of `nbytes` bytes one of the arena's chunks.
"""
add_chunk!(arena::Arena, name::String, nbytes::Int) = (push!(arena.chunks, Chunk(name, nbytes)); nothing)

"""The most buffers (fields) one growing result may have, each a region of its sparse chunk."""
const MAX_GROWING_BUFFERS = 4096

"""
The most growing results one call may have. Each maps up to 128 GiB of address space in the
executor (docs/ownership.md), and 256 stay well inside the 128 TiB a process has; each is a
segment of the server's, so the server refuses more too.
"""
const MAX_GROWING_PER_CALL = 256
# Every process that maps a growing result takes its whole chunk's length of address space, and
# a process has 128 TiB: at most 128 GiB a chunk lets a client keep a thousand results alive.
const MAX_SPARSE_CHUNK = 128 << 30
const MAX_SPARSE_SPAN = 64 << 30

"""
    sparse_span(buffers, limit) -> Int

How far apart the `buffers` regions of a growing result's sparse chunk are, so what each may
hold: `limit` (the client's quota, or all of `/dev/shm`), at most 64 GiB, and at most 128 GiB
for all of them together; whole pages.
"""
sparse_span(buffers::Int, limit::Int) =
    max(PAGE_SIZE, fld(min(limit, MAX_SPARSE_SPAN, MAX_SPARSE_CHUNK ÷ buffers), PAGE_SIZE) * PAGE_SIZE)

"""
    add_sparse_chunk!(arena, name, nbytes)

Make sparse segment `name` of `nbytes` bytes one of the arena's chunks, handed out whole as one
block (at offset 0) that holds no bytes until some are committed (`set_committed!`).
"""
function add_sparse_chunk!(arena::Arena, name::String, nbytes::Int)
    push!(arena.chunks, Chunk(name, nbytes, true))
    arena.used[(name, 0)] = LeasedBlock(0, 1, nbytes)
    return nothing
end

"""
    take_sparse_chunk!(arena, nbytes) -> Union{Nothing,String}

The name of a freed sparse chunk of `nbytes` bytes (a growing result's shape: its buffers and
their span), handed out whole again as one block that holds the pages it kept; `nothing` when
none lingers.
Its pages are written already, and the executor still maps them: a result grown there again
takes no new memory up to their size.
"""
function take_sparse_chunk!(arena::Arena, nbytes::Int)
    i = findfirst(c -> c.sparse && is_lingering(c) && c.nbytes == nbytes, arena.chunks)
    i === nothing && return nothing
    chunk = arena.chunks[i]
    chunk.lingers_until = 0
    arena.used[(chunk.name, 0)] = LeasedBlock(chunk.kept, 1, nbytes)
    return chunk.name
end

"""
    set_committed!(arena, name, nbytes)

The block of sparse chunk `name` now holds `nbytes` bytes (its committed pages): what the
quota and `stats` count for it.
"""
set_committed!(arena::Arena, name::String, nbytes::Int) = (arena.used[(name, 0)].size = nbytes; nothing)

"""
    has_chunk(arena, name) -> Bool

Whether segment `name` is one of the arena's chunks.
"""
has_chunk(arena::Arena, name::AbstractString) = any(c -> c.name == name, arena.chunks)

"""
    block_holding(arena, name, bytes) -> Union{Nothing,Int}

The offset of the block handed out from chunk `name` that holds the byte range `bytes`;
`nothing` when no single block holds them.
"""
function block_holding(arena::Arena, name::String, bytes::UnitRange{Int})
    for ((chunk, offset), block) in arena.used
        chunk == name && offset <= first(bytes) && last(bytes) < offset + block.span && return offset
    end
    return nothing
end

"""
    is_held(arena, name, offset) -> Bool

Whether the block at `offset` in chunk `name` is handed out.
"""
is_held(arena::Arena, name::String, offset::Int) = haskey(arena.used, (name, offset))

"""
    share_block!(arena, name, bytes) -> Union{Nothing,Int}

Like `block_holding`, and the block is then held by one more lease.
"""
function share_block!(arena::Arena, name::String, bytes::UnitRange{Int})
    offset = block_holding(arena, name, bytes)
    offset === nothing || (arena.used[(name, offset)].leases += 1)
    return offset
end

"""
    free_block!(arena, name, offset, now)

End one lease on the block at `offset` in chunk `name`; the last one gives the block back. A
chunk that this leaves free beyond the reserve lingers until `now + ARENA_LINGER_NS`
(`end_lingering!`).
"""
function free_block!(arena::Arena, name::String, offset::Int, now::UInt64)
    block = arena.used[(name, offset)]
    block.leases -= 1
    block.leases == 0 || return nothing
    delete!(arena.used, (name, offset))
    chunk = arena.chunks[findfirst(c -> c.name == name, arena.chunks)]
    if chunk.sparse   # kept, with its pages, for a next growing result of its shape
        chunk.kept = block.size
        chunk.lingers_until = now + ARENA_LINGER_NS
        return nothing
    end
    give!(chunk, offset:offset+block.size-1)
    linger_if_spare!(arena, chunk, now)
    return nothing
end

"""
    linger_if_spare!(arena, chunk, now)

Let `chunk` (or the chunk named so) linger until `now + ARENA_LINGER_NS` when it is entirely
free and the arena's free chunks exceed the reserve without it (`end_lingering!` then drops it).
"""
function linger_if_spare!(arena::Arena, chunk::Chunk, now::UInt64)
    (is_empty(chunk) && reserved_bytes(arena) > ARENA_RESERVE) && (chunk.lingers_until = now + ARENA_LINGER_NS)
    return nothing
end
linger_if_spare!(arena::Arena, name::String, now::UInt64) =
    linger_if_spare!(arena, arena.chunks[findfirst(c -> c.name == name, arena.chunks)], now)

"""
    end_lingering!(arena, now) -> Vector{String}

The names of the chunks whose lingering is over at `now`, which are no longer the arena's: the
caller drops them.
"""
function end_lingering!(arena::Arena, now::UInt64)
    over = filter(c -> is_lingering(c) && c.lingers_until <= now, arena.chunks)
    filter!(c -> !(c in over), arena.chunks)
    return [c.name for c in over]
end

function give!(chunk::Chunk, range::UnitRange{Int})
    free = chunk.free
    i = searchsortedfirst(free, range; by = first)
    if i <= length(free) && first(free[i]) == last(range) + 1
        range = first(range):last(free[i])
        deleteat!(free, i)
    end
    if i > 1 && last(free[i-1]) + 1 == first(range)
        free[i-1] = first(free[i-1]):last(range)
    else
        insert!(free, i, range)
    end
    return nothing
end

"""
    free_chunk_bytes(arena) -> Int

Bytes of the arena's entirely free chunks, lingering ones included (of a freed sparse chunk,
the pages it kept).
"""
free_chunk_bytes(arena::Arena) =
    mapreduce(c -> is_empty(c) ? c.nbytes : c.sparse && is_lingering(c) ? c.kept : 0, +, arena.chunks; init = 0)

# The entirely free chunks the reserve keeps (lingering ones are on top of it).
reserved_bytes(arena::Arena) =
    mapreduce(c -> is_empty(c) && !is_lingering(c) ? c.nbytes : 0, +, arena.chunks; init = 0)

"""
    leased_bytes(arena) -> Int

Bytes of the blocks handed out: what the client's results hold (the quota counts these).
"""
leased_bytes(arena::Arena) = mapreduce(b -> b.size, +, values(arena.used); init = 0)

"""
    chunk_bytes(arena) -> Int

Bytes of all the arena's chunks, free space included; of a sparse chunk, the bytes its result
holds as the server last heard (its committed pages).
"""
chunk_bytes(arena::Arena) = mapreduce(c -> c.sparse ? sparse_bytes(arena, c) : c.nbytes, +, arena.chunks; init = 0)

sparse_bytes(arena::Arena, c::Chunk) = (block = get(arena.used, (c.name, 0), nothing); block === nothing ? c.kept : block.size)

"""
    take_chunks!(arena) -> Vector{String}

Every chunk's name, the arena left empty (its client is forgotten).
"""
function take_chunks!(arena::Arena)
    names = [c.name for c in arena.chunks]
    empty!(arena.chunks)
    empty!(arena.used)
    return names
end
