# Starting the server, from Julia (`serve`) or from the command line (`main`, bin/serve.jl).

const READY_PREFIX = "AWKWARD_BRIDGE_READY"

const USAGE = """
usage: julia --threads=2 --project=julia_server julia_server/bin/serve.jl --address ADDRESS
             [--lease-ttl SECONDS] [--libzmq PATH] [--include FILE]... [--exit-on-stdin-eof]
             [--log-calls] [--executor-threads N] [--executor-memory BYTES]
             [--client-shm-quota BYTES] [--spare-executors N] [--key-file PATH] [--log-values]
             [--project PATH]
(on Julia 1.9 and later, --threads=1,1: the socket loop on an interactive thread)"""

"""
    serve(; address, lease_ttl=30.0, libzmq=nothing, includes=String[], exit_on_stdin_eof=false,
          log_calls=false, log_values=false, key_file=nothing, executor_threads=1, executor_memory=0,
          client_shm_quota=0, spare_executors=1, project=nothing) -> Int

Run the bridge server on the ZeroMQ endpoint `address` until it is interrupted (SIGINT, or an
`InterruptException` thrown into this task) or, with `exit_on_stdin_eof`, until stdin reaches
EOF; then shut down cleanly and return the exit status (0 when asked to stop, 1 after an
internal failure). `lease_ttl` is the longest lease TTL granted to clients; `libzmq` the library
to load (see `load_libzmq`). A `tcp://` address needs `key_file`, the CURVE key file (created,
mode 0600, when missing): only clients with its keys get in (docs/security.md).

User code runs in executor processes, one per client, that the server starts and supervises:
each has `executor_threads` threads, loads the `includes` files, in order, into the shared module
every client's `call` can reach, and is killed past `executor_memory` bytes (0: no limit). User
code runs in the Julia `project` (a directory or its Project.toml), whose packages `using`
finds; by default the per-user environment `default_user_project()`.
`spare_executors` are kept started and ready for new clients. `client_shm_quota` caps the shared
memory one client's handles, arguments and results hold (0: no quota). `log_calls` logs one
line per `eval`, `call` and `send`; `log_values` adds error messages, which carry users' values,
to the log (docs/security.md). Prints `AWKWARD_BRIDGE_READY <endpoint>` on stdout once
bound; should the first executor die before it is ready, the server stops with status 1. Must
run on thread 1.
"""
function serve(; address::AbstractString, lease_ttl::Real = 30.0,
               libzmq::Union{Nothing,AbstractString} = nothing,
               includes::AbstractVector{<:AbstractString} = String[],
               exit_on_stdin_eof::Bool = false, log_calls::Bool = false, log_values::Bool = false,
               key_file::Union{Nothing,AbstractString} = nothing,
               executor_threads::Integer = 1, executor_memory::Integer = 0,
               client_shm_quota::Integer = 0, spare_executors::Integer = 1,
               project::Union{Nothing,AbstractString} = nothing)
    Threads.threadid() == 1 || throw(ArgumentError("serve must run on thread 1"))
    (lease_ttl > 0 && isfinite(lease_ttl)) ||
        throw(ArgumentError("lease_ttl must be a positive number of seconds, not $lease_ttl"))
    executor_threads >= 1 || throw(ArgumentError("executor_threads must be ≥ 1, not $executor_threads"))
    min(executor_memory, client_shm_quota, spare_executors) >= 0 ||
        throw(ArgumentError("executor_memory, client_shm_quota and spare_executors must be ≥ 0"))
    for path in includes
        isfile(path) || throw(ArgumentError("--include file $(repr(path)) does not exist"))
    end
    project === nothing || ispath(project) ||
        throw(ArgumentError("--project $(repr(project)) does not exist (a Julia project directory or its Project.toml)"))
    options = ExecutorOptions(; threads = Int(executor_threads), memory = Int(executor_memory),
                              spares = Int(spare_executors), includes = map(abspath, includes),
                              project = project === nothing ? default_user_project() : abspath(project),
                              libzmq = load_libzmq(libzmq))
    state = ServerState(; lease_ttl = Float64(lease_ttl), client_shm_quota = Int(client_shm_quota))
    server = Server(state, address, options; log_calls = log_calls, log_values = log_values, key_file = key_file)
    server_threads() == 1 &&
        log_event("warning: running with one thread, so making a large result chunk holds up every " *
                  "client for a moment; start Julia with " *
                  (VERSION >= v"1.9" ? "--threads=1,1" : "--threads=2"))
    log_event("listening on $(server.address); executors with $(options.threads) threads" *
              (options.memory > 0 ? " and $(format_bytes(options.memory)) of memory each" : "") *
              (state.client_shm_quota > 0 ? "; $(format_bytes(state.client_shm_quota)) of shared memory per client" : "") *
              "; lease TTL $(state.lease_ttl) s; user code's Julia project $(options.project)")
    lock = hold_owner_lock()   # the result chunks' owner, alive to a gc in any pid namespace
    lock < 0 && log_event("warning: another user's file holds this server's owner lock path " *
                          "($(lock_path(getpid()))): running without an owner lock, so a gc judges the " *
                          "result chunks by the server's pid")
    try
        return run!(server; exit_on_stdin_eof = exit_on_stdin_eof)
    finally
        release_owner_lock(lock)
    end
end

"""
    parse_arguments(args) -> NamedTuple

The keyword arguments of `serve` from command-line `args`; `ArgumentError` on bad ones.
"""
function parse_arguments(args::AbstractVector{<:AbstractString})
    options = Dict{Symbol,Any}(:includes => String[])
    switches = Dict("--exit-on-stdin-eof" => :exit_on_stdin_eof, "--log-calls" => :log_calls,
                    "--log-values" => :log_values)
    numbers = Dict("--lease-ttl" => (:lease_ttl, Float64), "--executor-threads" => (:executor_threads, Int),
                   "--executor-memory" => (:executor_memory, Int), "--client-shm-quota" => (:client_shm_quota, Int),
                   "--spare-executors" => (:spare_executors, Int))
    i = 1
    while i <= length(args)
        arg = args[i]
        if haskey(switches, arg)
            options[switches[arg]] = true
            i += 1
            continue
        end
        i < length(args) || throw(ArgumentError("$arg needs a value"))
        value = args[i+1]
        if arg == "--address"
            options[:address] = String(value)
        elseif arg == "--libzmq"
            options[:libzmq] = String(value)
        elseif arg == "--key-file"
            options[:key_file] = String(value)
        elseif arg == "--project"
            options[:project] = String(value)
        elseif arg == "--include"
            push!(options[:includes], String(value))
        elseif haskey(numbers, arg)
            key, T = numbers[arg]
            parsed = tryparse(T, value)
            parsed === nothing && throw(ArgumentError("$arg needs a number, not $(repr(value))"))
            options[key] = parsed
        else
            throw(ArgumentError("unknown argument $(repr(arg))"))
        end
        i += 2
    end
    haskey(options, :address) || throw(ArgumentError("--address is required"))
    return NamedTuple{Tuple(keys(options))}(Tuple(values(options)))
end

"""
    main(args)

The command-line entry point (bin/serve.jl): parse `args` (see `USAGE`), then `serve`, and exit
with its status. Bad arguments print the usage and exit with status 2.
"""
function main(args::AbstractVector{<:AbstractString})
    options = try
        parse_arguments(args)
    catch e
        e isa ArgumentError || rethrow()
        println(stderr, "serve.jl: ", e.msg, "\n", USAGE)
        exit(2)
    end
    # SIGINT becomes an InterruptException, so the server can clean up before exiting.
    Base.exit_on_sigint(false)
    status = try
        serve(; options...)
    catch e
        # a taken address, an unreadable key file, …: said in one line, not a stack trace
        e isa Union{ArgumentError,ZMQError,SystemError} || rethrow()
        println(stderr, "serve.jl: cannot serve at $(options.address): ", sprint(showerror, e))
        1
    end
    status == 0 || exit(status)
    return nothing
end
