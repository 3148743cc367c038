# The server object: the clients' ROUTER socket, the executors' ROUTER socket in a private
# directory, the event channel the loop sleeps on, and everything the supervisor keeps about
# executors and jobs. Only the loop's task touches it (server/loop.jl).

"""
    Server(state, address, options; log_calls=false, log_values=false, key_file=nothing)

A server bound to `address` for clients, and to a private ipc socket for its executors, which
it starts with `options`. A `tcp://` address needs a `key_file` (created when missing,
server/keys.jl): every tcp connection is then CURVE-authenticated. `log_calls` logs each job as
it arrives; `log_values` puts error messages, which carry users' values, in the log.
"""
mutable struct Server
    state::ServerState
    options::ExecutorOptions
    log_calls::Bool
    log_values::Bool
    context::Context
    socket::Socket                     # clients'
    authenticator::Union{Nothing,Authenticator}   # a tcp address: who may connect (CURVE + ZAP)
    executor_socket::Socket            # executors', in `executor_dir`
    address::String                    # the endpoint actually bound (tcp port 0 resolved)
    socket_inode::UInt64               # an ipc address: its socket file, removed at the end (else 0)
    executor_address::String
    executor_dir::String
    events::Channel{Any}
    rearm::Dict{Symbol,Channel{Nothing}}   # per socket: the loop has drained it
    executors::Dict{String,Executor}   # by client id
    spares::Vector{Executor}           # started, not yet any client's
    by_token::Dict{String,Executor}    # every executor whose process has not exited
    by_routing::Dict{Vector{UInt8},Executor}
    queues::Dict{String,Vector{Job}}   # by client id: jobs waiting for their executor
    jobs::Dict{Int,Job}                # every job not yet answered, by number
    next_job::Int
    proven::Bool                       # an executor has become ready: the --include files load
    stopping::Bool
    status::Int                        # the exit status: 0 when asked to stop
    deadline::UInt64                   # stopping: when calls still running are abandoned
    last_sent::UInt64                  # when the last job's reply left
end

function Server(state::ServerState, address::AbstractString, options::ExecutorOptions;
                log_calls::Bool = false, log_values::Bool = false,
                key_file::Union{Nothing,AbstractString} = nothing)
    context = Context()
    sockets = Socket[]
    # mode 0700: only this user; named after this process, so that a `gc` removes it should the
    # server be killed (bridge/shm/gc.py)
    executor_dir = mktempdir(; prefix = "akb-executors-$(getpid())-")
    try
        path = ipc_path(address)
        path === nothing || claim_ipc_path(path)
        keys, authenticator = nothing, nothing
        if startswith(address, "tcp://")
            key_file === nothing &&
                throw(ArgumentError("a tcp:// address needs a key file (--key-file PATH, created if missing): " *
                                    "every tcp connection is authenticated"))
            keys = load_or_create_keys(String(key_file))
            authenticator = Authenticator(context, keys.client_public)   # before any connection
            push!(sockets, authenticator.socket)
        end
        socket = router_socket!(sockets, context, address, keys; max_message = MSGPACK_MAX_BYTES)
        inode = path === nothing ? UInt64(0) : stat(path).inode
        # an executor keeps to this limit itself (`send_done!`); libzmq cuts off one that does not
        executor_socket = router_socket!(sockets, context, "ipc://$executor_dir/executors.sock", nothing;
                                         max_message = MAX_EXECUTOR_MESSAGE_BYTES)
        return Server(state, options, log_calls, log_values, context, socket, authenticator, executor_socket,
                      last_endpoint(socket), inode, last_endpoint(executor_socket), executor_dir,
                      Channel{Any}(typemax(Int)),
                      Dict(tag => Channel{Nothing}(1) for tag in (:socket, :executors, :zap)),
                      Dict{String,Executor}(), Executor[], Dict{String,Executor}(),
                      Dict{Vector{UInt8},Executor}(), Dict{String,Vector{Job}}(), Dict{Int,Job}(),
                      0, false, false, 0, 0, 0)
    catch
        foreach(close, sockets)
        close(context)
        rm(executor_dir; force = true, recursive = true)
        rethrow()
    end
end

function router_socket!(sockets::Vector{Socket}, context::Context, address::AbstractString,
                        keys::Union{Nothing,CurveKeys}; max_message::Int)
    socket = Socket(context, ZMQ_ROUTER)
    push!(sockets, socket)
    setsockopt(socket, ZMQ_MAXMSGSIZE, Int64(max_message))   # -1: no limit
    setsockopt(socket, ZMQ_ROUTER_MANDATORY, Cint(0))   # drop messages to vanished peers
    keys === nothing || use_curve!(socket, keys)
    bind_private(socket, address)
    return socket
end

"""
    send_to_client(server, routing, frame)

Send a reply to the client connection `routing`.
"""
function send_to_client(server::Server, routing::Vector{UInt8}, frame::Vector{UInt8})
    try_send(server.socket, routing, frame)
    return nothing
end

"""
    send_to_executor(server, ex, message)

Send a message to a ready executor.
"""
send_to_executor(server::Server, ex::Executor, message::Dict{String,Any}) =
    (try_send(server.executor_socket, ex.routing, pack(message)); nothing)

"""
    running_bytes(server, client) -> Int

Shared memory the arguments of the client's unanswered jobs hold.
"""
running_bytes(server::Server, client::Client) =
    mapreduce(job -> job.client === client ? job.nbytes : 0, +, values(server.jobs); init = 0)

"""
    stats(server, client) -> Dict{String,Any}

The `stats` reply to `client` (docs/protocol.md, section 6).
"""
function stats(server::Server, client::Client)
    state = server.state
    clients = values(state.clients)
    executors = values(server.by_token)
    now = time_ns()
    handles = mapreduce(c -> length(c.handles), +, clients; init = 0)
    handle_bytes_all = mapreduce(handle_bytes, +, clients; init = 0)
    results = mapreduce(c -> length(c.results), +, clients; init = 0)
    running = [Dict{String,Any}("call" => job.number, "client" => label(job.client),
                                "op" => string(job.request.op),
                                "fn" => job.request.op === :call ? callee_label(job) : "",
                                "state" => job.started == 0 ? "queued" : job.stopping === nothing ? "running" : "stopping",
                                "seconds" => (now - job.arrived) / 1e9)
               for job in sort!(collect(values(server.jobs)); by = job -> job.number)]
    return Dict{String,Any}(
        "clients" => length(state.clients),
        "handles" => handles,
        "leases" => results + handles,
        "shm_bytes" => mapreduce(c -> chunk_bytes(c.arena), +, clients; init = 0),
        "reserve_bytes" => mapreduce(c -> free_chunk_bytes(c.arena), +, clients; init = 0),
        # the client arrays the executors map for handles and unanswered calls
        "mapped_bytes" => handle_bytes_all + reduce(+, (job.nbytes for job in values(server.jobs)); init = 0),
        "cached_bytes" => mapreduce(ex -> ex.cached_bytes, +, executors; init = 0),
        "calls" => state.calls,
        "validations" => state.validations,
        "alloc_asks" => state.alloc_asks,
        "threads" => server.options.threads,
        "executors" => length(server.by_token),
        "executor_pid" => (ex = get(server.executors, client.id, nothing)) === nothing ? nothing : pid(ex),
        "running" => running,
        "uptime" => (now - state.started) / 1e9,
    )
end
