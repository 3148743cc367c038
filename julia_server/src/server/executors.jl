# Executors: the Julia processes that run clients' code (bin/executor.jl), one per client, so
# that one client's long loop, crash or memory use never reaches the server or another client.
# Like Jupyter's kernel manager, the server starts them, watches them, interrupts them (SIGINT)
# and kills them (SIGKILL); when one ends, its exit status or signal says why.

"""
    ExecutorOptions(; threads, memory, spares, includes, project, libzmq)

How the server runs executors: `threads` for user code's `Threads.@threads`, the `memory`
limit of each (bytes of anonymous memory; 0: none), how many `spares` it keeps started and
ready for new clients, the `--include` files every executor loads, the Julia `project` user
code runs in (its packages are what `using` finds; "": the bridge's own), and the libzmq they
use.
"""
Base.@kwdef struct ExecutorOptions
    threads::Int = 1
    memory::Int = 0
    spares::Int = 1
    includes::Vector{String} = String[]
    project::String = ""
    libzmq::String = ""
end

"""
    default_user_project() -> String

The Julia project user code runs in when the server is given none: the per-user environment
`awkward-bridge` in the first depot (`~/.julia/environments/awkward-bridge`), made when missing.
Never the bridge's own folder, so that `Pkg.add` from user code cannot write into an installed
package.
"""
function default_user_project()
    path = joinpath(first(DEPOT_PATH), "environments", "awkward-bridge")
    try
        mkpath(path)
    catch e
        e isa Base.IOError || e isa SystemError || rethrow()
        throw(ArgumentError("cannot make the default Julia project for user code at $path " *
                            "($(first_line(sprint(showerror, e)))); give one with --project"))
    end
    return path
end

"""Seconds an interrupted call has to stop before its executor is killed."""
const INTERRUPT_GRACE = 1.0

"""
Seconds an interrupted call that has stopped (its executor said `stopped`) has to send its
`done`: describing the error the first time, its backtrace above all, took 0.3 s on an idle
machine and over the `INTERRUPT_GRACE` on a loaded one.
"""
const REPORT_GRACE = 10.0

"""Seconds an executor asked to exit has before it is killed."""
const EXIT_GRACE = 2.0

"""
    Executor(token, process, client)

A started executor: the secret it says `ready` with, its process and pid, the routing id of its
connection (empty until ready), its client (`nothing` for a spare), the job it runs, when it
started, why the server ended it (once it did), the idle mappings it last reported, and whether
a SIGINT the server sent it has not yet been seen to land (`interrupt_pending`): until it has,
the executor takes no job, which the interrupt would hit instead; the threads it has; the
client's handles it holds views of (`handles`), to which a job names a handle by its id alone;
and whether a `forget` sent on its own awaits the executor's `mapped` (`forget_unanswered`):
until it has come, the next waits, so that a client's drops cannot pile messages up in the
server; and its output files (stdout, stderr, log records), opened once it is ready (none when
they could not be), from which the server streams a job's output and reads a dead executor's
last output (`read_output!`).
"""
mutable struct Executor
    token::String
    process::Base.Process
    pid::Int                           # kept: `getpid` fails once the process has exited
    routing::Vector{UInt8}
    client::Union{Nothing,Client}
    job::Union{Nothing,Job}
    started::UInt64
    ended_by_server::Union{Nothing,String}
    cached_bytes::Int
    interrupt_pending::Bool
    threads::Int                       # for user code, as it reported when ready
    handles::Set{Int}
    forget_unanswered::Bool
    output::Vector{IOStream}
end

Executor(token::String, process::Base.Process, client::Union{Nothing,Client}) =
    Executor(token, process, getpid(process), UInt8[], client, nothing, time_ns(), nothing, 0, false, 0, Set{Int}(), false,
             IOStream[])

pid(ex::Executor) = ex.pid
is_ready(ex::Executor) = !isempty(ex.routing)
is_alive(ex::Executor) = process_running(ex.process)

"""
    executor_command(options, address, dir) -> Cmd

The command line of a new executor that connects to the server's executor socket `address`, and
writes its jobs' output to files in the server's private executor directory `dir`. It runs in
the user's project (`options.project`), and finds this package through `JULIA_LOAD_PATH`
(`executor_environment`). From Julia 1.9 on, `--threads=N,0` asks for no interactive thread,
which 1.12 adds by default.
"""
function executor_command(options::ExecutorOptions, address::String, dir::String)
    package = package_dir()
    project = isempty(options.project) ? package : options.project
    threads = @static VERSION >= v"1.9" ? "$(options.threads),0" : string(options.threads)
    cmd = `$(Base.julia_cmd()) --startup-file=no --project=$project --threads=$threads
           $(joinpath(package, "bin", "executor.jl")) --server $address --output-dir $dir
           --libzmq $(options.libzmq)`
    for path in options.includes
        cmd = `$cmd --include $path`
    end
    # spares compile the common layouts before a client needs them (executor/warm_up.jl)
    return options.spares > 0 ? `$cmd --warm-up` : cmd
end

# julia_server/, this package's own project
package_dir() = dirname(dirname(@__DIR__))

"""
    executor_environment(token) -> Dict{String,String}

The environment of a new executor: the server's, with the `token` it says `ready` with, the
server's pid, and a load path that ends in this package (whose project holds `AwkwardBridge`):
the operator's `JULIA_LOAD_PATH` if set, else Julia's default (the user's project, the user's
default environment, the standard library), then this package.
"""
function executor_environment(token::String)
    env = copy(ENV)
    env["AWKWARD_BRIDGE_EXECUTOR_TOKEN"] = token
    env["AWKWARD_BRIDGE_SERVER_PID"] = string(getpid())
    separator = Sys.iswindows() ? ';' : ':'
    env["JULIA_LOAD_PATH"] = join((get(ENV, "JULIA_LOAD_PATH", join(("@", "@v#.#", "@stdlib"), separator)),
                                   package_dir()), separator)
    return env
end

"""
    start_executor(options, address, dir, client) -> Executor

Start an executor process for `client` (or a spare, for `nothing`). Its output goes to the
server's stderr; the secret it answers with travels in its environment, never on a command line.
"""
function start_executor(options::ExecutorOptions, address::String, dir::String, client::Union{Nothing,Client})
    token = string(rand(RandomDevice(), UInt128), base = 16, pad = 32)
    # detached: a Ctrl-C meant for whoever runs the server must not reach the users' code
    cmd = detach(setenv(executor_command(options, address, dir), executor_environment(token)))
    process = run(pipeline(cmd; stdin = devnull, stdout = stderr, stderr = stderr); wait = false)
    return Executor(token, process, client)
end

"""
    end_executor!(ex, why)

Kill the executor (SIGKILL) and remember `why`, which its exit is then reported with.
"""
function end_executor!(ex::Executor, why::String)
    ex.ended_by_server === nothing && (ex.ended_by_server = why)
    is_alive(ex) && kill(ex.process, SIGKILL)
    return nothing
end

"""
    end_process_group(pid)

Kill what is left of an ended executor's process group: the processes its user's code started
(`run(cmd; wait = false)`) and left running. An executor leads a group of its own (it is
started detached), and the group's id is not reused while a member lives, so this reaches no
one else. A process that left the group (`setsid`, a daemon) escapes it.
"""
end_process_group(pid::Int) = (ccall(:kill, Cint, (Cint, Cint), -pid, SIGKILL); nothing)

"""
    interrupt!(ex)

Send the executor SIGINT: the running call gets an `InterruptException`, or, when the call has
just ended, the executor reports it between jobs (`interrupted`).
"""
function interrupt!(ex::Executor)
    is_alive(ex) || return nothing
    ex.interrupt_pending = true
    kill(ex.process, SIGINT)
    return nothing
end

"""
    thread_shortfall(ex, asked) -> Union{Nothing,String}

Why the ready executor `ex` has fewer threads than the `asked` for, or `nothing` when it has them.
"""
function thread_shortfall(ex::Executor, asked::Int)
    ex.threads >= asked && return nothing
    why = ex.threads == Sys.CPU_THREADS ?
        "Julia $VERSION gives a process at most one thread per CPU core, and this machine has $(Sys.CPU_THREADS)" :
        "Julia $VERSION started no more"
    return "this client's executor runs $(ex.threads) threads for Threads.@threads, not the $asked asked for: $why"
end

"""
    exit_cause(ex) -> String

Why an executor that has exited ended: what the server ended it for, else its signal (a crash)
or its exit status (`exit()` in user code).
"""
function exit_cause(ex::Executor)
    ex.ended_by_server === nothing || return ex.ended_by_server
    p = ex.process
    if p.termsignal != 0
        name = get(SIGNAL_NAMES, Int(p.termsignal), "signal $(p.termsignal)")
        why = p.termsignal == 9 ? " (not sent by the server: the kernel's out-of-memory killer, or another process)" : ""
        return "killed by $name$why"
    end
    return "exited with status $(p.exitcode)"
end

"""
    anonymous_memory(ex) -> Int

The executor's resident anonymous memory in bytes (`RssAnon`: its heap, not the shared memory
it maps); 0 when it cannot be read.
"""
function anonymous_memory(ex::Executor)
    status = try
        read("/proc/$(pid(ex))/status", String)
    catch
        return 0
    end
    m = match(r"RssAnon:\s+(\d+) kB", status)
    return m === nothing ? 0 : parse(Int, m.captures[1]) * 1024
end
