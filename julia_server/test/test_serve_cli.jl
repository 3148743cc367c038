# bin/serve.jl as Python's launcher runs it: a child process that prints its READY line, serves,
# and exits with status 0, its segments unlinked, when its stdin closes or it gets SIGINT.

using AwkwardBridge: parse_arguments

const SERVE = joinpath(dirname(@__DIR__), "bin", "serve.jl")
const PROJECT = dirname(@__DIR__)

@testset "arguments" begin
    opts = parse_arguments(["--address", "ipc:///tmp/x", "--lease-ttl", "2.5", "--include", "a.jl",
                            "--include", "b.jl", "--exit-on-stdin-eof", "--libzmq", "/lib/z.so",
                            "--executor-threads", "3", "--executor-memory", "1000000",
                            "--client-shm-quota", "4096", "--spare-executors", "0"])
    expected = (address = "ipc:///tmp/x", lease_ttl = 2.5, libzmq = "/lib/z.so", includes = ["a.jl", "b.jl"],
                exit_on_stdin_eof = true, executor_threads = 3, executor_memory = 1000000,
                client_shm_quota = 4096, spare_executors = 0)
    @test Set(keys(opts)) == Set(keys(expected)) && all(opts[k] == expected[k] for k in keys(expected))
    @test !haskey(parse_arguments(["--address", "tcp://127.0.0.1:0"]), :lease_ttl)   # serve's default
    @test parse_arguments(["--address", "a", "--log-calls"]).log_calls
    @test_throws ArgumentError parse_arguments(String[])
    @test_throws ArgumentError parse_arguments(["--address"])
    @test_throws ArgumentError parse_arguments(["--address", "a", "--lease-ttl", "soon"])
    @test_throws ArgumentError parse_arguments(["--address", "a", "--executor-memory", "4G"])
    @test_throws ArgumentError parse_arguments(["--address", "a", "--frobnicate"])
end

function start_server(args...)
    cmd = `$(Base.julia_cmd()) --startup-file=no --threads=2 --project=$PROJECT $SERVE $args`
    process = open(pipeline(cmd; stderr = stderr), "r+")
    ready = Ref("")
    reader = @async (ready[] = readline(process))
    timedwait(() -> istaskdone(reader), 120.0) === :ok || (kill(process); error("server not ready"))
    startswith(ready[], "AWKWARD_BRIDGE_READY ") || error("unexpected first line: $(repr(ready[]))")
    return process, ready[][length("AWKWARD_BRIDGE_READY ")+1:end]
end

# Talk to the server, leaving a result leased; returns the server's pid and the result's segment.
function leave_a_result(ctx, address; keys = nothing)
    client = TestClient(ctx, address; id = "cli-test-client", keys = keys)
    try
        pid = result(client, "hello"; pid = getpid(), lease_ttl = 30.0)["server_pid"]
        segment = result(client, "eval"; code = "collect(1:10)")["buffers"]["node0-data"][1]
        @test isfile("/dev/shm/$segment")
        return pid, segment
    finally
        close(client)
    end
end

@testset "the server process" begin
    ctx = Context()
    try
        @testset "stdin EOF ends it cleanly; tcp takes a key file it creates" begin
            key_file = joinpath(mktempdir(), "keys", "server.key")
            process, address = start_server("--address", "tcp://127.0.0.1:0", "--libzmq", TEST_LIBZMQ,
                                            "--exit-on-stdin-eof", "--key-file", key_file)
            try
                @test startswith(address, "tcp://127.0.0.1:") && !endswith(address, ":0")
                @test filemode(key_file) & 0o777 == 0o600 && filemode(dirname(key_file)) & 0o777 == 0o700
                pid, segment = leave_a_result(ctx, address; keys = AwkwardBridge.parse_json(read(key_file, String)))
                close(process.in)
                @test timedwait(() -> process_exited(process), 30.0) === :ok
                @test process.exitcode == 0
                @test !isfile("/dev/shm/$segment")
                @test isempty(filter(n -> startswith(n, "akb-$pid-"), readdir("/dev/shm")))
            finally
                process_exited(process) || kill(process)
            end
        end

        @testset "SIGINT ends it cleanly" begin
            dir = mktempdir()
            try
                process, address = start_server("--address", "ipc://$dir/s.sock", "--libzmq", TEST_LIBZMQ)
                try
                    _, segment = leave_a_result(ctx, address)
                    kill(process, Base.SIGINT)
                    @test timedwait(() -> process_exited(process), 30.0) === :ok
                    @test process.exitcode == 0
                    @test !isfile("/dev/shm/$segment")
                finally
                    process_exited(process) || kill(process)
                end
            finally
                rm(dir; recursive = true)
            end
        end

        @testset "an include that fails stops it with status 1, its executor gone" begin
            dir = mktempdir()
            try
                broken = joinpath(dir, "broken.jl")
                write(broken, "error(\"this kernel file is broken\")\n")
                cmd = `$(Base.julia_cmd()) --startup-file=no --threads=2 --project=$PROJECT $SERVE
                       --address ipc://$dir/s.sock --libzmq $TEST_LIBZMQ --include $broken`
                log = joinpath(dir, "log")
                process = run(pipeline(ignorestatus(cmd); stdout = devnull, stderr = log))
                @test process.exitcode == 1
                text = read(log, String)
                @test occursin("this kernel file is broken", text)
                @test occursin("the first executor did not start", text)
                pids = [parse(Int, m.captures[1]) for m in eachmatch(r"executor pid (\d+) started", text)]
                @test !isempty(pids) && !any(pid -> isdir("/proc/$pid"), pids)
            finally
                rm(dir; recursive = true)
            end
        end

        @testset "bad arguments exit with status 2" begin
            process = run(pipeline(ignorestatus(`$(Base.julia_cmd()) --startup-file=no --project=$PROJECT $SERVE --lease-ttl 3`);
                                   stderr = devnull))
            @test process.exitcode == 2
        end
    finally
        close(ctx)
    end
end
