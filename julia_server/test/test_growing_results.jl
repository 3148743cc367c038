# Results that grow with push! (executor/growing_results.jl) outside a call, where they live in
# Julia's memory; and what holds them in a call: sparse segments whose pages are committed range
# by range, a sparse chunk in a result arena, and the server's `growing` and `commit` answers.
# Through the bridge: tests/test_growing_results.py.

using AwkwardBridge: ServerState, register!, Job, Request, lease_sparse_block!, commit_sparse!, ARENA_LINGER_NS,
                     release_results!, end_lingering!, close!, Arena, add_sparse_chunk!, set_committed!,
                     take_block!, block_holding, leased_bytes, chunk_bytes, free_chunk_bytes, sparse_segment, commit_range,
                     decommit_range, map_segment, unmap, unlink, SharedMemoryFull, ProtocolError, PAGE_SIZE,
                     sparse_span

# Bytes of memory segment `name` holds (its allocated blocks, not its size).
held_bytes_of(name) = Int(stat("/dev/shm/$name").blocks) * 512

@testset "growing results in Julia memory" begin
    v = growing_array(Float32)
    append!(v, 1:100)
    push!(v, 0.5)
    @test length(v) == 101 && v[101] === 0.5f0 && sum(v) == 5050.5f0
    v[1] = 7
    @test v[1] == 7f0
    @test_throws BoundsError v[102]

    lists = growing_lists(Int32)
    for i in 1:5
        foreach(k -> push!(lists, k), 1:i-1)
        end_list!(lists)
    end
    @test length(lists) == 5 && collect(lists[1]) == Int32[] && collect(lists[4]) == Int32[1, 2, 3]
    ref = place_array(lists, n -> ("julia", 0, pointer(zeros(UInt8, n))))
    @test ref.length == 5 && occursin("\"ListOffsetArray\"", ref.form)

    jets = growing_lists(pt=Float32, eta=Float32)
    push!(jets, (eta = 1, pt = 2))        # fields by name
    end_list!(jets)
    end_list!(jets)
    @test length(jets) == 2 && jets[1][1] == (pt = 2f0, eta = 1f0) && isempty(jets[2])

    records = growing_records(n=Int8, x=Float64)
    append!(records, [(n = 1, x = 0.5), (n = 2, x = 1.5)])
    @test records[2] == (n = Int8(2), x = 1.5) && records.x == [0.5, 1.5]
    @test eltype(records) == NamedTuple{(:n, :x),Tuple{Int8,Float64}}
    @test_throws ArgumentError growing_array(String)
    @test_throws ArgumentError growing_records()
    @test_throws ArgumentError growing_records(x = 1)   # a value where a type goes
end

@testset "sparse segments commit and give back pages" begin
    name = sparse_segment(64 << 20)
    try
        @test held_bytes_of(name) == 0                  # 64 MiB long, no page held
        commit_range(name, 32 << 20, 1 << 20)
        @test held_bytes_of(name) == 1 << 20
        seg = map_segment(name; readonly = false)
        unsafe_store!(Ptr{UInt64}(seg.ptr + (32 << 20)), 42)
        decommit_range(name, 32 << 20, 1 << 20)
        @test held_bytes_of(name) == 0
        @test unsafe_load(Ptr{UInt64}(seg.ptr + (32 << 20))) == 0       # reading a hole takes a page
        unmap(seg)
        @test_throws SharedMemoryFull commit_range(name, 0, 64 << 40)   # more than /dev/shm has
        @test held_bytes_of(name) <= PAGE_SIZE                           # and nothing half-made
    finally
        unlink(name)
    end
end

@testset "a sparse chunk in a result arena" begin
    arena = Arena()
    add_sparse_chunk!(arena, "akb-1-sparse", 10 * PAGE_SIZE)
    @test leased_bytes(arena) == 0 && chunk_bytes(arena) == 0
    set_committed!(arena, "akb-1-sparse", 3 * PAGE_SIZE)
    @test leased_bytes(arena) == 3 * PAGE_SIZE && chunk_bytes(arena) == 3 * PAGE_SIZE
    @test block_holding(arena, "akb-1-sparse", 9*PAGE_SIZE:10*PAGE_SIZE-1) == 0   # its whole span
    @test take_block!(arena, 64) === nothing         # never shared with other results
    # a buffer spans its limit, at most 64 GiB, and a result 128 GiB in all, in whole pages
    @test sparse_span(2, 1 << 40) == 64 << 30 && sparse_span(3, 1 << 20) == 1 << 20
    @test sparse_span(4096, 1 << 40) == 32 << 20 && sparse_span(1, 5000) == PAGE_SIZE
    @test sparse_span(3, 1 << 40) * 3 <= 128 << 30 && sparse_span(3, 1 << 40) % PAGE_SIZE == 0
end

@testset "the server leases and counts a growing result" begin
    state = ServerState(; lease_ttl = 10.0, client_shm_quota = 1 << 20)
    alice, _ = register!(state, "alice-0001", getpid(), 60.0, "alice", "")
    job = Job(1, UInt8[], Request(1, alice.id, :call, Dict{String,Any}()), alice)
    answer = lease_sparse_block!(state, job, 3)
    name, lease, span = answer["segment"], answer["lease"], answer["span"]
    @test span == 1 << 20                            # a buffer may reach the client's quota
    @test isfile("/dev/shm/$name") && filesize("/dev/shm/$name") == 3 * span && held_bytes_of(name) == 0
    commit_sparse!(state, job, lease, 512 << 10, 0)
    @test leased_bytes(alice.arena) == 512 << 10
    @test_throws SharedMemoryFull commit_sparse!(state, job, lease, 2 << 20, 0)    # past the quota
    commit_sparse!(state, job, lease, 4096, 0)       # trimmed back
    @test leased_bytes(alice.arena) == 4096
    @test_throws ProtocolError commit_sparse!(state, job, lease + 100, 4096, 0)
    @test_throws ProtocolError lease_sparse_block!(state, job, 0)
    @test_throws ProtocolError lease_sparse_block!(state, job, 10_000)
    release_results!(state, alice, [lease])          # its last lease: the chunk lingers, with its pages
    @test isfile("/dev/shm/$name") && leased_bytes(alice.arena) == 0 && chunk_bytes(alice.arena) == 4096
    @test free_chunk_bytes(alice.arena) == 4096     # stats count it as reserve: free, kept for later
    fresh = lease_sparse_block!(state, job, 3)       # with a quota, never reused: its pages would count
    @test fresh["segment"] != name && !haskey(fresh, "reused")
    release_results!(state, alice, [fresh["lease"]])
    end_lingering!(state, time_ns())
    @test isfile("/dev/shm/$name")
    end_lingering!(state, time_ns() + ARENA_LINGER_NS)   # no growing result wanted them: they go
    @test !isfile("/dev/shm/$name") && name in alice.unlinked && chunk_bytes(alice.arena) == 0
    close!(state)

    # without a quota, the next growing result of its shape gets a freed chunk back, pages and all
    state = ServerState(; lease_ttl = 10.0)
    bob, _ = register!(state, "bob-000001", getpid(), 60.0, "bob", "")
    job = Job(2, UInt8[], Request(1, bob.id, :call, Dict{String,Any}()), bob)
    grown = lease_sparse_block!(state, job, 3)
    @test grown["quota"] === false
    commit_sparse!(state, job, grown["lease"], 8192, 0)
    release_results!(state, bob, [grown["lease"]])
    again = lease_sparse_block!(state, job, 3)
    @test again["segment"] == grown["segment"] && again["reused"] === true && leased_bytes(bob.arena) == 8192
    other = lease_sparse_block!(state, job, 2)       # another shape: a chunk of its own
    @test other["segment"] != grown["segment"] && !haskey(other, "reused")
    close!(state)
end
