# Worker loops: one per thread 2..N, each pinned to its thread, taking jobs from one shared
# queue (server/job_queue.jl) and sending each reply itself through the outbox. With a single
# thread the one worker is a task on thread 1, and a long call then holds the socket until it
# returns. `run_job!` is also how the socket thread runs a call itself (`socket_thread_calls`).

"""
    spawn_on(f, tid) -> Task

Run `f` in a task pinned to thread `tid` (`Threads.@spawn` may place it anywhere, including the
socket loop's thread).
"""
function spawn_on(f, tid::Int)
    t = Task(f)
    t.sticky = true
    # The C signature changed in Julia 1.7: int jl_set_task_tid(jl_task_t*, int16_t).
    @static if VERSION >= v"1.7"
        ccall(:jl_set_task_tid, Cint, (Any, Int16), t, tid - 1) == 1 ||
            error("could not pin a worker task to thread $tid")
    else
        ccall(:jl_set_task_tid, Cvoid, (Any, Cint), t, tid - 1)
    end
    schedule(t)
    return t
end

"""
    start_workers(state, jobs, outbox) -> Vector{Task}

Start the worker loops: one pinned to each thread but the first, or one task on thread 1 when
Julia runs single-threaded.
"""
function start_workers(state::ServerState, jobs::JobQueue, outbox::Outbox)
    total_threads() == 1 && return [@async worker_loop(state, jobs, outbox, false)]
    return [spawn_on(() -> worker_loop(state, jobs, outbox, true), tid) for tid in 2:total_threads()]
end

"""
    total_threads() -> Int

Julia's threads, numbered 1 to this. From Julia 1.9 on, `nthreads()` counts only the default
pool, and interactive threads (one by default from 1.12) come on top.
"""
total_threads() = @static isdefined(Threads, :maxthreadid) ? Threads.maxthreadid() : Threads.nthreads()

"""
    worker_count() -> Int

How many workers `start_workers` starts.
"""
worker_count() = max(total_threads() - 1, 1)

function worker_loop(state::ServerState, jobs::JobQueue, outbox::Outbox, own_thread::Bool)
    while (job = take_job!(jobs; own_thread = own_thread)) !== nothing
        run_job!(state, job, outbox)
    end
end

"""
    run_job!(state, job, outbox)

Run `job` on this thread and send its reply. Its log line goes to the loop as an event, and
so does an `InterruptException` (SIGINT landing in a task on thread 1), which the caller gets
answered `ShuttingDown`.
"""
function run_job!(state::ServerState, job::Job, outbox::Outbox)
    out = try
        # In the newest world, so a call sees what an eval defined just before it.
        Base.invokelatest(perform, state, job)
    catch e
        e isa InterruptException || rethrow()
        put!(outbox.events, :interrupt)
        Outgoing(job.routing, encode_error(job.request.id, "ShuttingDown", "interrupted"), nothing)
    end
    send_reply!(outbox, out.routing, out.frame)
    # Julia 1.5's streams are not thread-safe: only the loop writes the log.
    out.log === nothing || put!(outbox.events, out.log)
    return nothing
end
