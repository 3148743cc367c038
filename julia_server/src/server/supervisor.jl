# The supervisor: which executor runs which client's jobs, and what happens when a job ends, an
# executor asks for something, a call must stop, or an executor ends. Every function runs on
# the loop's task (server/loop.jl).

"""The most `eval`, `call` and `send` requests one client may have waiting for its executor, and
the most bytes they may hold: each keeps its request in the server's memory until it runs."""
const MAX_QUEUED_JOBS = 1024
const MAX_QUEUED_BYTES = 64 * 1024 * 1024

const DEFINITIONS_LOST = "this client's definitions (eval, include) are lost, and its next call gets a fresh executor"

"""
    admit_job!(server, routing, request, client, request_bytes)

Check a new `eval`, `call` or `send` (its request a frame of `request_bytes`), queue it for the
client's executor, and start it when the executor is free. Bad requests throw (the loop answers
the error), and so does one beyond what the server keeps waiting for one client
(`MAX_QUEUED_JOBS`, `MAX_QUEUED_BYTES`).
"""
function admit_job!(server::Server, routing::Vector{UInt8}, request::Request, client::Client, request_bytes::Int)
    queue = get!(() -> Job[], server.queues, client.id)
    waiting = mapreduce(job -> job.request_bytes, +, queue; init = 0)
    (length(queue) < MAX_QUEUED_JOBS && waiting + request_bytes <= MAX_QUEUED_BYTES) ||
        throw(ProtocolError("this client already has $(length(queue)) requests ($(format_bytes(waiting))) waiting for " *
                            "its executor, the most the server keeps ($MAX_QUEUED_JOBS, $(format_bytes(MAX_QUEUED_BYTES))): " *
                            "wait for their replies"))
    server.next_job += 1
    job = Job(server.next_job, routing, request, client, request_bytes)
    prepare!(job, server.state, running_bytes(server, client))
    timeout = timeout_of(job)
    if timeout > 0
        number = job.number
        job.timer = Timer(_ -> put!(server.events, (:timeout, number)), timeout)
    end
    server.jobs[job.number] = job
    push!(queue, job)
    server.log_calls && log_event("$(describe_job(job)) from client $(label(client)) (job $(job.number))")
    dispatch!(server, client)
    return nothing
end

"""
    dispatch!(server, client)

Send the client's next queued job to its executor when that is ready and idle, starting an
executor for the client first if it has none.
"""
function dispatch!(server::Server, client::Client)
    queue = get(server.queues, client.id, Job[])
    while !isempty(queue)
        ex = executor_for!(server, client)
        (ex !== nothing && is_ready(ex) && ex.job === nothing && ex.ended_by_server === nothing &&
         !ex.interrupt_pending) || return nothing
        job = popfirst!(queue)
        # checked before anything changes: a job that cannot go is answered, and the next one goes
        arrays = try
            handle_arrays(job, ex.handles)
        catch e
            e isa InvalidArray || rethrow()
            answer_job!(server, job, encode_error(job.request.id, "InvalidArray", e.msg))
            continue
        end
        isempty(arrays) || (job.run["handle_arrays"] = arrays)
        # what the executor must forget goes with the job, not as a message (and a wake-up) of its own
        forgotten = take_forgotten!(ex)
        forgotten === nothing || (job.run["forget"] = forgotten)
        job.started = time_ns()
        ex.job = job
        # without its output files the server cannot stream: the executor sends the output
        isempty(ex.output) && (job.streamed = nothing)
        if job.streamed !== nothing
            job.run["stream_output"] = true
            empty_output_files!(ex.output)
            start_looking!(job.streamed, server.events, job.number)   # its first look is a period away
        end
        offer_block!(server.state, job, running_bytes(server, client))
        send_to_executor(server, ex, job.run)
        return nothing
    end
    return nothing
end

"""
    executor_for!(server, client) -> Union{Executor,Nothing}

The client's executor: the one it has, else a spare (ready ones first), else a new one. Taking
a spare starts another, up to `options.spares`. `nothing` once the server stops.
"""
function executor_for!(server::Server, client::Client)
    ex = get(server.executors, client.id, nothing)
    (ex !== nothing || server.stopping) && return ex
    i = something(findfirst(is_ready, server.spares), isempty(server.spares) ? 0 : 1)
    if i == 0
        ex = try
            start_executor!(server, client)
        catch e
            e isa InterruptException && rethrow()
            fail_queued!(server, client, "no executor could be started for this client: $(first_line(sprint(showerror, e)))")
            return nothing
        end
    else
        ex = popat!(server.spares, i)
        ex.client = client
        log_event("executor pid $(pid(ex)) now serves client $(label(client))")
    end
    server.executors[client.id] = ex
    start_spares!(server)
    return ex
end

# Start spares up to `options.spares`; a failure is logged, and the next client that takes a
# spare tries again.
function start_spares!(server::Server)
    while length(server.spares) < server.options.spares && !server.stopping
        spare = try
            start_executor!(server, nothing)
        catch e
            e isa InterruptException && rethrow()
            log_event("could not start a spare executor: $(first_line(sprint(showerror, e)))")
            return nothing
        end
        push!(server.spares, spare)
    end
    return nothing
end

"""
    answer_queued!(server, queue, type, message) -> Int

Empty a queue of jobs that will not run, answering each with the error `type` and `message`;
how many there were.
"""
function answer_queued!(server::Server, queue::Vector{Job}, type::String, message::String)
    jobs = splice!(queue, 1:length(queue))
    foreach(job -> answer_job!(server, job, encode_error(job.request.id, type, message)), jobs)
    return length(jobs)
end

# Answer every queued job of `client` with `ExecutorDied` saying `why`.
function fail_queued!(server::Server, client::Client, why::String)
    answer_queued!(server, get(server.queues, client.id, Job[]), "ExecutorDied", why) > 0 &&
        log_event("client $(label(client))'s queued calls failed: $why")
    return nothing
end

function start_executor!(server::Server, client::Union{Nothing,Client})
    ex = start_executor(server.options, server.executor_address, server.executor_dir, client)
    server.by_token[ex.token] = ex
    @async begin
        wait(ex.process)
        end_process_group(pid(ex))
        put!(server.events, (:exited, ex))
    end
    log_event("executor pid $(pid(ex)) started " * (client === nothing ? "as a spare" : "for client $(label(client))"))
    return ex
end

"""
    flush_forgotten!(server, ex)

Tell the executor, in a `forget` of its own, what of its client's handles, result blocks,
segments and functions it must forget: when it is idle (a running job gets it with the next
`run`, or when it is done) and has answered the last one (`forget_unanswered`).
"""
function flush_forgotten!(server::Server, ex::Executor)
    client = ex.client
    (client === nothing || !is_ready(ex) || ex.job !== nothing || ex.forget_unanswered) && return nothing
    forgotten = take_forgotten!(ex)
    forgotten === nothing && return nothing
    ex.forget_unanswered = true
    send_to_executor(server, ex, merge!(Dict{String,Any}("op" => "forget"), forgotten))
    return nothing
end

# The fields of a `forget` for what the executor's client has yet to forget, or `nothing`; the
# handles in it are no longer held from then on.
function take_forgotten!(ex::Executor)
    client = ex.client::Client
    f = client.forgotten
    isempty(f) && return nothing
    client.forgotten = Forgotten()
    setdiff!(ex.handles, f.handles)
    return Dict{String,Any}("handles" => f.handles, "blocks" => Any[Any[b...] for b in f.blocks],
                            "segments" => f.segments, "functions" => f.functions)
end

"""Function ids a client's executor may have waiting to be forgotten; a client that drops more
while its executor is busy gets the rest ignored (its own executor keeps them)."""
const MAX_FORGOTTEN_FUNCTIONS = 1 << 20

"""
    forget_functions!(server, client, ids)

Note the function values the client dropped, for its executor. Ids name functions of the
executor it has now; without one there is nothing to let go of.
"""
function forget_functions!(server::Server, client::Client, ids::Vector{Int})
    haskey(server.executors, client.id) || return nothing
    pending = client.forgotten.functions
    append!(pending, ids[1:min(length(ids), max(0, MAX_FORGOTTEN_FUNCTIONS - length(pending)))])
    return nothing
end

"""
    tell_executor!(server, client)

Send the client's executor, if it has a ready one, what it must forget now rather than before its
next job.
"""
function tell_executor!(server::Server, client::Client)
    ex = get(server.executors, client.id, nothing)
    ex === nothing || flush_forgotten!(server, ex)
    return nothing
end

"""
    mapped_report!(ex, message)

An executor's report of the client segments it keeps mapped while idle (`done` carries it too).
"""
function mapped_report!(ex::Executor, message::Dict{String,Any})
    ex.cached_bytes = reported_count(message, "cached_bytes", MAX_REPORTED_BYTES)
    return nothing
end

"""
    forget_answered!(server, ex, message)

An executor's `mapped`, its answer to a `forget` of its own: what waited for it goes now.
"""
function forget_answered!(server::Server, ex::Executor, message::Dict{String,Any})
    mapped_report!(ex, message)
    ex.forget_unanswered = false
    flush_forgotten!(server, ex)
    return nothing
end

"""The most bytes an executor's report may claim (an exbibyte): its client's code can send one."""
const MAX_REPORTED_BYTES = 1 << 60

# A count an executor reports, within 0:most; its client's code can write any message it sends.
function reported_count(message::Dict{String,Any}, key::String, most::Int)
    n = get(message, key, 0)
    return n isa Int64 ? clamp(n, 0, most) : 0
end

"""
    executor_ready!(server, routing, message)

An executor said `ready` with its token: it can take jobs.
"""
function executor_ready!(server::Server, routing::Vector{UInt8}, message::Dict{String,Any})
    ex = get(server.by_token, get(message, "token", ""), nothing)
    if ex === nothing || is_ready(ex)
        log_event("dropped a ready message with an unknown token")
        return nothing
    end
    ex.routing = routing
    server.by_routing[routing] = ex
    ex.output = open_output_files(server.executor_dir, pid(ex))
    ex.threads = reported_count(message, "threads", 1 << 16)
    shortfall = thread_shortfall(ex, server.options.threads)
    log_event("executor pid $(pid(ex)) ready in $(round((time_ns() - ex.started) / 1e9, digits = 2)) s" *
              (shortfall === nothing ? "" : " ($shortfall)"))
    server.proven = true
    ex.client === nothing || dispatch!(server, ex.client)
    return nothing
end

"""
    answer_ask!(server, ex, message)

Answer an executor's `ask` during its job: `alloc` (a block of the client's result arena,
once a new chunk is made if none has room), `growing` and `commit` (a result that grows, in a
sparse chunk of its own) or `relend` (an argument returned unchanged).
"""
function answer_ask!(server::Server, ex::Executor, message::Dict{String,Any})
    job = running_job(ex, message, "ask")
    what = str_field(message, "what", "ask")
    answer = try
        if what == "alloc"
            server.state.alloc_asks += 1
            haskey(message, "declined") && decline_offer!(server.state, job, int_field(message, "declined", "alloc"))
            nbytes = int_field(message, "nbytes", "alloc")
            # the quota counts chunks once made: one made at a time keeps a job within it
            job.making_chunk && throw(ProtocolError("alloc: the job's last alloc is not answered yet"))
            got = lease_block!(server.state, job, nbytes, running_bytes(server, job.client))
            got isa Int && return make_chunk!(server, job, got, nbytes)
            got
        elseif what == "growing"
            lease_sparse_block!(server.state, job, int_field(message, "buffers", "growing"))
        elseif what == "commit"
            commit_sparse!(server.state, job, int_field(message, "lease", "commit"),
                           int_field(message, "nbytes", "commit"), running_bytes(server, job.client))
        elseif what == "relend"
            relend!(server.state, job, array_ref(map_field(message, "array", "relend")))
        else
            throw(ProtocolError("ask: unknown what $(repr(what))"))
        end
    catch e
        e isa Union{SharedMemoryFull,ShuttingDown,UnknownClient} || rethrow()
        error_answer(e)
    end
    send_answer(server, ex, job, answer)
    return nothing
end

function send_answer(server::Server, ex::Executor, job::Job, answer::Dict{String,Any})
    answer["op"] = "answer"
    answer["job"] = job.number
    get!(answer, "ok", true)
    send_to_executor(server, ex, answer)
    return nothing
end

error_answer(e::Exception) = Dict{String,Any}("ok" => false, "error" => Dict{String,Any}(
    "type" => string(nameof(typeof(e))), "message" => e.msg))

# The job `ex` runs, which `message` must name.
function running_job(ex::Executor, message::Dict{String,Any}, what::String)
    number = int_field(message, "job", what)
    job = ex.job
    (job !== nothing && job.number == number) ||
        throw(ProtocolError("$what for job $number, which the executor is not running"))
    return job
end

# No chunk had room: reserve one of `size` bytes on a background thread, then answer the alloc.
function make_chunk!(server::Server, job::Job, size::Int, nbytes::Int)
    number, events = job.number, server.events
    job.making_chunk = true
    run_in_background() do
        outcome = try
            reserve_segment(size)
        catch e
            e
        end
        put!(events, (:chunk, number, size, nbytes, outcome))
    end
    return nothing
end

"""
    chunk_made!(server, number, size, nbytes, outcome)

A chunk reserved for job `number` (its name, or the exception that stopped it): add it to the
client's arena and answer the job's `alloc`, or unlink it when the job is gone.
"""
function chunk_made!(server::Server, number::Int, size::Int, nbytes::Int, outcome)
    job = get(server.jobs, number, nothing)
    job === nothing || (job.making_chunk = false)
    ex = job === nothing ? nothing : get(server.executors, job.client.id, nothing)
    running = ex !== nothing && ex.job === job
    if outcome isa String
        if !running || server.state.closing || !is_registered(server.state, job.client)
            unlink(outcome)
            return nothing
        end
        add_chunk!(server.state, job.client, outcome, size)
        answer = try
            lease_block!(server.state, job, nbytes, running_bytes(server, job.client))::Dict{String,Any}
        catch e
            e isa Union{SharedMemoryFull,ShuttingDown,UnknownClient} || rethrow()
            # the new chunk is then a free one: it lingers, and goes, as others do
            linger_if_spare!(job.client.arena, outcome, time_ns())
            error_answer(e)
        end
    else
        running || return nothing
        answer = outcome isa SharedMemoryFull ? error_answer(outcome) :
                 error_answer(SharedMemoryFull("cannot make a result chunk: $(first_line(sprint(showerror, outcome)))"))
    end
    send_answer(server, ex, job, answer)
    return nothing
end

"""
    job_done!(server, ex, message, frame)

An executor's `done` (`message`, read from `frame`): reply to the client, end the result leases
the reply does not name (all of them after an error), keep a `send`'s handle, and start the
client's next job.
"""
function job_done!(server::Server, ex::Executor, message::Dict{String,Any}, frame::Vector{UInt8})
    job = running_job(ex, message, "done")
    state, client = server.state, job.client
    error = get(message, "ok", false) === true ? nothing : map_field(message, "error", "done")
    if error !== nothing && get(error, "type", nothing) == "InterruptException" && job.stopping === nothing
        # Thrown by the user's code, not by the server's interrupt: it ends the executor, as it
        # ends a Julia script, and the job is answered (with its output) when the executor has
        # ended.
        end_executor!(ex, "its call threw an InterruptException, which ends an executor as it ends a Julia script")
        return nothing
    end
    ex.job = nothing
    output = get(message, "output", nothing)
    output isa Dict{String,Any} || (output = nothing)
    if job.streamed !== nothing   # the executor left its output to the server
        rest = read_output!(job.streamed, ex.output; whole = true)
        isempty(rest) || (output = output === nothing ? rest : merge!(output, rest))
    end
    output = with_thread_warning(output, ex, client, server.options.threads)
    # the server's interrupt landed in this job; otherwise it is still to land (`interrupted`)
    error !== nothing && get(error, "type", nothing) == "InterruptException" && (ex.interrupt_pending = false)
    state.validations += reported_count(message, "validations", job.arrays)
    mapped_report!(ex, message)
    if get(message, "ok", false) === true
        result = get(message, "result", nothing)
        named = result_leases(result)
        settle_offer!(job, named)
        release_results!(state, client, filter(lease -> !(lease in named), job.leases))
        job.request.op === :send && (client.handles[job.run["handle"]] = job.handle)
        job.request.op === :call && (state.calls += 1)
        # in the executor's own bytes, so that a record's fields keep their order (`FieldMap`)
        packed = top_level_value_bytes(frame, "result")
        answer_job!(server, job, encode_ok(job.request.id, packed === nothing ? nothing : PackedValue(packed),
                                           take_unlinked!(state, client); output = output))
    else
        settle_offer!(job, Int[])
        release_results!(state, client, job.leases)
        # an interrupt can land after the executor kept the handle: it must let go of it
        job.request.op === :send && push!(client.forgotten.handles, job.run["handle"])
        type, text = str_field(error, "type", "done error"), str_field(error, "message", "done error")
        backtrace = str_field(error, "backtrace", "done error"; default = "")
        if type == "InterruptException" && get(error, "threads", false) === true
            # it reached one of the call's threads; code on the others may still run
            type = string(nameof(typeof(job.stopping)))
            text = "$(job.stopping.msg); the call ran code on other threads, which an interrupt does not stop, " *
                   "so its executor ended: $DEFINITIONS_LOST"
            end_executor!(ex, "its call was interrupted while it ran code on other threads")
        elseif type == "InterruptException"   # the server's own interrupt reached the call
            type = string(nameof(typeof(job.stopping)))
            text = "$(job.stopping.msg); the executor kept this client's definitions"
        elseif (type == "FunctionNotFound" && startswith(text, "no function ") || type == "UndefVarError") &&
               !isempty(client.executor_ended)
            # an executor that ended between calls (killed for its memory, say) told no one
            text *= (occursin('\n', text) ? "\n" : "; ") * "this client's executor was restarted after the last one " *
                    "ended at $(client.executor_ended): anything defined before then is gone, and must be defined again"
        end
        took = round((time_ns() - job.arrived) / 1e9, digits = 3)
        log_event("$(describe_job(job)) from client $(label(client)) failed after $took s " *
                  "($(job.nbytes) bytes of arguments): $(error_summary(type, text, server.log_values))")
        answer_job!(server, job, encode_error(job.request.id, type, text, backtrace; output = output))
    end
    opened_report!(ex, job, message)   # once a `send`'s handle is the client's, or is to be forgotten
    # a `forget` sent before the job's `run` was read before it, even if an interrupt kept its `mapped`
    ex.forget_unanswered = false
    dispatch!(server, client)
    flush_forgotten!(server, ex)       # when no job went
    return nothing
end

"""
    opened_report!(ex, job, message)

Note the handles the job's executor opened (its `done`'s `handles`): later jobs name them by id
alone. One the job brought whose client no longer has it (dropped while the job ran, or the
handle of a `send` that failed) is forgotten at the next job instead. Any other id is ignored:
only the job's own handles can be opened by it.
"""
function opened_report!(ex::Executor, job::Job, message::Dict{String,Any})
    opened = get(message, "handles", nothing)
    opened isa Vector{Any} || return nothing
    client = job.client
    brought = Set{Int}(first.(job.named_handles))
    job.request.op === :send && push!(brought, job.run["handle"])
    for id in opened
        (id isa Int64 && id in brought) || continue
        if haskey(client.handles, id)
            push!(ex.handles, id)
        elseif !(id in client.forgotten.handles)
            push!(client.forgotten.handles, id)
        end
    end
    return nothing
end

# A job's output, with a warning added at the first job of a client whose executor has fewer
# threads than were asked for: the user sees it once, where the call's output goes.
function with_thread_warning(output, ex::Executor, client::Client, asked::Int)
    shortfall = thread_shortfall(ex, asked)
    (shortfall === nothing || client.told_threads) && return output
    client.told_threads = true
    output = output === nothing ? Dict{String,Any}() : output
    logs = get!(() -> Any[], output, "logs")
    logs isa Vector{Any} || return output
    pushfirst!(logs, Dict{String,Any}("level" => Int(Logging.Warn.level), "message" => shortfall,
                                      "module" => "AwkwardBridge", "file" => "", "line" => 0))
    return output
end

"""
    stream_output!(server, number)

Send the client of job `number` what its code printed and logged since the last message, if
anything, while its executor still runs it (`stream_output`), at the pace `may_send` allows.
"""
function stream_output!(server::Server, number::Int)
    job = get(server.jobs, number, nothing)
    (job === nothing || job.streamed === nothing) && return nothing
    ex = get(server.executors, job.client.id, nothing)
    (ex === nothing || ex.job !== job) && return nothing
    now = time_ns()
    may_send(job.streamed, now) || return nothing
    output = read_output!(job.streamed, ex.output; whole = false)
    isempty(output) && return nothing
    send_to_client(server, job.routing, encode_output(job.request.id, output))
    message_sent!(job.streamed, now)
    return nothing
end

"""
    answer_job!(server, job, frame)

Send a job's reply and forget the job.
"""
function answer_job!(server::Server, job::Job, frame::Vector{UInt8})
    job.timer === nothing || close(job.timer)
    job.streamed === nothing || stop_looking!(job.streamed)
    delete!(server.jobs, job.number)
    send_to_client(server, job.routing, frame)
    server.last_sent = time_ns()
    return nothing
end

"""
    stop_job!(server, job, e)

Stop a job with the error `e` (`CallInterrupted`, `CallTimedOut`): a queued one is answered at
once; a running one's executor gets SIGINT, and is killed if the call has not stopped within
`INTERRUPT_GRACE` seconds, or, once stopped, not reported within `REPORT_GRACE`
(`call_stopped!`).
"""
function stop_job!(server::Server, job::Job, e::Exception)
    if job.started == 0
        filter!(queued -> queued !== job, get(server.queues, job.client.id, Job[]))
        answer_job!(server, job, encode_error(job.request.id, string(nameof(typeof(e))), "$(e.msg) before it started"))
        return nothing
    end
    job.stopping === nothing || return nothing
    job.stopping = e
    ex = get(server.executors, job.client.id, nothing)
    (ex !== nothing && ex.job === job) || return nothing
    log_event("interrupting $(describe_job(job)) of client $(label(job.client)) (job $(job.number)): $(e.msg)")
    interrupt!(ex)
    Timer(_ -> put!(server.events, (:grace, ex, job)), INTERRUPT_GRACE)
    return nothing
end

"""
    grace_over!(server, ex, job)

The grace period of the interrupt `ex` got for `job` is over: kill the executor if the call still
runs and has not said it stopped (`call_stopped!`), or if the interrupt has still not landed
(user code that caught the `InterruptException` and went on would otherwise meet it in a later
call).
"""
function grace_over!(server::Server, ex::Executor, job::Job)
    if ex.job === job && !job.stopped
        end_executor!(ex, "$(job.stopping.msg), and the call did not stop within $INTERRUPT_GRACE s of its interrupt")
    elseif ex.job === job
        log_event("job $(job.number) stopped after its interrupt and has not reported yet; it has $REPORT_GRACE s")
    elseif ex.interrupt_pending
        end_executor!(ex, "its call caught the interrupt the server sent it and did not report it " *
                          "(user code must not catch InterruptException); $DEFINITIONS_LOST")
    end
    return nothing
end

"""
    call_stopped!(server, ex, message)

The executor says the interrupt the server sent its running job landed, and the job's code has
stopped; its `done` follows once the error is described. The call now has `REPORT_GRACE`
seconds to send it, instead of what is left of `INTERRUPT_GRACE`.
"""
function call_stopped!(server::Server, ex::Executor, message::Dict{String,Any})
    job = running_job(ex, message, "stopped")
    (job.stopping === nothing || job.stopped) && return nothing   # an interrupt the server did not send
    job.stopped = true
    log_event("job $(job.number) stopped after its interrupt")
    Timer(_ -> put!(server.events, (:report, ex, job)), REPORT_GRACE)
    return nothing
end

"""
    report_over!(server, ex, job)

The `REPORT_GRACE` of `job`, whose code stopped after its interrupt, is over: kill the executor
if the job has still not sent its `done`.
"""
function report_over!(server::Server, ex::Executor, job::Job)
    ex.job === job &&
        end_executor!(ex, "$(job.stopping.msg), and the call stopped but did not report within $REPORT_GRACE s")
    return nothing
end

"""
    interrupt_landed!(server, ex)

The executor reports that the server's interrupt reached it between jobs: it may take the next.
"""
function interrupt_landed!(server::Server, ex::Executor)
    ex.interrupt_pending || log_event("executor pid $(pid(ex)) reported an interrupt between jobs " *
                                      "that the server did not send; it was dropped")
    ex.interrupt_pending = false
    ex.client === nothing || dispatch!(server, ex.client)
    return nothing
end

"""
    cancel!(server, client, request) -> Bool

The `cancel` op: stop the client's own job by its request id (`request`), or any job by its
number (`call`, as `stats` lists it). Whether there was such a job.
"""
function cancel!(server::Server, client::Client, request::Request)
    fields = request.fields
    haskey(fields, "call") || haskey(fields, "request") ||
        throw(ProtocolError("cancel: give \"request\" (the id of one of this client's requests) or \"call\" (a call's number from stats)"))
    if haskey(fields, "call")
        job = get(server.jobs, int_field(fields, "call", "cancel"), nothing)
        why = "cancelled by client $(label(client))"
    else
        id = int_field(fields, "request", "cancel")
        job = nothing
        for candidate in values(server.jobs)
            candidate.client === client && candidate.request.id == id && (job = candidate; break)
        end
        why = "interrupted by its client"
    end
    job === nothing && return false
    stop_job!(server, job, CallInterrupted(why))
    return true
end

"""
    retire_executor!(server, client, why)

End the client's executor (`bye`, expiry): an idle one is asked to exit, and killed if it has not
within `EXIT_GRACE` seconds; a busy one is killed. Its queued jobs are answered `UnknownClient`.
"""
function retire_executor!(server::Server, client::Client, why::String)
    answer_queued!(server, pop!(server.queues, client.id, Job[]), "UnknownClient",
                   "client $(label(client)) is no longer registered ($why) and this call did not run")
    ex = pop!(server.executors, client.id, nothing)
    ex === nothing && return nothing
    # what it maps is no client's any more: `stats` stops counting it now, not when it has exited
    ex.cached_bytes = 0
    if is_ready(ex) && ex.job === nothing
        ex.ended_by_server = why
        send_to_executor(server, ex, Dict{String,Any}("op" => "exit"))
        Timer(_ -> put!(server.events, (:kill, ex)), EXIT_GRACE)
    else
        end_executor!(ex, why)
    end
    return nothing
end

"""
    executor_exited!(server, ex)

An executor's process ended. Its running job gets `ExecutorDied` (or the error it was being
stopped with), naming the cause; the client's queued jobs go to a fresh executor, unless this
one never became ready (then they fail too, rather than start one executor after another).
"""
function executor_exited!(server::Server, ex::Executor)
    delete!(server.by_token, ex.token)
    delete!(server.by_routing, ex.routing)
    filter!(spare -> spare !== ex, server.spares)
    cause = exit_cause(ex)
    client = ex.client
    owner = client === nothing ? "spare" : "of client $(label(client))"
    log_event("executor pid $(pid(ex)) ($owner) ended after $(round((time_ns() - ex.started) / 1e9, digits = 1)) s: $cause")
    if !server.proven && !server.stopping
        begin_shutdown!(server, "the first executor did not start (see its error above)"; asked = false)
    end
    job = ex.job
    output = output_of_exited(server, ex)
    if job !== nothing
        ex.job = nothing
        release_results!(server.state, job.client, job.leases)
        type, text = !is_registered(server.state, job.client) ?
            ("UnknownClient", "client $(short_id(job.client.id)) is no longer registered (bye, or its leases expired): its call was stopped") :
            job.stopping === nothing ?
            ("ExecutorDied", "the executor running this call ended: $cause; $DEFINITIONS_LOST") :
            (string(nameof(typeof(job.stopping))), "$(job.stopping.msg); its executor ended ($cause): $DEFINITIONS_LOST")
        answer_job!(server, job, encode_error(job.request.id, type, text; output = output))
    end
    # a spare that had loaded the includes and then died (the out-of-memory killer) is replaced
    client === nothing && is_ready(ex) && start_spares!(server)
    (client !== nothing && get(server.executors, client.id, nothing) === ex) || return nothing
    delete!(server.executors, client.id)
    client.forgotten = Forgotten()   # a fresh executor has nothing to forget
    client.executor_ended = "$(Dates.format(now(), "yyyy-mm-dd HH:MM:SS")) ($cause)"
    is_ready(ex) || fail_queued!(server, client,
        "the executor started for this client ended before it was ready: $cause (the server log has its output)")
    dispatch!(server, client)
    return nothing
end

"""
    output_of_exited(server, ex) -> Union{Nothing,Dict{String,Any}}

What the exited executor's last job wrote (after what a streamed job's client was sent), from
the files the server holds (the executor's own, whatever user code did to their paths), else
by path (`take_output`); the files are removed.
"""
function output_of_exited(server::Server, ex::Executor)
    isempty(ex.output) && return take_output(server.executor_dir, pid(ex))
    job = ex.job
    streamed = job === nothing || job.streamed === nothing ? StreamedOutput() : job.streamed
    output = read_output!(streamed, ex.output; whole = true)
    foreach(close, ex.output)
    empty!(ex.output)
    remove_output_files(server.executor_dir, pid(ex))
    return isempty(output) ? nothing : output
end

"""
    check_memory!(server)

Kill every executor over its memory limit (`--executor-memory`), naming the limit.
"""
function check_memory!(server::Server)
    limit = server.options.memory
    for ex in values(server.by_token)
        ex.ended_by_server === nothing || continue
        used = anonymous_memory(ex)
        used > limit || continue
        end_executor!(ex, "it used $(format_bytes(used)) of memory, over its limit of " *
                          "$(format_bytes(limit)) (--executor-memory)")
    end
    return nothing
end
