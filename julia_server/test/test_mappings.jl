# An executor's mappings (executor/mappings.jl): a client's arena chunk stays mapped between
# calls, at most IDLE_CAP idle ones are kept, the server's `forget` drops them (or, for one in
# use, its last user does), and result chunks are mapped read-write once.

using AwkwardBridge: create_segment, unmap, unlink, Mappings, acquire!, release!, writable!, forget!,
                     cached_bytes, IDLE_CAP

# how many times this process maps segment `name` (one line of /proc/pid/maps per mapping)
maps_of(name) = count(line -> endswith(line, name), eachline("/proc/$(getpid())/maps"))

@testset "idle client mappings stay cached" begin
    chunk = create_segment(8192)            # stands for a client's arena chunk
    mappings = Mappings()
    first = acquire!(mappings, chunk.name)
    release!(mappings, chunk.name)
    @test mappings.readonly[chunk.name].users == 0 && cached_bytes(mappings) == 8192
    @test maps_of(chunk.name) == 2          # the creator's mapping and the cached one
    again = acquire!(mappings, chunk.name)  # the next call maps nothing new
    @test again.ptr == first.ptr && maps_of(chunk.name) == 2
    @test mappings.readonly[chunk.name].users == 1 && cached_bytes(mappings) == 0
    forget!(mappings, [chunk.name])         # in use: unmapped when its user lets go
    @test maps_of(chunk.name) == 2
    release!(mappings, chunk.name)
    @test isempty(mappings.readonly) && maps_of(chunk.name) == 1
    unmap(chunk)
    unlink(chunk.name)
end

@testset "at most IDLE_CAP idle mappings, least recently used dropped first" begin
    chunks = [create_segment(4096) for _ in 1:IDLE_CAP + 2]
    mappings = Mappings()
    for c in chunks
        acquire!(mappings, c.name)
    end
    # release in order, but touch the first again so that it is the most recently used
    foreach(c -> release!(mappings, c.name), chunks)
    acquire!(mappings, chunks[1].name)
    release!(mappings, chunks[1].name)
    @test length(mappings.readonly) == IDLE_CAP
    @test !haskey(mappings.readonly, chunks[2].name) && !haskey(mappings.readonly, chunks[3].name)
    @test haskey(mappings.readonly, chunks[1].name) && haskey(mappings.readonly, chunks[end].name)
    @test maps_of(chunks[2].name) == 1      # evicted: only the creator maps it
    forget!(mappings, [c.name for c in chunks])
    @test isempty(mappings.readonly) && isempty(mappings.idle)
    for c in chunks
        unmap(c)
        unlink(c.name)
    end
end

@testset "result chunks are mapped read-write once, until forgotten" begin
    chunk = create_segment(4096)            # stands for a chunk of the server's result arena
    mappings = Mappings()
    seg = writable!(mappings, chunk.name)
    @test seg.writable && writable!(mappings, chunk.name).ptr == seg.ptr && maps_of(chunk.name) == 2
    unsafe_store!(seg.ptr, 0x2a)
    @test unsafe_load(chunk.ptr) == 0x2a    # the same memory
    forget!(mappings, [chunk.name])
    @test isempty(mappings.writable) && maps_of(chunk.name) == 1
    unmap(chunk)
    unlink(chunk.name)
end
