# What each operation does (docs/protocol.md, section 3). The cheap ones run inline on the
# socket loop's thread; `eval`, `call` and `send` run on workers through `perform`.

"""
    Job(routing, request, client)

A worker request with the ROUTER routing id its reply goes back to.
"""
struct Job
    routing::Vector{UInt8}
    request::Request
    client::Client
end

"""
    Outgoing(routing, frame, log)

A worker's reply, and a line for the loop to log (or `nothing`).
"""
struct Outgoing
    routing::Vector{UInt8}
    frame::Vector{UInt8}
    log::Union{Nothing,String}
end

const WORKER_OPS = (:eval, :call, :send)

"""
    hello!(state, req) -> (result, client, reconnected)

Register the client of a `hello` request.
"""
function hello!(state::ServerState, req::Request)
    what = "hello"
    pid = int_field(req.fields, "pid", what)
    pid > 0 || throw(ProtocolError("hello: pid must be positive, not $pid"))
    ttl = float_field(req.fields, "lease_ttl", what)
    ttl > 0 || throw(ProtocolError("hello: lease_ttl must be positive, not $ttl"))
    name = str_field(req.fields, "name", what; default = "")
    client, reconnected = register!(state, req.client, pid, ttl, name)
    result = Dict{String,Any}("server_pid" => getpid(), "protocol" => PROTOCOL_VERSION,
                              "threads" => state.workers, "lease_ttl" => client.lease_ttl,
                              "julia_version" => string(VERSION))
    return result, client, reconnected
end

"""
    run_inline(state, req, client) -> Any

The result of a cheap operation (`ping`, `stats`, `drop`, `release`, `bye`) from a registered
client.
"""
function run_inline(state::ServerState, req::Request, client::Client)
    op = req.op
    op === :ping && return "pong"
    op === :stats && return stats(state)
    op === :drop && return drop_handles!(state, client, int_list_field(req.fields, "handles", "drop"))
    if op === :release
        # both fields are checked before either acts, so a malformed message changes nothing
        leases = int_list_field(req.fields, "leases", "release")
        unlinked = haskey(req.fields, "segments") ? str_list_field(req.fields, "segments", "release") : String[]
        release_results!(state, client, leases)
        forget_segments!(state, client, unlinked)
        return nothing
    end
    if op === :bye
        handles, results = forget!(state, client)
        log_event("client $(client.id) said bye ($handles handles, $results results released)")
        return nothing
    end
    throw(ArgumentError("$op is not an inline operation"))
end

"""
    perform(state, job) -> Outgoing

Run a worker operation and encode its reply; any failure becomes an error reply. Only an
`InterruptException` escapes (the worker passes it on to the loop).
"""
function perform(state::ServerState, job::Job)
    req = job.request
    scope = Scope(state, job.client)
    failed = true
    try
        state.closing && throw(ShuttingDown("the server is shutting down"))
        result = req.op === :call ? run_call(scope, req) :
                 req.op === :eval ? run_eval(scope, req) :
                 run_send(scope, req)
        frame = encode_ok(req.id, result, take_unlinked!(state, job.client))
        failed = false
        return Outgoing(job.routing, frame, nothing)
    catch e
        e isa InterruptException && rethrow()
        type, message, backtrace = describe(e, catch_backtrace())
        line = "$(req.op) from client $(req.client) failed: $(error_summary(type, message))"
        return Outgoing(job.routing, encode_error(req.id, type, message, backtrace), line)
    finally
        finish!(scope; failed = failed)
    end
end

function run_call(scope::Scope, req::Request)
    fn = str_field(req.fields, "fn", "call")
    args = list_field(req.fields, "args", "call")
    f = resolve_function(scope.state, scope.client, fn)
    values = Any[from_wire(arg, scope) for arg in args]
    result = Base.invokelatest(f, values...)
    wire = to_wire(result, scope)
    Threads.atomic_add!(scope.state.calls, 1)
    return wire
end

function run_eval(scope::Scope, req::Request)
    code = str_field(req.fields, "code", "eval")
    filename = str_field(req.fields, "filename", "eval"; default = "eval")
    value = lock(() -> include_string(scope.client.mod, code, filename), scope.state.eval_lock)
    try
        return Base.invokelatest(to_wire, value, scope)
    catch e
        e isa ResultTypeError || rethrow()
        # A definition, a module, …: no Python equivalent, so nil, and none of the value placed.
        release_results!(scope.state, scope.client, scope.leases)
        empty!(scope.leases)
        return nothing
    end
end

function run_send(scope::Scope, req::Request)
    array = map_field(req.fields, "array", "send")
    get(array, "\$", nothing) == "array" ||
        throw(ProtocolError("send: field \"array\" must be an array value {\"\$\": \"array\", …}"))
    view = open_wire_array(array, scope)
    return Dict{String,Any}("\$" => "handle", "id" => store_handle!(scope, view))
end
