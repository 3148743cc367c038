# The ROUTER loop, on thread 1, the only task that receives. It sleeps on one event channel fed
# by: a watcher task woken by libuv when `ZMQ_FD` signals, workers (a request waiting after their
# send, a line to log), a ticker for lease expiry, and (for private servers) a stdin watcher.
# After every event it re-reads `ZMQ_EVENTS` and drains the socket, because `ZMQ_FD` is
# edge-triggered and any send or receive may swallow its signal. Workers send their own replies
# (server/outbox.jl).

"""Seconds a shutting-down server waits for calls in flight before abandoning them."""
const SHUTDOWN_GRACE = 5.0

"""Seconds a shutting-down server stays up after its last reply, so that the client can map the
result before the server unlinks it."""
const SHUTDOWN_LINGER = 1.0

"""
    Server(state, address; log_calls=false, socket_thread_calls=false)

A bound ROUTER socket, shared with the workers (started here) through an `Outbox`, and what the
loop needs around it: the event channel it sleeps on and the job queue the workers take
from. `log_calls` logs each worker request as it is queued.

With `socket_thread_calls`, a worker request that arrives while every worker is busy runs on
the socket thread itself, so that a server with one worker (Julia 1.5 on 2 cores) computes on
both threads. The price: while it runs, the server reads nothing, so pings, `hello`s and other
clients' requests wait, and a call longer than a lease TTL makes waiting clients declare the
server dead. Off by default.
"""
mutable struct Server
    state::ServerState
    context::Context
    outbox::Outbox
    address::String            # the endpoint actually bound (tcp port 0 resolved)
    events::Channel{Any}       # :socket, :readable, :tick, :interrupt, :stdin_eof, a line to log, a helper's exception
    jobs::JobQueue
    rearm::Channel{Nothing}    # the loop tells the socket watcher it has drained the socket
    stopping::Bool
    deadline::UInt64           # stopping: when calls still in flight are abandoned
    log_calls::Bool
    socket_thread_calls::Bool
end

function Server(state::ServerState, address::AbstractString; log_calls::Bool = false,
                socket_thread_calls::Bool = false)
    context = Context()
    socket = Socket(context, ZMQ_ROUTER)
    try
        setsockopt(socket, ZMQ_MAXMSGSIZE, Int64(MSGPACK_MAX_BYTES))
        setsockopt(socket, ZMQ_ROUTER_MANDATORY, Cint(0))   # drop replies to vanished peers
        bind(socket, address)
    catch
        close(socket)
        close(context)
        rethrow()
    end
    events = Channel{Any}(typemax(Int))
    jobs = JobQueue()
    outbox = Outbox(socket, events)
    start_workers(state, jobs, outbox)
    return Server(state, context, outbox, last_endpoint(socket), events, jobs, Channel{Nothing}(1),
                  false, 0, log_calls, socket_thread_calls && total_threads() > 1)
end

"""
    run!(server; exit_on_stdin_eof=false)

Serve until interrupted (InterruptException, or stdin reaching EOF when asked), then shut down:
refuse new and queued work (`ShuttingDown`), give calls in flight `SHUTDOWN_GRACE` seconds (and
their clients `SHUTDOWN_LINGER` to map the last results), forget every client (unlinking every
segment the server owns), close the socket.
"""
function run!(server::Server; exit_on_stdin_eof::Bool = false)
    background(() -> watch_socket(server), server)
    background(() -> tick(server), server)
    exit_on_stdin_eof && background(() -> watch_stdin(server), server)
    try
        serve_socket!(server)
        while !(server.stopping && stopped_waiting(server, time_ns()))
            try
                handle_event!(server, take!(server.events))
                serve_socket!(server)
            catch e
                e isa InterruptException || rethrow()
                begin_shutdown!(server, "interrupted")
            end
        end
    finally
        # a second Ctrl-C or SIGTERM must not cut short the freeing of segments
        disable_sigint(() -> shut_down!(server))
    end
    return nothing
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

function watch_socket(server::Server)
    while true
        try
            wait_fd(server.outbox.socket)
            put!(server.events, :socket)
            take!(server.rearm)
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
    while isopen(server.rearm)
        sleep(server.stopping ? 0.05 : period)
        put!(server.events, :tick)
    end
end

function watch_stdin(server::Server)
    while !eof(stdin)
        readavailable(stdin)
    end
    put!(server.events, :stdin_eof)
end

function handle_event!(server::Server, event)
    if event isa String
        log_event(event)
    elseif event === :socket
        # drain first, then let the watcher wait again
        serve_socket!(server)
        put!(server.rearm, nothing)
    elseif event === :readable
        # a worker's send found a request waiting; `run!` drains after every event
    elseif event === :tick
        now = time_ns()
        end_lingering!(server.state, now)
        for (client, quiet, handles, results) in expire!(server.state, now)
            log_event("client $(client.id) silent for $(round(quiet, digits = 1)) s " *
                      "(lease TTL $(client.lease_ttl) s × $LEASE_MARGIN): lease reclaimed " *
                      "($handles handles, $results results)")
        end
    elseif event === :interrupt
        begin_shutdown!(server, "interrupted")
    elseif event === :stdin_eof
        begin_shutdown!(server, "stdin closed")
    elseif event isa Exception
        log_event("internal error: $(first_line(sprint(showerror, event)))")
        begin_shutdown!(server, "internal error")
    end
    return nothing
end

# Whether a stopping server is done: nothing in flight and the last reply's linger over, or
# the grace period over.
function stopped_waiting(server::Server, now::UInt64)
    now >= server.deadline && return true
    server.outbox.inflight[] == 0 || return false
    return now >= server.outbox.last_sent[] + round(UInt64, SHUTDOWN_LINGER * 1e9)
end

function begin_shutdown!(server::Server, reason::String)
    if server.stopping
        server.deadline = time_ns()   # asked twice: stop waiting
        return nothing
    end
    server.stopping = true
    # Calls already running may still place their results (state.closing is set only by
    # close!); those still queued are refused now rather than started.
    refused = refuse_queued!(server)
    server.deadline = time_ns() + round(UInt64, SHUTDOWN_GRACE * 1e9)
    log_event("shutting down ($reason); $(server.outbox.inflight[]) requests in flight" *
              (refused > 0 ? ", $refused queued ones refused" : ""))
    return nothing
end

# Answer `ShuttingDown` to every job no worker has taken yet; returns how many there were.
function refuse_queued!(server::Server)
    queued = take_all_jobs!(server.jobs)
    for job in queued
        send_reply!(server.outbox, job.routing,
                    encode_error(job.request.id, "ShuttingDown", "the server is shutting down"))
    end
    return length(queued)
end

function shut_down!(server::Server)
    close(server.jobs)
    close!(server.state)
    inflight = server.outbox.inflight[]
    inflight > 0 && log_event("abandoned $inflight requests still running")
    close(server.rearm)
    with_socket(close, server.outbox)
    close(server.context)
    log_event("stopped")
    return nothing
end

"""
    serve_socket!(server)

Handle every message waiting on the socket.
"""
function serve_socket!(server::Server)
    while true
        frames = with_socket(server.outbox) do socket
            readable(socket) ? try_recv(socket) : nothing
        end
        frames === nothing && break
        handle_message!(server, frames)
    end
    return nothing
end

function handle_message!(server::Server, frames::Vector{Vector{UInt8}})
    if length(frames) != 2
        log_event("dropped a message of $(length(frames) - 1) frames (the protocol sends exactly one)")
        return nothing
    end
    routing, frame = frames
    message = try
        unpack(frame)
    catch e
        e isa ProtocolError || rethrow()
        log_event("dropped an unreadable frame of $(length(frame)) bytes: $(e.msg)")
        return nothing
    end
    if !(message isa Dict{String,Any})
        log_event("dropped a frame holding a $(wire_type(message)), not a map")
        return nothing
    end
    reply = try
        request = decode_request(message)
        server.stopping && throw(ShuttingDown("the server is shutting down"))
        route!(server, routing, request)
    catch e
        e isa InterruptException && rethrow()
        type, text, backtrace = describe(e, catch_backtrace())
        log_event("request from $(repr(get(message, "client", nothing))) refused: $(error_summary(type, text))")
        encode_error(request_id(message), type, text, backtrace)
    end
    reply === nothing || with_socket(socket -> try_send(socket, routing, reply), server.outbox)
    return nothing
end

# "call \"fn\"", "eval" or "send", for the --log-calls line.
describe_job(request::Request) =
    request.op === :call ? "call $(repr(get(request.fields, "fn", "?")))" : string(request.op)

# The reply to an inline operation, or `nothing` once a worker operation is queued.
function route!(server::Server, routing::Vector{UInt8}, request::Request)
    state = server.state
    if request.op === :hello
        result, client, reconnected = hello!(state, request)
        log_event("client $(client.id) $(reconnected ? "reconnected" : "connected") " *
                  "(pid $(client.pid)$(isempty(client.name) ? "" : ", $(client.name)"), " *
                  "lease TTL $(client.lease_ttl) s)")
        return encode_ok(request.id, result)
    end
    client = known_client(state, request.client, time_ns())
    if request.op in WORKER_OPS
        server.log_calls && log_event("$(describe_job(request)) from client $(client.id)")
        in_flight = Threads.atomic_add!(server.outbox.inflight, 1)
        job = Job(routing, request, client)
        if server.socket_thread_calls && in_flight >= state.workers
            run_job!(state, job, server.outbox)
        else
            put_job!(server.jobs, job)
        end
        return nothing
    end
    result = run_inline(state, request, client)
    # Replies the client waits for (not those to posted `release` and `drop`) name the chunks
    # dropped since, so an idle client hears of them with its next heartbeat.
    unlinked = request.op in (:ping, :stats) ? take_unlinked!(state, client) : String[]
    return encode_ok(request.id, result, unlinked)
end
