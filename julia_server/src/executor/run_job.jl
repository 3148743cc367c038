# Running one job the server sent (`run`: a client's `call`, `eval` or `send`) and the `done`
# message that answers it. User code runs here, on the executor's main task, where the server's
# SIGINT reaches it as an `InterruptException`.

"""
    run_job(executor, message) -> Dict{String,Any}

Run the job in `message` and return its `done` message: `ok` with the result as a wire value,
or the error; either way with what the job printed and logged (`output`), its validation count,
the executor's idle mappings and the handles the job opened.
"""
function run_job(executor::ExecutorState, message::Dict{String,Any})
    job = int_field(message, "job", "run")
    offered = get(message, "block", nothing)
    scope = Scope(executor, job, offered isa Dict{String,Any} ? offered : nothing)
    done = Dict{String,Any}("op" => "done", "job" => job)
    streamed = bool_field(message, "stream_output", "run"; default = false)
    output = capture_output(executor.output; streamed = streamed) do
        try
            kind = str_field(message, "kind", "run")
            done["result"] = with_scope(scope) do
                open_handle_arrays!(scope, message)
                kind == "call" ? run_call(scope, message) :
                kind == "eval" ? run_eval(scope, message) :
                kind == "send" ? run_send(scope, message) :
                throw(ProtocolError("run: unknown kind $(repr(kind))"))
            end
            done["ok"] = true
        catch e
            bt = catch_backtrace()
            # The server's interrupt stopped the call: say so before describing the error, which
            # can take longer than the grace the server gives a call to stop (a first backtrace).
            (e isa InterruptException || interrupted_task(e)) &&
                send!(scope.executor.link, Dict{String,Any}("op" => "stopped", "job" => job))
            type, text, backtrace = describe(e, bt)
            done["ok"] = false
            done["error"] = Dict{String,Any}("type" => type, "message" => text, "backtrace" => backtrace)
            # The interrupt reached one task of the call's own (`Threads.@threads`), and the call
            # stopped waiting for the others, which may still run user code that nothing stops:
            # the server ends this executor (`threads`).
            interrupted_task(e) && merge!(done["error"], Dict{String,Any}("type" => "InterruptException", "threads" => true))
        finally
            disable_sigint(() -> finish!(scope, get(done, "ok", false) === true))   # whatever comes
        end
    end
    isempty(output) || (done["output"] = output)
    done["validations"] = scope.validations[]
    done["cached_bytes"] = cached_bytes(executor.mappings)
    isempty(scope.opened) || (done["handles"] = scope.opened)
    return done
end

"""
    send_done!(link, done)

Send a job's `done`; one larger than the server takes (`MAX_EXECUTOR_MESSAGE_BYTES`) goes as an
error that says so instead.
"""
function send_done!(link::Link, done::Dict{String,Any})
    frame = pack(done)
    sizeof(frame) <= MAX_EXECUTOR_MESSAGE_BYTES || (frame = pack(too_large_done(done, sizeof(frame))))
    send!(link, frame)
end

function too_large_done(done::Dict{String,Any}, nbytes::Int)
    text = "the job's reply would be $(format_bytes(nbytes)), over the $(format_bytes(MAX_EXECUTOR_MESSAGE_BYTES)) " *
           "a reply may hold: return a large result as an array (a vector of numbers or strings travels in shared " *
           "memory), or print and log less"
    return Dict{String,Any}("op" => "done", "job" => done["job"], "ok" => false,
                            "error" => Dict{String,Any}("type" => "ResultTypeError", "message" => text, "backtrace" => ""),
                            "validations" => done["validations"], "cached_bytes" => done["cached_bytes"],
                            "handles" => get(done, "handles", Int[]))
end

# Whether `e` is a task's failure (one, or several at once) that an InterruptException caused.
interrupted_task(e) =
    e isa TaskFailedException ? (e.task.exception isa InterruptException || interrupted_task(e.task.exception)) :
    e isa CompositeException ? any(interrupted_task, e.exceptions) : false

# The handles of the job this executor has not opened come with their arrays, each once.
function open_handle_arrays!(scope::Scope, message::Dict{String,Any})
    haskey(message, "handle_arrays") || return nothing
    for pair in list_field(message, "handle_arrays", "run")
        (pair isa Vector{Any} && length(pair) == 2 && pair[1] isa Int64 && pair[2] isa Dict{String,Any}) ||
            throw(ProtocolError("run: handle_arrays holds [id, array] pairs"))
        handle_view!(scope, pair[1], array_ref(pair[2]))
    end
    return nothing
end

function run_call(scope::Scope, message::Dict{String,Any})
    fn = field(message, "fn", "call")
    f = fn isa String ? resolve_function(scope.executor, fn) : from_wire(map_field(message, "fn", "call"), scope)
    values = Any[from_wire(arg, scope) for arg in list_field(message, "args", "call")]
    kwargs = Pair{Symbol,Any}[Symbol(k) => from_wire(v, scope)
                              for (k, v) in (haskey(message, "kwargs") ? map_field(message, "kwargs", "call") : ())]
    # In the newest world, so a call sees what an eval defined just before it.
    result = Base.invokelatest(f, values...; kwargs...)
    return Base.invokelatest(to_wire, result, scope)
end

function run_eval(scope::Scope, message::Dict{String,Any})
    code = str_field(message, "code", "eval")
    filename = str_field(message, "filename", "eval"; default = "eval")
    show = bool_field(message, "show", "eval"; default = false)
    value = include_string(scope.executor.mod, code, filename)
    try
        return Base.invokelatest(to_wire, value, scope)
    catch e
        # A module, a type, …: no Python equivalent, so nil, or, when asked (a notebook's
        # `%julia`), the text Julia shows for it. A block already written for it is not named in
        # the reply, so the server frees it.
        e isa ResultTypeError || rethrow()
        return show ? Dict{String,Any}("\$" => "shown", "text" => Base.invokelatest(shown_text, value)) : nothing
    end
end

"""Characters of a value's text that an `eval` with `show` sends back."""
const SHOWN_CAP = 64 * 1024

"""
    shown_text(x) -> String

How Julia's REPL shows `x` (`text/plain`, limited to a screen's rows as the REPL limits it), cut
at `SHOWN_CAP` characters.
"""
function shown_text(x)
    text = sprint((io, v) -> show(IOContext(io, :limit => true, :displaysize => (40, 100)), MIME("text/plain"), v), x)
    return length(text) > SHOWN_CAP ? first(text, SHOWN_CAP) * " […]" : text
end

function run_send(scope::Scope, message::Dict{String,Any})
    id = int_field(message, "handle", "send")
    handle_view!(scope, id, array_ref(map_field(message, "array", "send")))
    return Dict{String,Any}("\$" => "handle", "id" => id)
end
