# The whole server in this process: `serve` in a task on an ipc:// socket in a temporary
# directory (its executors are child processes), driven by DEALER clients over the same ZeroMQ
# layer. Covers every operation, the bridge's errors, malformed frames, lease expiry and a
# graceful shutdown by interrupt; at the end nothing the server or the test made may be left in
# /dev/shm.

using AwkwardBridge: serve, create_segment, map_segment, unmap, unlink, pack

const FLOAT64_FORM = """{"class": "NumpyArray", "primitive": "float64", "form_key": "node0"}"""

server_segments() = Set(filter(n -> startswith(n, "akb-$(getpid())-"), readdir("/dev/shm")))

array_value(segment, offset, n) = Dict{String,Any}(
    "\$" => "array", "form" => FLOAT64_FORM, "length" => n,
    "buffers" => Dict{String,Any}("node0-data" => Any[segment, offset, 8n]))

error_of(reply) = (@test reply["ok"] === false; reply["error"])

function wait_until(condition; timeout = 10.0)
    return timedwait(condition, timeout; pollint = 0.02) === :ok
end

@testset "in-process server" begin
    before = server_segments()
    dir = mktempdir()
    address = "ipc://$dir/bridge.sock"
    shared = joinpath(dir, "shared.jl")
    write(shared, "shared_double(x) = 2x\n")
    # test clients send no heartbeats: the lease TTL must outlast an executor's start-up
    server = @async serve(; address = address, lease_ttl = 10.0, libzmq = TEST_LIBZMQ, includes = [shared])
    ctx = Context()
    c = TestClient(ctx, address; id = "runtests-client-1")
    c2 = TestClient(ctx, address; id = "runtests-client-2")
    mine = create_segment(80)       # the client's own segment (same pid: it is this process)
    try
        @test error_of(request(c, "ping"))["type"] == "UnknownClient"
        hello = result(c, "hello"; pid = getpid(), lease_ttl = 60.0, name = "runtests")
        @test hello["server_pid"] == getpid() && hello["protocol"] == 1
        @test hello["lease_ttl"] == 10.0                     # capped by the server
        @test hello["threads"] == 1                          # each executor's threads
        @test hello["julia_version"] == string(VERSION)
        @test result(c2, "hello"; pid = getpid(), lease_ttl = 10.0)["lease_ttl"] == 10.0
        @test result(c, "ping") == "pong"

        @testset "eval and call" begin
            @test result(c, "eval"; code = "triple(x) = 3x\ntriple(14)", filename = "defs.jl") == 42
            helper = result(c, "eval"; code = "helper() = 1")   # a function: kept for the client
            @test helper["\$"] == "function" && helper["name"] == "helper"
            @test result(c, "call"; fn = Dict{String,Any}("\$" => "function", "id" => helper["id"]), args = Any[]) == 1
            @test result(c, "call"; fn = "triple", args = Any[2.5]) == 7.5
            @test result(c, "call"; fn = "shared_double", args = Any[21]) == 42
            @test result(c, "call"; fn = "Base.sum", args = Any[Dict("\$" => "tuple", "items" => Any[1, 2, 3])]) == 6
            @test result(c, "call"; fn = "tuple", args = Any[1, "a"]) == Dict("\$" => "tuple", "items" => Any[1, "a"])
            @test result(c, "call"; fn = "identity", args = Any[Dict("k" => Any[1, nothing])]) == Dict("k" => Any[1, nothing])
            nt = result(c, "eval"; code = "(a = 1, b = 2.5f0, c = \"x\")")
            @test nt == Dict("a" => 1, "b" => 2.5f0, "c" => "x") && nt["b"] isa Float32
        end

        @testset "errors" begin
            e = error_of(request(c, "call"; fn = "sqrt", args = Any[-1.0]))
            @test e["type"] == "DomainError" && occursin("sqrt", e["message"])
            @test occursin("sqrt", e["backtrace"]) && !occursin("AwkwardBridge", e["backtrace"])
            result(c, "eval"; code = "fail(x) = error(\"bad \$x\")")
            e = error_of(request(c, "call"; fn = "fail", args = Any[7]))
            @test e["type"] == "ErrorException" && occursin("bad 7", e["message"])
            @test occursin("fail", e["backtrace"])
            e = error_of(request(c, "eval"; code = "\n\nundefined_thing + 1", filename = "user.jl"))
            @test e["type"] == "UndefVarError" && occursin("user.jl:3", e["message"])
            e = error_of(request(c, "call"; fn = "no_such_function", args = Any[]))
            @test e["type"] == "FunctionNotFound" && occursin("no_such_function", e["message"])
            @test error_of(request(c, "call"; fn = "Base.no_such", args = Any[]))["type"] == "FunctionNotFound"
            @test error_of(request(c, "call"; fn = "a..b", args = Any[]))["type"] == "FunctionNotFound"
            @test error_of(request(c, "call"; fn = "Ref", args = Any["x"]))["type"] == "ResultTypeError"
            @test result(c, "eval"; code = "Ref(1)") === nothing   # no Python equivalent: nil
            # ... or, asked for with `show` (a notebook's %julia), the text Julia shows for it
            @test result(c, "eval"; code = "Ref(1)", show = true) == Dict{String,Any}("\$" => "shown", "text" => "Base.RefValue{$Int}(1)")
            @test result(c, "eval"; code = "nothing", show = true) === nothing
            @test error_of(request(c, "eval"; code = "1", show = "yes"))["type"] == "ProtocolError"
            @test result(c, "eval"; code = ":a_symbol") == "a_symbol"
            @test error_of(request(c, "call"; fn = "typemax", args = Any[]))["type"] == "MethodError"
        end

        @testset "clients are isolated" begin
            # c2 looks `sum` up through Base first, then defines its own: its module must not
            # have been bound to Base.sum by the lookup
            @test result(c2, "call"; fn = "sum", args = Any[Dict("\$" => "tuple", "items" => Any[1, 2])]) == 3
            result(c2, "eval"; code = "sum(x) = 99\ntriple(x) = 0")
            @test result(c2, "call"; fn = "sum", args = Any[1]) == 99
            @test result(c2, "call"; fn = "triple", args = Any[5]) == 0
            @test result(c, "call"; fn = "triple", args = Any[5]) == 15
            @test result(c, "call"; fn = "sum", args = Any[Dict("\$" => "tuple", "items" => Any[1, 2])]) == 3
        end

        @testset "arrays in shared memory" begin
            data = collect(1.0:10.0)
            unsafe_copyto!(Ptr{Float64}(mine.ptr), pointer(data), 10)
            arg = array_value(mine.name, 0, 10)
            @test result(c, "call"; fn = "sum", args = Any[arg]) == 55.0
            # the client's own array returned unchanged: named back by reference, without a lease
            shm = result(c, "stats")["shm_bytes"]
            back = result(c, "call"; fn = "identity", args = Any[Dict("\$" => "tuple", "items" => Any[arg, 1])])
            @test back["items"][1] == arg && back["items"][2] == 1
            @test result(c, "stats")["leases"] == 0 && result(c, "stats")["shm_bytes"] == shm
            # a copy is an array Julia wrote, in its result arena, with the argument's form
            copied = result(c, "call"; fn = "copy", args = Any[arg])
            @test copied["length"] == 10 && copied["lease"] isa Integer
            @test copied["buffers"]["node0-data"][1] != mine.name
            @test result(c, "call"; fn = "sum", args = Any[copied]) == 55.0
            # a handle would hold no lease on the result block, reused once the result is released
            sent_back = Dict{String,Any}(k => v for (k, v) in copied if k != "lease")
            @test occursin("result arena", error_of(request(c, "send"; array = sent_back))["message"])
            @test result(c, "release"; leases = Any[copied["lease"]]) === nothing
            handle = result(c, "send"; array = arg)
            @test handle["\$"] == "handle" && handle["id"] isa Integer
            s = result(c, "stats")
            @test s["handles"] == 1 && s["mapped_bytes"] == mine.nbytes && s["leases"] == 1
            @test result(c, "call"; fn = "sum", args = Any[handle]) == 55.0
            @test error_of(request(c2, "call"; fn = "sum", args = Any[handle]))["type"] == "InvalidArray"
            @test result(c, "drop"; handles = Any[handle["id"]]) === nothing
            @test result(c, "stats")["handles"] == 0
            @test wait_until(() -> result(c, "stats")["mapped_bytes"] == 0)   # the executor unmapped it
            @test error_of(request(c, "call"; fn = "sum", args = Any[handle]))["type"] == "InvalidArray"
            # any request carries a release and a drop, acted on before it (protocol section 2);
            # a malformed one refuses the request and changes nothing
            held = result(c, "stats")
            copied = result(c, "call"; fn = "copy", args = Any[arg])
            handle = result(c, "send"; array = arg)
            before_carried = result(c, "stats")
            # a handle is a lease too
            @test before_carried["leases"] == held["leases"] + 2 && before_carried["handles"] == held["handles"] + 1
            @test error_of(request(c, "ping"; release = Dict{String,Any}("leases" => Any[copied["lease"]]),
                                   drop = Dict{String,Any}("handles" => "all")))["type"] == "ProtocolError"
            @test error_of(request(c, "call"; fn = "sum", args = Any[handle], release = Any[copied["lease"]]))["type"] == "ProtocolError"
            s = result(c, "stats")
            @test (s["leases"], s["handles"], s["calls"]) == (before_carried["leases"], before_carried["handles"], before_carried["calls"])
            s = result(c, "stats"; release = Dict{String,Any}("leases" => Any[copied["lease"]]),
                       drop = Dict{String,Any}("handles" => Any[handle["id"]]))
            @test (s["leases"], s["handles"]) == (held["leases"], held["handles"])
            @test error_of(request(c, "call"; fn = "sum", args = Any[handle]))["type"] == "InvalidArray"

            foreign = "akb-1-$(repeat("0f", 16))"
            @test error_of(request(c, "call"; fn = "sum", args = Any[array_value(foreign, 0, 1)]))["type"] == "InvalidArray"
            @test error_of(request(c, "call"; fn = "sum", args = Any[array_value(mine.name, 8, 10)]))["type"] == "InvalidArray"
            @test error_of(request(c, "send"; array = Dict{String,Any}("\$" => "tuple", "items" => Any[])))["type"] == "ProtocolError"
            @test result(c, "stats")["mapped_bytes"] == 0      # failed requests unpinned too

            result(c, "eval"; code = "ramp(n) = collect(1.0:n)")
            r = result(c, "call"; fn = "ramp", args = Any[5])
            @test r["\$"] == "array" && r["length"] == 5 && r["lease"] isa Integer
            segment, offset, nbytes = r["buffers"]["node0-data"]
            view = map_segment(segment)
            @test unsafe_wrap(Array, Ptr{Float64}(view.ptr + offset), nbytes ÷ 8) == collect(1.0:5.0)
            unmap(view)
            # a result travels back as an argument; returned unchanged, it is leased again, not copied
            @test result(c, "call"; fn = "sum", args = Any[r]) == 15.0
            same = result(c, "call"; fn = "identity", args = Any[r])
            @test same["buffers"] == r["buffers"] && same["form"] == r["form"] && same["lease"] != r["lease"]
            @test result(c, "release"; leases = Any[same["lease"]]) === nothing
            @test result(c, "call"; fn = "sum", args = Any[r]) == 15.0   # r's own lease still holds the block
            # sent back unchanged again, the result is not validated again; changed, it is
            checks = result(c, "stats")["validations"]
            @test result(c, "call"; fn = "sum", args = Any[r]) == 15.0
            @test result(c, "stats")["validations"] == checks
            shorter = merge(r, Dict{String,Any}("length" => 4))
            shorter["buffers"] = Dict{String,Any}("node0-data" => Any[segment, offset, 32])
            @test result(c, "call"; fn = "sum", args = Any[shorter]) == 10.0
            @test result(c, "stats")["validations"] == checks + 1
            @test error_of(request(c2, "call"; fn = "sum", args = Any[r]))["type"] == "InvalidArray"
            s = result(c, "stats")
            @test s["leases"] == 1 && s["shm_bytes"] >= 40
            @test result(c, "release"; leases = Any[r["lease"]]) === nothing
            # the block is free again, and its chunk kept as the arena's reserve
            s = result(c, "stats")
            @test s["leases"] == 0 && isfile("/dev/shm/$segment")
            again = result(c, "call"; fn = "ramp", args = Any[3])
            @test again["buffers"]["node0-data"][1:2] == [segment, offset]   # nothing new created
            # a result beyond the reserve gets a chunk of its own, which lingers once released
            # and is then dropped; the client's next awaited reply names it, so the client can
            # unmap it too
            big = result(c, "call"; fn = "ramp", args = Any[9_000_000])
            big_segment = big["buffers"]["node0-data"][1]
            @test big_segment != segment && isfile("/dev/shm/$big_segment")
            @test result(c, "release"; leases = Any[big["lease"], again["lease"]]) === nothing
            @test isfile("/dev/shm/$big_segment")
            again_big = result(c, "call"; fn = "ramp", args = Any[9_000_000])
            @test again_big["buffers"]["node0-data"][1] == big_segment   # lingered: reused
            @test result(c, "release"; leases = Any[again_big["lease"]]) === nothing
            told = String[]
            heartbeat() = (request(c2, "ping"); append!(told, get(request(c, "ping"), "unlinked", String[])))
            @test wait_until(timeout = 15.0) do
                heartbeat()   # the clients must stay alive, and c's pings name dropped chunks
                !isfile("/dev/shm/$big_segment")
            end
            heartbeat()
            @test told == [big_segment] && isfile("/dev/shm/$segment")
            @test !haskey(request(c, "call"; fn = "ramp", args = Any[3]), "unlinked")   # told once; left leased: shutdown must unlink it
        end

        @testset "malformed frames" begin
            send_frames(c, UInt8[0xc1])                        # not msgpack
            @test nothing_waiting(c)
            send_frames(c, pack(Any[1, 2]))                    # not a map
            @test nothing_waiting(c)
            send_frames(c, pack(Dict("v" => 1)), pack(Dict("v" => 1)))   # two frames
            @test nothing_waiting(c)
            # maps that cannot be read in full are answered, under their id when it comes first
            envelope(id) = vcat(pack("v"), pack(1), pack("id"), pack(id), pack("client"), pack(c.id),
                                pack("op"), pack("call"), pack("fn"), pack("identity"))
            for (id, rest, says) in [(78, vcat(pack(1), pack(2)), "key"),                     # an int key
                                     (79, vcat(pack("args"), fill(0x91, 70), 0xc0), "nesting"), # 70 deep
                                     (80, vcat(pack("args"), UInt8[0x91, 0xd4, 0x01, 0x00]), "ext"),
                                     (81, vcat(pack("args"), UInt8[0x92, 0x01]), "truncated")]
                send_frames(c, vcat(0x86, envelope(id), rest))
                reply = receive(c)
                @test reply["id"] == id && error_of(reply)["type"] == "ProtocolError" &&
                      occursin(says, error_of(reply)["message"])
            end
            # a frame of a few MB that would decode into gigabytes (one empty map per byte)
            send_frames(c, vcat(0x86, envelope(83), pack("args"), UInt8[0xdd], reinterpret(UInt8, [hton(UInt32(3_000_000))]), fill(0x80, 3_000_000)))
            reply = receive(c)
            @test reply["id"] == 83 && occursin("more than $(AwkwardBridge.MSGPACK_MAX_CONTAINERS) lists and maps", error_of(reply)["message"])
            send_frames(c, vcat(0x86, pack("args"), UInt8[0xc1], envelope(82)))    # a fault before the id
            reply = receive(c)
            @test reply["id"] === nothing && error_of(reply)["type"] == "ProtocolError"
            send_frames(c, pack(Dict{String,Any}("v" => 1, "client" => c.id, "op" => "ping")))
            reply = receive(c)
            @test reply["id"] === nothing && error_of(reply)["type"] == "ProtocolError"
            send_frames(c, pack(Dict{String,Any}("v" => 2, "id" => 77, "client" => c.id, "op" => "ping")))
            reply = receive(c)
            @test reply["id"] == 77 && occursin("version", error_of(reply)["message"])
            e = error_of(request(c, "call"; fn = 5, args = Any[]))
            @test e["type"] == "ProtocolError" && occursin("\"fn\" must be a name (str) or a function value", e["message"])
            e = error_of(request(c, "cancel"))
            @test e["type"] == "ProtocolError" && occursin("\"request\"", e["message"]) && occursin("\"call\"", e["message"])
            @test error_of(request(c, "frobnicate"))["type"] == "ProtocolError"
            @test error_of(request(c, "drop"; handles = Any["x"]))["type"] == "ProtocolError"
            @test error_of(request(c, "hello"; pid = -1, lease_ttl = 1.0))["type"] == "ProtocolError"
            @test error_of(request(c, "hello"; pid = 1 << 40, lease_ttl = 1.0))["type"] == "ProtocolError"   # not a C int
            for timeout in (-1.0, 0.0, 1e300)   # a year at most
                @test error_of(request(c, "call"; fn = "identity", args = Any[1], timeout = timeout))["type"] == "ProtocolError"
            end
            @test AwkwardBridge.ServerProcess.short_id("ab\nFORGED") == "ab\\nFORGE"   # a refused id's line stays one line
            for name in ("two\nlines", "x"^65)   # a name that would forge a log line, or flood the log
                e = error_of(request(c, "hello"; pid = getpid(), lease_ttl = 1.0, name = name))
                @test e["type"] == "ProtocolError" && occursin("name must be at most 64 printable characters", e["message"])
            end
            @test result(c, "ping") == "pong"
        end

        @testset "a long call does not hold up the socket" begin
            slow = post(c, "call"; fn = "Libc.systemsleep", args = Any[0.5])
            ping = post(c, "ping")
            first, second = receive(c), receive(c)
            @test first["id"] == ping && first["result"] == "pong"
            @test second["id"] == slow && second["ok"] === true
        end

        @testset "silent clients are forgotten" begin
            c3 = TestClient(ctx, address; id = "runtests-short-lived")
            try
                result(c3, "hello"; pid = getpid(), lease_ttl = 2.0)   # outlasts its first eval
                result(c3, "eval"; code = "collect(1.0:4.0)")   # a result it never releases
                count = result(c, "stats")["clients"]
                @test wait_until(() -> result(c, "stats")["clients"] == count - 1)
                @test error_of(request(c3, "ping"))["type"] == "UnknownClient"
            finally
                close(c3)
            end
        end

        @test result(c2, "bye") === nothing
        @test error_of(request(c2, "ping"))["type"] == "UnknownClient"

        @testset "graceful shutdown" begin
            slow = post(c, "call"; fn = "Libc.systemsleep", args = Any[0.5])
            sleep(0.1)
            schedule(server, InterruptException(); error = true)
            late = post(c, "ping")
            replies = Dict(r["id"] => r for r in (receive(c), receive(c)))
            @test error_of(replies[late])["type"] == "ShuttingDown"
            @test replies[slow]["ok"] === true      # finished within the grace period
            @test timedwait(() -> istaskdone(server), 10.0) === :ok
            @test !istaskfailed(server) && fetch(server) == 0   # asked to stop: status 0
        end
    finally
        istaskdone(server) || schedule(server, InterruptException(); error = true)
        timedwait(() -> istaskdone(server), 10.0)
        close(c)
        close(c2)
        close(ctx)
        unmap(mine)
        unlink(mine.name)
        rm(dir; recursive = true)
    end
    @test server_segments() == before
end
