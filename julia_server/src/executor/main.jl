# An executor process (bin/executor.jl): started by the server for one client, it loads the
# server's `--include` files, says `ready`, and runs that client's jobs one at a time until the
# server says `exit` or goes away.

const EXECUTOR_USAGE = """
usage: julia --project=julia_server julia_server/bin/executor.jl --server ADDRESS --output-dir DIR
             [--libzmq PATH] [--include FILE]... [--warm-up]
The server starts executors itself, with AWKWARD_BRIDGE_EXECUTOR_TOKEN and
AWKWARD_BRIDGE_SERVER_PID in their environment."""

const PR_SET_PDEATHSIG = Cint(1)

"""
    executor_main(args)

The executor's entry point (bin/executor.jl): parse `args` (see `EXECUTOR_USAGE`), connect to
the server, serve jobs. Exits when its server does.
"""
function executor_main(args::AbstractVector{<:AbstractString})
    options = parse_executor_arguments(args)
    token = pop!(ENV, "AWKWARD_BRIDGE_EXECUTOR_TOKEN", "")
    server_pid = tryparse(Int, pop!(ENV, "AWKWARD_BRIDGE_SERVER_PID", ""))
    (isempty(token) || server_pid === nothing) && (println(stderr, EXECUTOR_USAGE); exit(2))
    die_with_parent(server_pid)
    # SIGINT becomes an InterruptException in the running job: it is how the server interrupts it.
    Base.exit_on_sigint(false)
    load_libzmq(options.libzmq)
    shared = user_module(:Shared)
    foreach(path -> Base.include(shared, path), options.includes)
    executor = ExecutorState(Link(options.server), shared, OutputFiles(options.output_dir))
    send!(executor.link, Dict{String,Any}("op" => "ready", "token" => token, "pid" => getpid(),
                                          "threads" => user_threads()))
    interrupted = options.warm_up && try
        warm_up(executor.link)
        false
    catch e
        # an interrupt meant for the first job, which arrived meanwhile and is still to run
        e isa InterruptException || rethrow()
        true
    end
    serve_jobs(executor; interrupted = interrupted)
    return nothing
end

"""
    user_threads() -> Int

The threads user code's `Threads.@threads` uses: the default pool from Julia 1.9 on.
"""
user_threads() = @static VERSION >= v"1.9" ? Threads.nthreads(:default) : Threads.nthreads()

# The kernel ends the executor when the server's thread that started it does (Linux); an
# executor whose server died before this ran exits at once.
function die_with_parent(server_pid::Int)
    @static if Sys.islinux()
        ccall(:prctl, Cint, (Cint, Culong, Culong, Culong, Culong), PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
    end
    ccall(:getppid, Cint, ()) == server_pid || exit(1)
    return nothing
end

# Run jobs until the server says `exit`; with `interrupted`, the first job is answered as
# interrupted without running.
function serve_jobs(executor::ExecutorState; interrupted::Bool = false)
    while true
        running = nothing
        try
            message = receive!(executor.link)
            op = get(message, "op", nothing)
            # a job carries what the executor must forget before it (`done` reports the mappings)
            op == "run" && haskey(message, "forget") &&
                disable_sigint(() -> forget!(executor, map_field(message, "forget", "run")))   # never half done
            if op == "run" && interrupted
                interrupted = false
                send!(executor.link, interrupted_done(executor, message))
            elseif op == "run"
                running = message
                send_done!(executor.link, run_job(executor, message))
                running = nothing
            elseif op == "forget"
                disable_sigint(() -> forget!(executor, message))   # never half done
                send!(executor.link, Dict{String,Any}("op" => "mapped", "cached_bytes" => cached_bytes(executor.mappings)))
            elseif op == "exit"
                return nothing
            end
        catch e
            e isa InterruptException || rethrow()
            # An interrupt meant for a call that had just ended lands here, between jobs: the
            # server, which holds back the next job until then, hears that it came. One that hit
            # a job after its user code returned still answers the job.
            send!(executor.link, running === nothing ? Dict{String,Any}("op" => "interrupted") :
                                 interrupted_done(executor, running))
        end
    end
end

function interrupted_done(executor::ExecutorState, message::Dict{String,Any})
    return Dict{String,Any}("op" => "done", "job" => message["job"], "ok" => false,
                            "error" => Dict{String,Any}("type" => "InterruptException",
                                                        "message" => "InterruptException()",
                                                        "backtrace" => ""),
                            "validations" => 0, "cached_bytes" => cached_bytes(executor.mappings))
end

function parse_executor_arguments(args::AbstractVector{<:AbstractString})
    server = nothing
    output_dir = nothing
    libzmq = nothing
    includes = String[]
    warm = false
    i = 1
    while i <= length(args)
        if args[i] == "--warm-up"
            warm = true
            i += 1
            continue
        end
        i < length(args) || (println(stderr, EXECUTOR_USAGE); exit(2))
        flag, value = args[i], args[i+1]
        if flag == "--server"
            server = value
        elseif flag == "--output-dir"
            output_dir = value
        elseif flag == "--libzmq"
            libzmq = value
        elseif flag == "--include"
            push!(includes, value)
        else
            println(stderr, "executor.jl: unknown argument $(repr(flag))\n", EXECUTOR_USAGE)
            exit(2)
        end
        i += 2
    end
    (server === nothing || output_dir === nothing) && (println(stderr, EXECUTOR_USAGE); exit(2))
    return (server = String(server), output_dir = String(output_dir), libzmq = libzmq,
            includes = includes, warm_up = warm)
end
