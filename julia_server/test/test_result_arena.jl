# The bookkeeping of a client's result arena (shm/arena.jl): blocks are 64-byte aligned and
# reused, free neighbours coalesce, chunks grow and are kept up to the reserve, then linger.

using AwkwardBridge: Arena, take_block!, chunk_size!, add_chunk!, free_block!, end_lingering!, has_chunk,
                     share_block!, take_chunks!, block_size, free_chunk_bytes, leased_bytes, chunk_bytes,
                     ARENA_MIN_CHUNK, ARENA_MAX_CHUNK, ARENA_RESERVE, ARENA_LINGER_NS

# The arena only keeps books: chunks are names and sizes, no segment exists.

@testset "result arena" begin
    @test block_size(1) == 64 && block_size(64) == 64 && block_size(65) == 128
    @test_throws OverflowError block_size(typemax(Int))   # never a negative block

    arena = Arena()
    t0 = UInt64(1_000)
    @test take_block!(arena, 64) === nothing                 # no chunk yet
    @test chunk_size!(arena, 64) == ARENA_MIN_CHUNK
    add_chunk!(arena, "a", ARENA_MIN_CHUNK)
    @test has_chunk(arena, "a") && !has_chunk(arena, "b")
    blocks = [take_block!(arena, 128)[2] for _ in 1:3]
    @test blocks == [0, 128, 256]
    @test leased_bytes(arena) == 3 * 128 && chunk_bytes(arena) == ARENA_MIN_CHUNK

    # freeing the middle, then its neighbours, coalesces back to one whole free chunk
    @test free_block!(arena, "a", 128, t0) === nothing
    @test take_block!(arena, 64)[2] == 128                   # first fit reuses the hole
    @test free_block!(arena, "a", 128, t0) === nothing
    @test free_block!(arena, "a", 0, t0) === nothing
    @test free_block!(arena, "a", 256, t0) === nothing           # empty, kept as the reserve
    @test arena.chunks[1].free == [0:ARENA_MIN_CHUNK-1]
    @test_throws KeyError free_block!(arena, "a", 256, t0)       # freed twice

    # a block leased twice is given back by the second release only
    @test take_block!(arena, 128)[2] == 0
    @test share_block!(arena, "a", 8:100) == 0
    @test share_block!(arena, "a", 100:200) === nothing       # beyond the block
    @test share_block!(arena, "b", 0:8) === nothing
    @test free_block!(arena, "a", 0, t0) === nothing && haskey(arena.used, ("a", 0))
    @test free_block!(arena, "a", 0, t0) === nothing && isempty(arena.used)

    # growth doubles up to the largest chunk; a larger block gets a dedicated chunk
    @test chunk_size!(arena, 64) == 2 * ARENA_MIN_CHUNK
    @test chunk_size!(arena, 3 * ARENA_MIN_CHUNK) == 4 * ARENA_MIN_CHUNK
    @test chunk_size!(arena, 20 * ARENA_MIN_CHUNK) == 20 * ARENA_MIN_CHUNK   # its own, exactly
    @test chunk_size!(arena, 64) == 8 * ARENA_MIN_CHUNK
    while chunk_size!(arena, 64) < ARENA_MAX_CHUNK end
    @test chunk_size!(arena, 64) == ARENA_MAX_CHUNK                      # growth stops
    big = ARENA_RESERVE + 64

    # a chunk left empty beyond the reserve lingers for a block of at least half its size, then
    # is handed back to be dropped
    @test take_block!(arena, big) === nothing
    add_chunk!(arena, "big", big)
    @test take_block!(arena, big) == ("big", 0)
    @test free_block!(arena, "big", 0, t0) === nothing && has_chunk(arena, "big")
    @test free_chunk_bytes(arena) == ARENA_MIN_CHUNK + big
    @test take_block!(arena, 64)[1] == "a"              # a small block never pins it
    @test free_block!(arena, "a", 0, t0) === nothing
    @test take_block!(arena, big ÷ 2)[1] == "big"       # reused, it stops lingering
    @test isempty(end_lingering!(arena, t0 + 2ARENA_LINGER_NS))
    later = t0 + ARENA_LINGER_NS
    @test free_block!(arena, "big", 0, later) === nothing
    @test isempty(end_lingering!(arena, later + ARENA_LINGER_NS - 1))
    @test end_lingering!(arena, later + ARENA_LINGER_NS) == ["big"]
    @test !has_chunk(arena, "big") && has_chunk(arena, "a")  # within the reserve: kept

    # a forgotten client's arena hands back every chunk
    @test take_chunks!(arena) == ["a"]
    @test isempty(arena.chunks) && take_block!(arena, 64) === nothing
end
