# Starting the server, from Julia (`serve`) or from the command line (`main`, bin/serve.jl).

const READY_PREFIX = "AWKWARD_BRIDGE_READY"

const USAGE = """
usage: julia --threads=N --project=julia_server julia_server/bin/serve.jl --address ADDRESS
             [--lease-ttl SECONDS] [--libzmq PATH] [--include FILE]... [--exit-on-stdin-eof]
             [--log-calls] [--socket-thread-calls]"""

"""
    serve(; address, lease_ttl=30.0, libzmq=nothing, includes=String[], exit_on_stdin_eof=false,
          log_calls=false, socket_thread_calls=false)

Run the bridge server on the ZeroMQ endpoint `address` until it is interrupted (SIGINT, or an
`InterruptException` thrown into this task) or, with `exit_on_stdin_eof`, until stdin reaches
EOF; then shut down cleanly and return. `lease_ttl` is the longest lease TTL granted to clients;
`libzmq` the library to load (see `load_libzmq`); `includes` are files evaluated, in order, into
the shared module every client's `call` can reach; `log_calls` logs one line per `eval`, `call`
and `send` (off by default: a busy server would spend its time writing the log).
`socket_thread_calls` lets the socket thread run a call itself when every worker is busy (see
`Server`). Prints `AWKWARD_BRIDGE_READY <endpoint>` on stdout once bound. Must run on thread 1:
workers take threads 2 and up.
"""
function serve(; address::AbstractString, lease_ttl::Real = 30.0,
               libzmq::Union{Nothing,AbstractString} = nothing,
               includes::AbstractVector{<:AbstractString} = String[],
               exit_on_stdin_eof::Bool = false, log_calls::Bool = false,
               socket_thread_calls::Bool = false)
    Threads.threadid() == 1 || throw(ArgumentError("serve must run on thread 1; workers use the others"))
    (lease_ttl > 0 && isfinite(lease_ttl)) ||
        throw(ArgumentError("lease_ttl must be a positive number of seconds, not $lease_ttl"))
    load_libzmq(libzmq)
    shared = user_module(:Shared)
    foreach(path -> Base.include(shared, path), includes)
    state = ServerState(; lease_ttl = Float64(lease_ttl), workers = worker_count(), shared = shared)
    server = Server(state, address; log_calls = log_calls, socket_thread_calls = socket_thread_calls)
    total_threads() == 1 &&
        log_event("warning: running with one thread, so a long call blocks the socket; start Julia with --threads=2 or more")
    log_event("listening on $(server.address) with $(state.workers) worker threads, lease TTL $(state.lease_ttl) s")
    println(stdout, READY_PREFIX, " ", server.address)
    flush(stdout)
    run!(server; exit_on_stdin_eof = exit_on_stdin_eof)
    return nothing
end

"""
    parse_arguments(args) -> NamedTuple

The keyword arguments of `serve` from command-line `args`; `ArgumentError` on bad ones.
"""
function parse_arguments(args::AbstractVector{<:AbstractString})
    address = nothing
    lease_ttl = 30.0
    libzmq = nothing
    includes = String[]
    exit_on_stdin_eof = false
    log_calls = false
    socket_thread_calls = false
    i = 1
    value() = i < length(args) ? args[i+1] : throw(ArgumentError("$(args[i]) needs a value"))
    while i <= length(args)
        arg = args[i]
        if arg == "--address"
            address = value()
        elseif arg == "--lease-ttl"
            text = value()
            lease_ttl = tryparse(Float64, text)
            lease_ttl === nothing && throw(ArgumentError("--lease-ttl needs a number of seconds, not $(repr(text))"))
        elseif arg == "--libzmq"
            libzmq = value()
        elseif arg == "--include"
            push!(includes, value())
        elseif arg == "--exit-on-stdin-eof"
            exit_on_stdin_eof = true
            i += 1
            continue
        elseif arg == "--log-calls"
            log_calls = true
            i += 1
            continue
        elseif arg == "--socket-thread-calls"
            socket_thread_calls = true
            i += 1
            continue
        else
            throw(ArgumentError("unknown argument $(repr(arg))"))
        end
        i += 2
    end
    address === nothing && throw(ArgumentError("--address is required"))
    return (address = String(address), lease_ttl = lease_ttl, libzmq = libzmq,
            includes = includes, exit_on_stdin_eof = exit_on_stdin_eof, log_calls = log_calls,
            socket_thread_calls = socket_thread_calls)
end

"""
    main(args)

The command-line entry point (bin/serve.jl): parse `args` (see `USAGE`), then `serve`. Bad
arguments print the usage and exit with status 2.
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
    serve(; options...)
    return nothing
end
