# The server's cache of idle client mappings (shm/segment_table.jl): a client's arena chunk stays
# mapped between calls, at most IDLE_CAP idle ones are kept, and `release.segments`, `bye` and
# expiry drop them.

using AwkwardBridge: create_segment, unmap, unlink, SegmentTable, acquire!, release!, forget_idle!,
                     mapped_bytes, cached_bytes, IDLE_CAP, ServerState, register!, forget!,
                     forget_segments!

# how many times process `pid` maps segment `name` (one line of /proc/pid/maps per mapping)
maps_of(name) = count(line -> endswith(line, name), eachline("/proc/$(getpid())/maps"))

@testset "idle client mappings stay cached" begin
    chunk = create_segment(8192)            # stands for a client's arena chunk
    table = SegmentTable()
    first = acquire!(table, chunk.name)
    release!(table, chunk.name)
    @test mapped_bytes(table) == 0 && cached_bytes(table) == 8192
    @test maps_of(chunk.name) == 2          # the creator's mapping and the table's cached one
    again = acquire!(table, chunk.name)     # the next call maps nothing new
    @test again.ptr == first.ptr && maps_of(chunk.name) == 2
    @test mapped_bytes(table) == 8192 && cached_bytes(table) == 0
    @test forget_idle!(table, _ -> false) == 0   # in use: not dropped
    release!(table, chunk.name)
    @test forget_idle!(table, n -> n != chunk.name) == 1
    @test isempty(table.mappings) && maps_of(chunk.name) == 1
    unmap(chunk)
    unlink(chunk.name)
end

@testset "at most IDLE_CAP idle mappings, least recently used dropped first" begin
    chunks = [create_segment(4096) for _ in 1:IDLE_CAP + 2]
    table = SegmentTable()
    for c in chunks
        acquire!(table, c.name)
    end
    # release in order, but touch the first again so that it is the most recently used
    foreach(c -> release!(table, c.name), chunks)
    acquire!(table, chunks[1].name)
    release!(table, chunks[1].name)
    @test length(table.mappings) == IDLE_CAP
    @test !haskey(table.mappings, chunks[2].name) && !haskey(table.mappings, chunks[3].name)
    @test haskey(table.mappings, chunks[1].name) && haskey(table.mappings, chunks[end].name)
    @test maps_of(chunks[2].name) == 1      # evicted: only the creator maps it
    forget_idle!(table, _ -> false)
    @test isempty(table.mappings)
    for c in chunks
        unmap(c)
        unlink(c.name)
    end
end

@testset "release.segments and bye drop only the client's own cached mappings" begin
    state = ServerState(lease_ttl = 30.0, workers = 1, shared = Module(:arena_test_shared))
    me, _ = register!(state, "arena-me", getpid(), 30.0, "")
    other, _ = register!(state, "arena-other", getpid() + 1, 30.0, "")
    mine = [create_segment(4096) for _ in 1:2]
    for c in mine
        acquire!(state.segments, c.name)
        release!(state.segments, c.name)
    end
    @test cached_bytes(state.segments) == 8192
    forget_segments!(state, other, [mine[1].name])   # not its segment: ignored
    @test cached_bytes(state.segments) == 8192
    forget_segments!(state, me, [mine[1].name])
    @test cached_bytes(state.segments) == 4096 && maps_of(mine[1].name) == 1
    forget!(state, other)
    @test cached_bytes(state.segments) == 4096
    forget!(state, me)                                # bye
    @test isempty(state.segments.mappings)
    for c in mine
        unmap(c)
        unlink(c.name)
    end
end
