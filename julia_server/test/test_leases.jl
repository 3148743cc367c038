# Leases and ownership in the server's state, without a socket or an executor: which segments a
# client may name, result blocks leased for a job and taken back, a client's quota, and
# reclaiming everything of a client that went silent.

using AwkwardBridge: ServerState, register!, known_client, expire!, forget!, close!, Job, Request,
                     prepare!, lease_block!, relend!, add_chunk!, release_results!, drop_handles!,
                     result_leases, reserve_segment, segment_pid, unlink, check_token,
                     ArrayRef, BufferRef, LEASE_MARGIN, InvalidArray, UnknownClient, ShuttingDown,
                     SharedMemoryFull, ProtocolError, AuthenticationFailed

const LEASES_FORM = """{"class": "NumpyArray", "primitive": "float64", "form_key": "node0"}"""

array_arg(segment, offset, nbytes) = Dict{String,Any}(
    "\$" => "array", "form" => LEASES_FORM, "length" => nbytes ÷ 8,
    "buffers" => Dict{String,Any}("node0-data" => Any[segment, offset, nbytes]))

job_for(client, op, fields...) =
    Job(1, UInt8[], Request(1, client.id, op, Dict{String,Any}(fields...)), client)

# a result block for `job`, making the chunk when none has room (as the server does)
function leased!(state, job, nbytes)
    got = lease_block!(state, job, nbytes, 0)
    got isa Int || return got
    add_chunk!(state, job.client, reserve_segment(got), got)
    return lease_block!(state, job, nbytes, 0)
end

@testset "leases and ownership" begin
    state = ServerState(; lease_ttl = 10.0)
    alice, reconnected = register!(state, "alice-0001", getpid(), 60.0, "alice", "")
    @test !reconnected
    @test alice.lease_ttl == 10.0                  # capped at the server's TTL
    bob, _ = register!(state, "bob-000001", 1, 1.0, "", "")
    @test bob.lease_ttl == 1.0
    @test length(alice.token) == 32 && alice.token != bob.token
    # a second hello continues a registration only with its token
    @test_throws AuthenticationFailed register!(state, "alice-0001", getpid(), 5.0, "alice", "guess")
    again, reconnected = register!(state, "alice-0001", getpid(), 5.0, "alice", alice.token)
    @test reconnected && again === alice && alice.lease_ttl == 5.0
    @test_throws UnknownClient known_client(state, "nobody-123", "", time_ns())
    # a request speaks for a client only when it shows the token, and a wrong one renews nothing
    heard = alice.last_heard
    @test_throws AuthenticationFailed known_client(state, alice.id, bob.token, heard + 1_000_000_000)
    @test alice.last_heard == heard
    @test known_client(state, alice.id, alice.token, heard + 1_000_000_000) === alice && alice.last_heard > heard
    @test check_token(alice, alice.token) === nothing
    @test_throws AuthenticationFailed check_token(alice, alice.token[1:31])

    # what a client may name: its own segments (by pid, of the server's user) and its result
    # chunks, nothing else
    mine = reserve_segment(64)                     # alice's pid is this process's
    call = job_for(alice, :call, "fn" => "f", "args" => Any[array_arg(mine, 8, 56), 1.5])
    prepare!(call, state, 0)
    @test call.nbytes == 56 && call.run["kind"] == "call" && call.run["args"][2] == 1.5
    @test !haskey(call.run["args"][1], "block")          # not an earlier result
    @test_throws InvalidArray prepare!(job_for(bob, :call, "fn" => "f", "args" => Any[array_arg(mine, 0, 8)]), state, 0)
    @test_throws InvalidArray prepare!(job_for(alice, :call, "fn" => "f", "args" => Any[array_arg("../etc/passwd", 0, 8)]), state, 0)
    @test_throws InvalidArray prepare!(job_for(alice, :call, "fn" => "f",
                                               "args" => Any[Dict{String,Any}("\$" => "handle", "id" => 7)]), state, 0)
    @test_throws ProtocolError prepare!(job_for(alice, :call, "fn" => "f",
                                                "args" => Any[Dict{String,Any}("\$" => "what")]), state, 0)
    if ccall(:getuid, UInt32, ()) == 0   # root can give a segment away: another user's, with alice's pid
        foreign = reserve_segment(64)
        chown("/dev/shm/$foreign", 1)
        err = try prepare!(job_for(alice, :call, "fn" => "f", "args" => Any[array_arg(foreign, 0, 8)]), state, 0) catch e e end
        @test err isa InvalidArray && occursin("belongs to another user", err.msg)
        unlink(foreign)
    end

    # results: a block of the client's arena leased to it; a name only it may use afterwards
    job = job_for(alice, :call)
    block = leased!(state, job, 100)
    name, offset = block["segment"], block["offset"]
    @test isfile("/dev/shm/$name") && segment_pid(name) == getpid() && offset == 0
    @test job.leases == [block["lease"]] && state.owned[name] >= 100
    back = job_for(alice, :call, "fn" => "f", "args" => Any[array_arg(name, 0, 96)])
    prepare!(back, state, 0)
    @test back.run["args"][1]["block"] == Any[name, 0]   # sent back: the executor keeps its view
    @test_throws InvalidArray prepare!(job_for(bob, :call, "fn" => "f", "args" => Any[array_arg(name, 0, 8)]), state, 0)
    @test relend!(state, back, ArrayRef(LEASES_FORM, 12, Dict("node0-data" => BufferRef(name, 0, 96))))["lease"] > 0
    @test relend!(state, back, ArrayRef(LEASES_FORM, 7, Dict("node0-data" => BufferRef(mine, 0, 56)))) ==
          Dict{String,Any}("by_reference" => true)
    @test length(alice.results) == 2                     # the block is held twice
    release_results!(state, alice, [block["lease"], back.leases[1], 999])   # unknown ids are harmless
    @test isempty(alice.results) && isfile("/dev/shm/$name")   # kept as the arena's reserve
    @test leased!(state, job_for(alice, :call), 100)["segment"] == name  # steady state: nothing new
    @test result_leases(Dict{String,Any}("a" => Any[Dict{String,Any}("\$" => "array", "lease" => 5)])) == [5]
    # a block larger than /dev/shm, or one whose size would overflow, is refused, and the arena
    # stays whole for the next result
    for absurd in (typemax(Int), typemax(Int) - 10, last(AwkwardBridge.shm_space()) + 1)
        @test_throws SharedMemoryFull lease_block!(state, job_for(alice, :call), absurd, 0)
    end
    again = leased!(state, job_for(alice, :call), 100)
    @test again["segment"] == name
    release_results!(state, alice, [again["lease"]])
    # only segments its requests named wait for the executor to unmap: made-up names do not pile up
    AwkwardBridge.ServerProcess.forget_segments!(state, alice, [mine, "akb-$(getpid())-$("ab"^16)", "akb-1-$("cd"^16)"])
    @test alice.forgotten.segments == [mine] && !(mine in alice.own_segments)

    # a handle goes by id; its array once per job, only to an executor that has not opened it
    SP = AwkwardBridge.ServerProcess
    held_array = array_arg(mine, 0, 64)
    alice.handles[41] = SP.Handle(AwkwardBridge.array_ref(held_array), 64)
    named = Dict{String,Any}("\$" => "handle", "id" => 41)
    uses = job_for(alice, :call, "fn" => "f", "args" => Any[named, Dict{String,Any}("\$" => "tuple", "items" => Any[named for _ in 1:1000])],
                   "kwargs" => Dict{String,Any}("h" => named))
    prepare!(uses, state, 0)
    @test uses.run["args"][1] == named && uses.run["kwargs"]["h"] == named && all(==(named), uses.run["args"][2]["items"])
    ex = SP.Executor("token", run(`true`; wait = false), alice)
    sent = SP.handle_arrays(uses, ex.handles)                     # a fresh executor: the array, once
    @test length(sent) == 1 && sent[1][1] == 41 && sent[1][2]["buffers"] == held_array["buffers"] &&
          sent[1][2]["form"] == held_array["form"]
    SP.opened_report!(ex, uses, Dict{String,Any}("handles" => Any[41, 99, "x"]))   # 99: not the job's
    @test ex.handles == Set([41])
    @test isempty(SP.handle_arrays(uses, ex.handles))             # held: the id alone
    # arrays too large for one message refuse the job, before anything is sent
    padded = """{"class": "NumpyArray", "primitive": "float64", "form_key": "node0", "parameters": {"pad": "$("x" ^ (1 << 20))"}}"""
    big = Dict{String,Any}()
    for id in 100:160
        alice.handles[id] = SP.Handle(AwkwardBridge.ArrayRef(padded, 8, Dict("node0-data" => AwkwardBridge.BufferRef(mine, 0, 64))), 64)
        big[string(id)] = Dict{String,Any}("\$" => "handle", "id" => id)
    end
    wide = job_for(alice, :call, "fn" => "f", "args" => Any[big])
    prepare!(wide, state, 0)
    @test_throws InvalidArray SP.handle_arrays(wide, ex.handles)
    foreach(id -> delete!(alice.handles, id), 100:160)
    # dropped while a job that opened it ran: its executor forgets it at the next job
    alice.handles[42] = SP.Handle(AwkwardBridge.array_ref(held_array), 64)
    late = job_for(alice, :call, "fn" => "f", "args" => Any[Dict{String,Any}("\$" => "handle", "id" => 42)])
    prepare!(late, state, 0)
    drop_handles!(state, alice, [42])
    SP.opened_report!(ex, late, Dict{String,Any}("handles" => Any[42]))
    @test !(42 in ex.handles) && alice.forgotten.handles == [42]
    # once a forget goes out, a dropped handle is no longer held
    drop_handles!(state, alice, [41])
    @test SP.take_forgotten!(ex)["handles"] == [42, 41] && isempty(ex.handles)
    wait(ex.process)

    # a quota counts handles, results and running arguments
    state.client_shm_quota = 1000
    @test_throws SharedMemoryFull prepare!(job_for(alice, :call, "fn" => "f", "args" => Any[array_arg(mine, 0, 1000)]), state, 0)
    @test_throws SharedMemoryFull leased!(state, job_for(alice, :call), 2000)
    err = try prepare!(job_for(alice, :send, "array" => array_arg(mine, 0, 896)), state, 0) catch e e end
    @test err isa SharedMemoryFull && occursin("quota", err.msg) && occursin("1000 bytes", err.msg)
    state.client_shm_quota = 0
    drop_handles!(state, alice, [1, 2])              # unknown: harmless

    # expiry: a client silent for more than TTL × margin is forgotten with its results
    # (both heard from at `now`: the clock, not this test's run time, decides)
    bobs = leased!(state, job_for(bob, :call), 10)["segment"]
    now = time_ns()
    foreach(c -> known_client(state, c.id, c.token, now), (alice, bob))
    @test isempty(expire!(state, now))
    later = now + round(UInt64, 1.0 * LEASE_MARGIN * 1e9) + 1_000_000
    gone = expire!(state, later)
    @test length(gone) == 1 && gone[1][1] === bob && gone[1][4] == 1
    @test !isfile("/dev/shm/$bobs")
    @test_throws UnknownClient known_client(state, bob.id, bob.token, later)
    @test_throws UnknownClient lease_block!(state, job_for(bob, :call), 10, 0)   # a job still running for it

    # shutdown forgets everyone, unlinks every chunk and refuses new blocks
    close!(state)
    @test !isfile("/dev/shm/$name") && isempty(state.clients) && isempty(state.owned)
    @test_throws ShuttingDown lease_block!(state, job_for(alice, :call), 10, 0)
    unlink(mine)
end
