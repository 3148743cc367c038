# Leases and ownership in the server's state, without a socket: which segments a client may
# name, pinning during a request, and reclaiming everything of a client that went silent.

using AwkwardBridge: ServerState, register!, known_client, expire!, forget!, stats, Scope,
                     resolve!, allocate!, finish!, store_handle!, handle_view!, drop_handles!,
                     release_results!, close!, BufferRef, LEASE_MARGIN, create_segment, unmap,
                     unlink, InvalidArray, UnknownClient, ShuttingDown

@testset "leases and ownership" begin
    state = ServerState(; lease_ttl = 10.0, workers = 1, shared = Module())
    alice, reconnected = register!(state, "alice-0001", getpid(), 60.0, "alice")
    @test !reconnected
    @test alice.lease_ttl == 10.0                  # capped at the server's TTL
    bob, _ = register!(state, "bob-000001", 1, 1.0, "")
    @test bob.lease_ttl == 1.0
    again, reconnected = register!(state, "alice-0001", getpid(), 5.0, "alice")
    @test reconnected && again === alice && alice.lease_ttl == 5.0
    @test_throws UnknownClient known_client(state, "nobody-123", time_ns())

    mine = create_segment(64)                      # alice's pid is this process's
    try
        scope = Scope(state, alice)
        p = resolve!(scope, BufferRef(mine.name, 8, 56))
        @test p == state.segments.mappings[mine.name].segment.ptr + 8
        @test_throws InvalidArray resolve!(scope, BufferRef(mine.name, 8, 57))       # past the end
        @test_throws InvalidArray resolve!(scope, BufferRef(mine.name, typemax(Int), 1))
        @test_throws InvalidArray resolve!(Scope(state, bob), BufferRef(mine.name, 0, 8))  # not bob's
        @test_throws InvalidArray resolve!(scope, BufferRef("../etc/passwd", 0, 1))

        # a handle keeps alice's segment mapped after the request ends; dropping it unmaps
        id = store_handle!(scope, :the_view)
        finish!(scope; failed = false)
        @test stats(state)["handles"] == 1 && stats(state)["mapped_bytes"] == mine.nbytes
        call = Scope(state, alice)
        @test handle_view!(call, id) === :the_view
        drop_handles!(state, alice, [id, id, 999])  # unknown ids and repeats are harmless
        @test stats(state)["mapped_bytes"] == mine.nbytes   # the running call still pins it
        finish!(call; failed = false)
        @test stats(state)["mapped_bytes"] == 0
        @test_throws InvalidArray handle_view!(Scope(state, alice), id)

        # results: a block of the client's arena, visible to its client only; a failed request
        # takes its leases back; a released block is reused, and its chunk kept, not unlinked
        scope = Scope(state, alice)
        name, offset, ptr = allocate!(scope, 100)
        lease = scope.leases[end]
        finish!(scope; failed = false)
        @test isfile("/dev/shm/$name") && offset == 0
        chunk_bytes = stats(state)["shm_bytes"]
        @test stats(state)["leases"] == 1 && chunk_bytes >= 100
        reader = Scope(state, alice)
        @test resolve!(reader, BufferRef(name, 0, 100)) == ptr
        finish!(reader; failed = false)
        @test_throws InvalidArray resolve!(Scope(state, bob), BufferRef(name, 0, 100))
        failed = Scope(state, alice)
        lost, lost_offset, _ = allocate!(failed, 10)
        @test lost == name && lost_offset == 128       # the next free 64-byte aligned block
        finish!(failed; failed = true)
        @test stats(state)["leases"] == 1
        release_results!(state, alice, [lease])
        @test isfile("/dev/shm/$name") && stats(state)["leases"] == 0
        @test stats(state)["shm_bytes"] == chunk_bytes  # kept as the arena's free reserve
        again = Scope(state, alice)
        @test allocate!(again, 100)[1:2] == (name, 0)   # steady state: nothing new created
        finish!(again; failed = true)
    finally
        unmap(mine)
        unlink(mine.name)
    end

    # expiry: a client silent for more than TTL × margin is forgotten with its results
    scope = Scope(state, bob)
    name, _, _ = allocate!(scope, 10)
    finish!(scope; failed = false)
    now = time_ns()
    @test isempty(expire!(state, now))
    later = bob.last_heard + round(UInt64, 1.0 * LEASE_MARGIN * 1e9) + 1_000_000
    gone = expire!(state, later)
    @test length(gone) == 1 && gone[1][1] === bob && gone[1][4] == 1
    @test !isfile("/dev/shm/$name")
    @test_throws UnknownClient known_client(state, bob.id, later)
    @test_throws UnknownClient allocate!(Scope(state, bob), 10)   # a request still running for it

    # shutdown forgets everyone and refuses new segments
    scope = Scope(state, alice)
    name, _, _ = allocate!(scope, 10)
    finish!(scope; failed = false)
    close!(state)
    @test !isfile("/dev/shm/$name") && isempty(state.clients)
    @test_throws ShuttingDown allocate!(Scope(state, alice), 10)
end
