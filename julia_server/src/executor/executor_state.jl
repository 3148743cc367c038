# What an executor keeps between jobs: its link to the server, its mappings, the modules user
# code runs in, the views behind the client's handles, the views of earlier results the client
# sent back (validated once, like a handle's: a result block is immutable while leased), and the
# Julia functions the client holds as Python callables.
# An executor serves one client, so all of it is that client's.

"""
    ExecutorState(link, shared, output)

A new executor's state: `shared` is the module the server's `--include` files were loaded into,
`output` the files its jobs print to; the client's own module, where its `eval`s run, is made here.
"""
mutable struct ExecutorState
    link::Link
    output::OutputFiles
    mappings::Mappings
    shared::Module
    mod::Module
    handles::Dict{Int,Tuple{Any,Vector{String}}}    # handle id → view, the segments it pins
    results::Dict{Tuple{String,Int},Tuple{ArrayRef,Any,Vector{String}}}   # block → ref, view, pins
    functions::Dict{Int,Any}           # function id → the function, while Python holds it
    next_function::Int                 # the last id given; ids start at a random base (`keep_function!`)
    grown::Dict{String,Vector{Int}}    # sparse chunk → bytes committed to each buffer, while it exists
end

function ExecutorState(link::Link, shared::Module, output::OutputFiles)
    mod = user_module(:Client)
    # eval'd code reaches the start-up --include definitions as `Shared.name`
    Core.eval(mod, :(const Shared = $shared))
    # ids from a random base: an id that an ended executor gave out names nothing in this one
    first_function = Int(rand(RandomDevice(), UInt32) >> 1) << 32
    return ExecutorState(link, output, Mappings(), shared, mod, Dict{Int,Tuple{Any,Vector{String}}}(),
                         Dict{Tuple{String,Int},Tuple{ArrayRef,Any,Vector{String}}}(),
                         Dict{Int,Any}(), first_function, Dict{String,Vector{Int}}())
end

"""
    user_module(name) -> Module

A fresh module for user code, with the bridge's exported views (`Record`, `column`, …) in scope,
and, as in Julia's REPL, `InteractiveUtils` (`@which`, `@code_warntype`, `versioninfo`, …).
"""
function user_module(name::Symbol)
    mod = Module(name)
    Core.eval(mod, :(using AwkwardBridge))
    # the package's own InteractiveUtils, so an operator's JULIA_LOAD_PATH cannot hide it
    Core.eval(mod, :(const InteractiveUtils = $InteractiveUtils))
    Core.eval(mod, :(using .InteractiveUtils))
    return mod
end

"""
    pin!(executor, names) -> Vector{String}

Take one more use of each mapped segment in `names` (for a handle or a kept result view), and
return them, for `unpin!`.
"""
function pin!(executor::ExecutorState, names)
    pinned = unique(names)
    foreach(name -> acquire!(executor.mappings, name), pinned)
    return pinned
end

unpin!(executor::ExecutorState, names) = foreach(name -> release!(executor.mappings, name), names)

"""
    keep_function!(executor, f) -> Int

Keep `f`, a function result, under a new id for the client's Python callable; it is kept until
the client drops it (`forget`).
"""
function keep_function!(executor::ExecutorState, f)
    executor.next_function += 1
    executor.functions[executor.next_function] = f
    return executor.next_function
end

"""
    kept_function(executor, id) -> Any

The function the client holds as `id`; `FunctionNotFound` when it has been dropped, or was
given out by an executor that has since ended.
"""
function kept_function(executor::ExecutorState, id::Int)
    f = get(executor.functions, id, nothing)
    f === nothing && throw(FunctionNotFound("Julia function $id is gone: its Python object was dropped, " *
                                            "or the executor that made it ended (its definitions with it)"))
    return f
end

"""
    forget!(executor, message)

Apply the server's `forget`: drop the views of dropped handles and of freed result blocks and
the functions the client dropped, then unmap the segments that no longer exist.
"""
function forget!(executor::ExecutorState, message::Dict{String,Any})
    for id in int_list_field(message, "handles", "forget")
        entry = pop!(executor.handles, id, nothing)
        entry === nothing || unpin!(executor, entry[2])
    end
    for block in list_field(message, "blocks", "forget")
        entry = pop!(executor.results, (block[1], block[2]), nothing)
        entry === nothing || unpin!(executor, entry[3])
    end
    foreach(id -> delete!(executor.functions, id), int_list_field(message, "functions", "forget"))
    segments = str_list_field(message, "segments", "forget")
    foreach(name -> delete!(executor.grown, name), segments)
    forget!(executor.mappings, segments)
    return nothing
end
