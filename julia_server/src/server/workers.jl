# Work that must not hold up the socket loop (reserving a large chunk's memory takes tens of
# milliseconds per gigabyte) runs on another thread. Which one depends on the Julia version
# (docs/architecture.md, "Julia versions"):
# - 1.9 and later: the server starts with `--threads=1,1`, so the loop, on the main task, has
#   the interactive thread 1 and a task spawned into the default pool never lands on it.
# - 1.5 to 1.8: there are no thread pools and `Threads.@spawn` may pick thread 1, so the task is
#   pinned to thread 2 with `jl_set_task_tid`, whose C signature changed in 1.7.
# - One thread only: the work runs on the loop's thread, which waits for it.

"""
    server_threads() -> Int

Threads the server process runs: the loop's and those for background work.
"""
server_threads() = @static VERSION >= v"1.9" ?
    Threads.nthreads(:interactive) + Threads.nthreads(:default) : Threads.nthreads()

"""
    run_in_background(f)

Run `f()` on a thread other than the socket loop's when there is one; `f` reports back through
the loop's event channel.
"""
function run_in_background(f)
    server_threads() == 1 && return (f(); nothing)
    @static if VERSION >= v"1.9"
        Threads.@spawn :default f()
    else
        spawn_on(f, 2)
    end
    return nothing
end

@static if VERSION < v"1.9"
    function spawn_on(f, tid::Int)
        t = Task(f)
        t.sticky = true
        @static if VERSION >= v"1.7"
            ccall(:jl_set_task_tid, Cint, (Any, Int16), t, tid - 1) == 1 ||
                error("could not pin a task to thread $tid")
        else
            ccall(:jl_set_task_tid, Cvoid, (Any, Cint), t, tid - 1)
        end
        schedule(t)
        return t
    end
end
