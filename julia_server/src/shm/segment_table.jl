# Every segment the server has mapped, once each, with a count of its users: a client segment
# named by a call's argument and by a handle is mapped once and unmapped when the last of them
# lets go; a server-owned segment has its result lease as one user, and a worker writing into it
# as another, so a client that vanishes mid-write cannot pull the memory from under the writer.
# The table is not thread-safe; the server guards it with its state lock.
#
# A client segment whose last user lets go stays mapped, idle, so that the next call naming it
# (clients carve their arguments out of a few long-lived arena chunks) maps nothing. Caching by
# name is safe because names are random and never reused: a name always means the same memory.
# At most `IDLE_CAP` idle mappings are kept (least recently used go first); the client's
# `release.segments` and its `bye` or expiry drop them sooner.

const IDLE_CAP = 16

mutable struct Mapping
    segment::Segment
    users::Int
    owned::Bool      # created by this server
    linked::Bool     # still has its name in /dev/shm (owned segments only)
end

"""
    SegmentTable()

The server's mapped segments, keyed by name.
"""
struct SegmentTable
    mappings::Dict{String,Mapping}
    idle::Vector{String}   # client segments with no user, least recently used first
end

SegmentTable() = SegmentTable(Dict{String,Mapping}(), String[])

"""
    acquire!(table, name) -> Segment

One more user of segment `name`, mapping it read-only on first use. Check the caller may name
it before calling (see `ServerState`).
"""
function acquire!(table::SegmentTable, name::AbstractString)
    m = get(table.mappings, name, nothing)
    if m === nothing
        seg = map_segment(name; readonly = true)
        table.mappings[seg.name] = Mapping(seg, 1, false, false)
        return seg
    end
    m.users == 0 && filter!(!=(name), table.idle)
    m.users += 1
    return m.segment
end

"""
    add_owned!(table, seg::Segment, users=1)

Record a segment this server created, with `users` users.
"""
function add_owned!(table::SegmentTable, seg::Segment, users::Int = 1)
    table.mappings[seg.name] = Mapping(seg, users, true, true)
    return nothing
end

"""
    release!(table, name)

One user fewer of segment `name`. The last one unmaps a server-owned segment; a client
segment stays mapped, idle, until evicted (`IDLE_CAP`) or forgotten (`forget_idle!`).
"""
function release!(table::SegmentTable, name::AbstractString)
    m = table.mappings[name]
    m.users -= 1
    m.users == 0 || return nothing
    if m.owned
        drop_mapping!(table, name)
    else
        push!(table.idle, name)
        length(table.idle) > IDLE_CAP && drop_mapping!(table, popfirst!(table.idle))
    end
    return nothing
end

function drop_mapping!(table::SegmentTable, name::AbstractString)
    m = pop!(table.mappings, name)
    unmap(m.segment)
    return nothing
end

"""
    forget_idle!(table, keep_mapped) -> Int

Unmap every idle client mapping whose name `keep_mapped(name)` is false (a client unlinked the
segment, said `bye`, or expired); mappings in use are untouched. Returns how many went.
"""
function forget_idle!(table::SegmentTable, keep_mapped)
    gone = filter(name -> !keep_mapped(name), table.idle)
    filter!(keep_mapped, table.idle)
    foreach(name -> drop_mapping!(table, name), gone)
    return length(gone)
end

"""
    unlink_owned!(table, name)

Remove the name of a segment this server created from `/dev/shm`; it stays mapped for its
remaining users.
"""
function unlink_owned!(table::SegmentTable, name::AbstractString)
    m = table.mappings[name]
    if m.owned && m.linked
        unlink(name)
        m.linked = false
    end
    return nothing
end

"""
    unlink_all_owned!(table)

Unlink every segment this server still has a name for (shutdown).
"""
function unlink_all_owned!(table::SegmentTable)
    for name in collect(keys(table.mappings))
        unlink_owned!(table, name)
    end
    return nothing
end

"""
    is_owned(table, name) -> Bool

Whether `name` is a segment this server created and still maps.
"""
function is_owned(table::SegmentTable, name::AbstractString)
    m = get(table.mappings, name, nothing)
    return m !== nothing && m.owned
end

"""
    owned_bytes(table) -> Int

Bytes of the segments this server created and still maps.
"""
owned_bytes(table::SegmentTable) =
    mapreduce(m -> m.owned ? m.segment.nbytes : 0, +, values(table.mappings); init = 0)

"""
    mapped_bytes(table) -> Int

Bytes of client segments mapped and in use (by a handle or a running request).
"""
mapped_bytes(table::SegmentTable) =
    mapreduce(m -> m.owned || m.users == 0 ? 0 : m.segment.nbytes, +, values(table.mappings); init = 0)

"""
    cached_bytes(table) -> Int

Bytes of client segments kept mapped while idle (see `IDLE_CAP`).
"""
cached_bytes(table::SegmentTable) =
    mapreduce(name -> table.mappings[name].segment.nbytes, +, table.idle; init = 0)
