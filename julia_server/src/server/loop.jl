# The event loop, on the main task (thread 1: the interactive thread from Julia 1.9 on), the only
# task that touches the server's state. It sleeps on one event channel fed by: a watcher per
# socket (clients', executors') woken by libuv when `ZMQ_FD` signals, executors' process exits,
# timers (timeouts, interrupt grace periods), a ticker for lease expiry and lingering chunks, a
# memory watcher, background work that finished, and (for private servers) a stdin watcher.
# After every event it drains both sockets, because `ZMQ_FD` is edge-triggered and any send or
# receive may swallow its signal.

"""Seconds a shutting-down server waits for calls in flight before abandoning them."""
const SHUTDOWN_GRACE = 5.0

"""Seconds a shutting-down server stays up after its last reply, so that the client can map the
result before the server unlinks it."""
const SHUTDOWN_LINGER = 1.0

"""Seconds between two looks at the executors' memory, when they have a limit."""
const MEMORY_CHECK_PERIOD = 0.1

"""
    run!(server; exit_on_stdin_eof=false) -> Int

Serve until interrupted (InterruptException, or stdin reaching EOF when asked), or until an
internal failure; then shut down: refuse new and queued work (`ShuttingDown`), give calls in
flight `SHUTDOWN_GRACE` seconds (and their clients `SHUTDOWN_LINGER` to map the last results),
end every executor, forget every client (unlinking every segment the server owns), close the
sockets. Returns the exit status: 0 when asked to stop, 1 otherwise.
"""
function run!(server::Server; exit_on_stdin_eof::Bool = false)
    background(() -> watch_socket(server, :socket, server.socket), server)
    background(() -> watch_socket(server, :executors, server.executor_socket), server)
    server.authenticator === nothing || background(() -> watch_socket(server, :zap, server.authenticator.socket), server)
    background(() -> tick(server), server)
    server.options.memory > 0 && background(() -> watch_memory(server), server)
    exit_on_stdin_eof && background(() -> watch_stdin(server), server)
    try
        for _ in 1:max(server.options.spares, 1)
            push!(server.spares, start_executor!(server, nothing))
        end
        # Clients may connect now: jobs wait for an executor, and if the first one never becomes
        # ready (a `--include` file that does not load) the server stops with status 1.
        println(stdout, READY_PREFIX, " ", server.address)
        flush(stdout)
        drain!(server)
        while !(server.stopping && stopped_waiting(server, time_ns()))
            try
                handle_event!(server, take!(server.events))
                drain!(server)
            catch e
                if !(e isa InterruptException)
                    log_event("internal error: $(sprint(showerror, e, catch_backtrace()))")
                    rethrow()
                end
                begin_shutdown!(server, "interrupted"; asked = true)
            end
        end
    finally
        # a second Ctrl-C or SIGTERM must not cut short the freeing of segments
        disable_sigint(() -> shut_down!(server))
    end
    return server.status
end

# A helper task on thread 1. An InterruptException (SIGINT) can land in whichever task thread 1
# is running, so each passes it on to the loop; any other failure is passed on to be logged, and
# stops the server, which could not work on without the helper.
function background(f, server::Server)
    @async try
        f()
    catch e
        put!(server.events, e isa InterruptException ? :interrupt : e)
    end
end

function watch_socket(server::Server, tag::Symbol, socket::Socket)
    rearm = server.rearm[tag]
    while true
        try
            wait_fd(socket)
            put!(server.events, tag)
            take!(rearm)
        catch e
            # the socket or the rearm channel was closed: the loop has ended
            e isa Union{EOFError,InvalidStateException} && return
            rethrow()
        end
    end
end

# Also how a stopping loop notices that the last call in flight has been answered.
function tick(server::Server)
    period = clamp(server.state.lease_ttl / 10, 0.05, 1.0)
    while isopen(server.rearm[:socket])
        sleep(server.stopping ? 0.05 : period)
        put!(server.events, :tick)
    end
end

function watch_memory(server::Server)
    while isopen(server.rearm[:socket])
        sleep(MEMORY_CHECK_PERIOD)
        put!(server.events, :memory)
    end
end

function watch_stdin(server::Server)
    while !eof(stdin)
        readavailable(stdin)
    end
    put!(server.events, :stdin_eof)
end

function handle_event!(server::Server, event)
    if event === :socket || event === :executors || event === :zap
        # drain first (`run!` does after every event), then let the watcher wait again
        drain!(server)
        put!(server.rearm[event], nothing)
    elseif event === :tick
        tick!(server, time_ns())
    elseif event === :memory
        check_memory!(server)
    elseif event === :interrupt
        begin_shutdown!(server, "interrupted"; asked = true)
    elseif event === :stdin_eof
        begin_shutdown!(server, "stdin closed"; asked = true)
    elseif event isa Tuple
        kind = event[1]
        kind === :exited && executor_exited!(server, event[2])
        kind === :chunk && chunk_made!(server, event[2:end]...)
        kind === :timeout && timed_out!(server, event[2])
        kind === :output && stream_output!(server, event[2])
        kind === :grace && grace_over!(server, event[2], event[3])
        kind === :report && report_over!(server, event[2], event[3])
        kind === :kill && end_executor!(event[2], event[2].ended_by_server)
    elseif event isa Exception
        log_event("internal error: $(first_line(sprint(showerror, event)))")   # the server's own bug, not user data
        begin_shutdown!(server, "internal error"; asked = false)
    end
    return nothing
end

function tick!(server::Server, now::UInt64)
    state = server.state
    end_lingering!(state, now)
    # chunks dropped now are unmapped now, not at the client's next job
    foreach(client -> isempty(client.forgotten.segments) || tell_executor!(server, client), values(state.clients))
    for (client, quiet, handles, results) in expire!(state, now)
        retire_executor!(server, client, "its client's leases expired")
        removed = remove_dead_owner_segments(client.pid)
        log_event("client $(label(client)) silent for $(round(quiet, digits = 1)) s " *
                  "(lease TTL $(client.lease_ttl) s × $LEASE_MARGIN): lease reclaimed " *
                  "($handles handles, $results results" *
                  (removed > 0 ? ", and $removed segments of its dead process" : "") * ")")
    end
    return nothing
end

function timed_out!(server::Server, number::Int)
    job = get(server.jobs, number, nothing)
    job === nothing && return nothing
    timeout = float_field(job.request.fields, "timeout", "call")
    stop_job!(server, job, CallTimedOut("the call timed out after $timeout s"))
    return nothing
end

# Whether a stopping server is done: no job running and the last reply's linger over, or the
# grace period over.
function stopped_waiting(server::Server, now::UInt64)
    now >= server.deadline && return true
    any(ex -> ex.job !== nothing, values(server.executors)) && return false
    return now >= server.last_sent + round(UInt64, SHUTDOWN_LINGER * 1e9)
end

"""
    begin_shutdown!(server, reason; asked)

Stop taking work: queued jobs are answered `ShuttingDown`, running ones get `SHUTDOWN_GRACE`
seconds. The exit status is 0 only when the stop was `asked` for (a signal, stdin closing).
"""
function begin_shutdown!(server::Server, reason::String; asked::Bool)
    if server.stopping
        server.deadline = time_ns()   # asked twice: stop waiting
        return nothing
    end
    server.stopping = true
    server.status = asked ? 0 : 1
    refused = mapreduce(queue -> answer_queued!(server, queue, "ShuttingDown", "the server is shutting down"),
                        +, values(server.queues); init = 0)
    running = count(ex -> ex.job !== nothing, values(server.executors))
    server.deadline = time_ns() + round(UInt64, SHUTDOWN_GRACE * 1e9)
    log_event("shutting down ($reason); $running calls running" *
              (refused > 0 ? ", $refused queued ones refused" : ""))
    return nothing
end

function shut_down!(server::Server)
    running = count(ex -> ex.job !== nothing, values(server.executors))
    running > 0 && log_event("abandoned $running calls still running")
    executors = collect(values(server.by_token))
    foreach(ex -> end_executor!(ex, "the server stopped"), executors)
    foreach(ex -> (wait(ex.process); end_process_group(pid(ex))), executors)
    foreach(job -> job.streamed === nothing || stop_looking!(job.streamed), values(server.jobs))
    foreach(ex -> foreach(close, ex.output), executors)
    close!(server.state)
    foreach(close, values(server.rearm))
    close(server.socket)
    server.authenticator === nothing || close(server.authenticator.socket)
    close(server.executor_socket)
    close(server.context)
    path = ipc_path(server.address)
    path === nothing || release_ipc_path(path, server.socket_inode)
    rm(server.executor_dir; force = true, recursive = true)
    log_event("stopped")
    return nothing
end

# Handle every message waiting on either socket.
function drain!(server::Server)
    while true
        busy = false
        frames = readable(server.socket) ? try_recv(server.socket) : nothing
        frames === nothing || (busy = true; handle_client_message!(server, frames))
        frames = readable(server.executor_socket) ? try_recv(server.executor_socket) : nothing
        frames === nothing || (busy = true; handle_executor_message!(server, frames))
        auth = server.authenticator
        frames = auth !== nothing && readable(auth.socket) ? try_recv(auth.socket) : nothing
        if frames !== nothing
            busy = true
            answer_zap!(auth, frames) ||
                log_event("refused a connection from $(String(copy(frames[4]))): not the key file's client key")
        end
        busy || return nothing
    end
end

function handle_client_message!(server::Server, frames::Vector{Vector{UInt8}})
    if length(frames) != 2
        log_event("dropped a message of $(length(frames) - 1) frames (the protocol sends exactly one)")
        return nothing
    end
    routing, frame = frames
    message = try
        unpack(frame)
    catch e
        e isa ProtocolError || rethrow()
        # a map is a request, whose sender waits for an answer: it gets the error, under the
        # request's id when the id comes before the fault
        readable = top_level_scalars(frame)
        log_event("$(readable === nothing ? "dropped" : "refused") an unreadable frame of $(length(frame)) bytes: $(e.msg)")
        readable === nothing || send_to_client(server, routing, encode_error(request_id(readable), "ProtocolError", e.msg))
        return nothing
    end
    if !(message isa Dict{String,Any})
        log_event("dropped a frame holding a $(wire_type(message)), not a map")
        return nothing
    end
    reply = try
        request = decode_request(message)
        server.stopping && throw(ShuttingDown("the server is shutting down"))
        route!(server, routing, request, length(frame))
    catch e
        e isa InterruptException && rethrow()
        type, text, backtrace = describe(e, catch_backtrace())
        log_event("request from client $(short_id(get(message, "client", nothing))) refused: " *
                  error_summary(type, text, server.log_values))
        encode_error(request_id(message), type, text, backtrace)
    end
    reply === nothing || send_to_client(server, routing, reply)
    return nothing
end

# The reply to an inline operation, or `nothing` once a job is queued (a request of `nbytes`).
function route!(server::Server, routing::Vector{UInt8}, request::Request, nbytes::Int)
    state = server.state
    if request.op === :hello
        result, client, reconnected = hello!(server, request)
        log_event("client $(label(client)) $(reconnected ? "reconnected" : "connected") " *
                  "(pid $(client.pid), lease TTL $(client.lease_ttl) s)")
        return encode_ok(request.id, result)
    end
    client = known_client(state, request.client, str_field(request.fields, "token", "request"; default = ""), time_ns())
    act_on_carried!(server, client, request)
    if request.op in JOB_OPS
        admit_job!(server, routing, request, client, nbytes)
        return nothing
    end
    result = run_inline(server, request, client)
    # Replies the client waits for (not those to posted `release` and `drop`) name the chunks
    # dropped since, so an idle client hears of them with its next heartbeat.
    unlinked = request.op in (:ping, :stats) ? take_unlinked!(state, client) : String[]
    return encode_ok(request.id, result, unlinked)
end

"""
    hello!(server, req) -> (result, client, reconnected)

Register the client of a `hello` request.
"""
function hello!(server::Server, req::Request)
    what = "hello"
    pid = int_field(req.fields, "pid", what)
    # a process id is a positive C int (the server signals and checks it with kill(2))
    0 < pid <= typemax(Cint) || throw(ProtocolError("hello: pid must be a process id (1 to $(typemax(Cint))), not $pid"))
    ttl = float_field(req.fields, "lease_ttl", what)
    ttl > 0 || throw(ProtocolError("hello: lease_ttl must be positive, not $ttl"))
    name = str_field(req.fields, "name", what; default = "")
    # the name goes into the log and `stats`: one short line, never another log line
    length(name) <= 64 && all(isprint, name) ||
        throw(ProtocolError("hello: name must be at most 64 printable characters, not $(length(name)) characters $(repr(first(name, 16)))…"))
    token = str_field(req.fields, "token", what; default = "")
    client, reconnected = register!(server.state, req.client, pid, ttl, name, token)
    result = Dict{String,Any}("server_pid" => getpid(), "protocol" => PROTOCOL_VERSION,
                              "threads" => server.options.threads, "lease_ttl" => client.lease_ttl,
                              "julia_version" => string(VERSION), "token" => client.token)
    return result, client, reconnected
end

"""
    run_inline(server, req, client) -> Any

The result of a cheap operation (`ping`, `stats`, `drop`, `release`, `cancel`, `bye`) from a
registered client.
"""
function run_inline(server::Server, req::Request, client::Client)
    state, op = server.state, req.op
    op === :ping && return "pong"
    op === :stats && return stats(server, client)
    op === :cancel && return cancel!(server, client, req)
    op === :drop && return drop!(server, client, drop_fields(req.fields)...)
    op === :release && return release!(server, client, release_fields(req.fields)...)
    if op === :bye
        handles, results = forget!(state, client)
        retire_executor!(server, client, "its client said bye")
        log_event("client $(label(client)) said bye ($handles handles, $results results released)")
        return nothing
    end
    throw(ArgumentError("$op is not an inline operation"))
end

"""
    act_on_carried!(server, client, req)

Act on the `release` and `drop` a request carries (docs/protocol.md section 2) before the request
itself: a client sends them with its next request rather than as requests of their own.
"""
function act_on_carried!(server::Server, client::Client, req::Request)
    # everything is checked before anything acts, so a malformed request changes nothing
    release = haskey(req.fields, "release") ? release_fields(map_field(req.fields, "release", "request")) : nothing
    drop = haskey(req.fields, "drop") ? drop_fields(map_field(req.fields, "drop", "request")) : nothing
    release === nothing || release!(server, client, release...)
    drop === nothing || drop!(server, client, drop...)
    return nothing
end

release_fields(fields::Dict{String,Any}) =
    (int_list_field(fields, "leases", "release"),
     haskey(fields, "segments") ? str_list_field(fields, "segments", "release") : String[])

drop_fields(fields::Dict{String,Any}) =
    (int_list_field(fields, "handles", "drop"),
     haskey(fields, "functions") ? int_list_field(fields, "functions", "drop") : Int[])

"""
    release!(server, client, leases, unlinked)

End the client's result leases `leases`, and note the segments it unlinked (`release`).
"""
function release!(server::Server, client::Client, leases::Vector{Int}, unlinked::Vector{String})
    release_results!(server.state, client, leases)
    forget_segments!(server.state, client, unlinked)
    isempty(unlinked) || tell_executor!(server, client)
    return nothing
end

"""
    drop!(server, client, handles, functions)

Forget the client's handles and function values (`drop`).
"""
function drop!(server::Server, client::Client, handles::Vector{Int}, functions::Vector{Int})
    drop_handles!(server.state, client, handles)
    forget_functions!(server, client, functions)
    tell_executor!(server, client)   # it unmaps what the handles kept mapped
    return nothing
end

function handle_executor_message!(server::Server, frames::Vector{Vector{UInt8}})
    length(frames) == 2 || return nothing
    routing, frame = frames
    ex = get(server.by_routing, routing, nothing)
    message = try
        unpack(frame; max_bytes = typemax(Int))
    catch e
        e isa ProtocolError || rethrow()
        e
    end
    if !(message isa Dict{String,Any})
        # an executor's result is built by its client's code, which can make it unreadable (a
        # list of millions of values): that ends the executor, and its job with it, never silently
        what = message isa ProtocolError ? message.msg : "a $(wire_type(message)), not a map"
        ex === nothing || end_executor!(ex, "it sent the server a message it could not read ($what)")
        return nothing
    end
    op = get(message, "op", nothing)
    op == "ready" && return executor_ready!(server, routing, message)
    ex === nothing && return nothing
    try
        op == "ask" ? answer_ask!(server, ex, message) :
        op == "done" ? job_done!(server, ex, message, frame) :
        op == "mapped" ? forget_answered!(server, ex, message) :
        op == "interrupted" ? interrupt_landed!(server, ex) :
        op == "stopped" ? call_stopped!(server, ex, message) :
        throw(ProtocolError("unknown op $(repr(op))"))
    catch e
        e isa InterruptException && rethrow()
        # An executor runs its client's code, which may have written this: it ends the executor,
        # never the server.
        end_executor!(ex, "it sent the server a message it could not act on ($(first_line(sprint(showerror, e))))")
    end
    return nothing
end
