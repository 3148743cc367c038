# The queue from the socket loop to the workers. A worker waiting in Julia's scheduler on Julia
# 1.5 spins for 4 ms before its thread sleeps (a compile-time threshold; JULIA_THREAD_SLEEP_THRESHOLD
# is read only from 1.6 on), so a server answering a call every few milliseconds kept one core
# busy doing nothing: 96 % of a core for 35 % of real work, taken from the clients on a 2-core
# machine. A worker with a thread of its own therefore waits in the kernel instead, on an eventfd
# the loop rings when it queues a job, inside a GC-safe region so that garbage collection on the
# other threads goes on without it. Waking a sleeping core costs tens of microseconds in a VM,
# so a worker first watches the queue for `WORKER_SPIN_NS`, long enough to cover a client
# preparing its next small call (100 µs was not: small-array calls took 2x longer). Measured
# with one client calling every 2 ms: the worker thread used 24 % of a core, against 96 %.
# The one worker of a single-threaded server shares thread 1 with the loop and waits on a
# Julia `Condition`.

const EFD_SEMAPHORE = Cint(1)   # each read takes one count: one wake-up per ring

"""Nanoseconds an idle worker with a thread of its own watches the queue before sleeping."""
const WORKER_SPIN_NS = 250_000

"""
    JobQueue()

First-in first-out jobs for the workers, and the doorbell (an eventfd) that wakes a worker
blocked in `take_job!`. `close` it to let every worker finish.
"""
mutable struct JobQueue
    jobs::Vector{Job}
    lock::Threads.SpinLock
    closed::Bool
    sleeping::Int          # workers blocked on the doorbell
    doorbell::Cint
    queued::Condition      # single-threaded server: its worker task waits here
end

function JobQueue()
    fd = ccall(:eventfd, Cint, (Cuint, Cint), 0, EFD_SEMAPHORE)
    fd < 0 && throw(SystemError("eventfd", Libc.errno()))
    return JobQueue(Job[], Threads.SpinLock(), false, 0, fd, Condition())
end

"""
    put_job!(q, job)

Queue `job` and wake a waiting worker. Called by the socket loop only.
"""
function put_job!(q::JobQueue, job::Job)
    wake = lock(q.lock) do
        q.closed && throw(InvalidStateException("the job queue is closed", :closed))
        push!(q.jobs, job)
        return q.sleeping > 0
    end
    wake && ring(q, 1)
    notify(q.queued)
    return nothing
end

"""
    take_job!(q; own_thread) -> Union{Job,Nothing}

The next job, waiting for one; `nothing` once the queue is closed and empty. A worker on a
thread of its own (`own_thread`) waits on the doorbell; the single-threaded server's worker
on the loop's thread waits in the scheduler.
"""
function take_job!(q::JobQueue; own_thread::Bool)
    while true
        own_thread && watch_queue(q, time_ns() + WORKER_SPIN_NS)
        job = lock(q.lock) do
            isempty(q.jobs) || return popfirst!(q.jobs)
            q.closed && return :closed
            own_thread && (q.sleeping += 1)
            return nothing
        end
        job === :closed && return nothing
        job === nothing || return job
        if own_thread
            wait_for_ring(q.doorbell)
            lock(() -> q.sleeping -= 1, q.lock)
        else
            wait(q.queued)
        end
    end
end

# Returns once a job is queued or the queue closed (an unlocked glance: `take_job!` takes it
# under the lock), or at `deadline`.
function watch_queue(q::JobQueue, deadline::UInt64)
    while isempty(q.jobs) && !q.closed && time_ns() < deadline
        GC.safepoint()
    end
    return nothing
end

"""
    take_all_jobs!(q) -> Vector{Job}

Every job no worker has taken yet, removed from the queue.
"""
take_all_jobs!(q::JobQueue) = lock(() -> splice!(q.jobs, 1:length(q.jobs)), q.lock)

"""
    close(q::JobQueue)

Refuse new jobs; workers finish the queued ones, then `take_job!` returns `nothing`. The
doorbell itself is never closed: a worker abandoned in a call may still wait on it.
"""
function Base.close(q::JobQueue)
    sleeping = lock(q.lock) do
        q.closed = true
        return q.sleeping
    end
    sleeping > 0 && ring(q, sleeping)
    notify(q.queued)
    return nothing
end

function ring(q::JobQueue, count::Integer)
    value = Ref{UInt64}(count)
    ccall(:write, Cssize_t, (Cint, Ptr{UInt64}, Csize_t), q.doorbell, value, 8) == 8 ||
        throw(SystemError("write to the job queue's eventfd", Libc.errno()))
    return nothing
end

# Blocks the calling thread, not just its task, in read(2) until the doorbell rings.
function wait_for_ring(fd::Cint)
    value = Ref{UInt64}(0)
    while true
        n, err = GC.@preserve value begin
            ptr = Base.unsafe_convert(Ptr{UInt64}, value)
            # GC-safe: nothing in here may allocate or touch a Julia object
            state = ccall(:jl_gc_safe_enter, Int8, ())
            n = ccall(:read, Cssize_t, (Cint, Ptr{UInt64}, Csize_t), fd, ptr, 8)
            err = Libc.errno()
            ccall(:jl_gc_safe_leave, Cvoid, (Int8,), state)
            n, err
        end
        n == 8 && return nothing
        err == EINTR || throw(SystemError("read of the job queue's eventfd", err))
    end
end
