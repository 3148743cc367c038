# Every segment an executor has mapped. Segments named in arguments (the client's own, and the
# server's result chunks sent back) are mapped read-only, once each, with a count of their users:
# a running call, a handle, a result view kept for the next time it is sent back. One whose last
# user lets go stays mapped, idle, so that the next call naming it (clients carve their arguments
# out of a few long-lived arena chunks) maps nothing. Caching by name is safe because names are
# random and never reused: a name always means the same memory. At most `IDLE_CAP` idle mappings
# are kept (least recently used go first); the server's `forget` (the client unlinked a segment,
# or the server dropped a chunk) drops them sooner. The result chunks the executor writes are
# mapped read-write until the server drops them; a result sent back as an argument is read
# through that same mapping.

const IDLE_CAP = 16

mutable struct Mapping
    segment::Segment
    users::Int
    gone::Bool      # the server said the segment was unlinked: unmap once idle
end

"""
    Mappings()

An executor's mapped segments, keyed by name.
"""
struct Mappings
    readonly::Dict{String,Mapping}
    idle::Vector{String}                # read-only mappings with no user, least recently used first
    writable::Dict{String,Segment}      # the client's result chunks this executor writes into
end

Mappings() = Mappings(Dict{String,Mapping}(), String[], Dict{String,Segment}())

"""
    acquire!(mappings, name) -> Segment

One more user of segment `name`, mapping it read-only on first use (`InvalidArray` when it does
not exist), unless it is a result chunk this executor maps read-write already. The server
checked that the client may name it.
"""
function acquire!(mappings::Mappings, name::AbstractString)
    seg = get(mappings.writable, name, nothing)
    seg === nothing || return seg
    m = get(mappings.readonly, name, nothing)
    if m === nothing
        seg = map_segment(name; readonly = true)
        mappings.readonly[seg.name] = Mapping(seg, 1, false)
        return seg
    end
    m.users == 0 && filter!(!=(name), mappings.idle)
    m.users += 1
    return m.segment
end

"""
    release!(mappings, name)

One user fewer of segment `name`; the last one leaves it mapped, idle, unless the server said
it is gone.
"""
function release!(mappings::Mappings, name::AbstractString)
    haskey(mappings.writable, name) && return nothing   # a result chunk's mapping: it stays
    m = get(mappings.readonly, name, nothing)
    m === nothing && return nothing
    m.users -= 1
    m.users == 0 || return nothing
    if m.gone
        unmap(pop!(mappings.readonly, name).segment)
    else
        push!(mappings.idle, name)
        length(mappings.idle) > IDLE_CAP && unmap(pop!(mappings.readonly, popfirst!(mappings.idle)).segment)
    end
    return nothing
end

"""
    writable!(mappings, name; populate=false) -> Segment

The read-write mapping of result chunk `name`, mapped on first use (`populate`: every page at
once, for a chunk about to be written whole).
"""
function writable!(mappings::Mappings, name::AbstractString; populate::Bool = false)
    seg = get(mappings.writable, name, nothing)
    seg === nothing || return seg
    seg = map_segment(name; readonly = false, populate = populate)
    mappings.writable[seg.name] = seg
    return seg
end

"""
    forget!(mappings, names)

The segments `names` were unlinked: unmap them now, or, for a read-only mapping still in use,
when its last user lets go.
"""
function forget!(mappings::Mappings, names)
    for name in names
        seg = pop!(mappings.writable, name, nothing)
        seg === nothing || unmap(seg)
        m = get(mappings.readonly, name, nothing)
        m === nothing && continue
        m.gone = true
        if m.users == 0
            filter!(!=(name), mappings.idle)
            unmap(pop!(mappings.readonly, name).segment)
        end
    end
    return nothing
end

"""
    cached_bytes(mappings) -> Int

Bytes of read-only mappings kept while idle (see `IDLE_CAP`).
"""
cached_bytes(mappings::Mappings) =
    mapreduce(name -> mappings.readonly[name].segment.nbytes, +, mappings.idle; init = 0)
