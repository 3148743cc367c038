# What an executor keeps between jobs: its link to the server, its mappings, the modules user
# code runs in, the views behind the client's handles, and the views of earlier results the
# client sent back (validated once, like a handle's: a result block is immutable while leased).
# An executor serves one client, so all of it is that client's.

"""
    ExecutorState(link, shared)

A new executor's state: `shared` is the module the server's `--include` files were loaded into;
the client's own module, where its `eval`s run, is made here.
"""
mutable struct ExecutorState
    link::Link
    mappings::Mappings
    shared::Module
    mod::Module
    handles::Dict{Int,Tuple{Any,Vector{String}}}    # handle id → view, the segments it pins
    results::Dict{Tuple{String,Int},Tuple{ArrayRef,Any,Vector{String}}}   # block → ref, view, pins
end

function ExecutorState(link::Link, shared::Module)
    mod = user_module(:Client)
    # eval'd code reaches the start-up --include definitions as `Shared.name`
    Core.eval(mod, :(const Shared = $shared))
    return ExecutorState(link, Mappings(), shared, mod, Dict{Int,Tuple{Any,Vector{String}}}(),
                         Dict{Tuple{String,Int},Tuple{ArrayRef,Any,Vector{String}}}())
end

"""
    user_module(name) -> Module

A fresh module for user code, with the bridge's exported views (`Record`, `column`, …) in scope.
"""
function user_module(name::Symbol)
    mod = Module(name)
    Core.eval(mod, :(using AwkwardBridge))
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
    forget!(executor, message)

Apply the server's `forget`: drop the views of dropped handles and of freed result blocks, then
unmap the segments that no longer exist.
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
    forget!(executor.mappings, str_list_field(message, "segments", "forget"))
    return nothing
end
