# What `call` names: a Julia name, optionally dotted, looked up in the client's module, then in
# the shared module (start-up `--include` files, and Base through it). Only bindings are looked
# up; nothing from the request is ever evaluated.

"""
    resolve_function(executor, fn) -> Any

The value `fn` names (`"path_length"`, `"Base.sum"`, `"LinearAlgebra.norm"`); a name that
resolves to nothing is a `FunctionNotFound` naming it. A part ending in `_b` that names nothing
names its `!` form (`sort_b` is `sort!`), for clients whose names cannot hold a `!`.
"""
function resolve_function(executor::ExecutorState, fn::String)
    parts = split(fn, '.')
    any(isempty, parts) && throw(FunctionNotFound("$(repr(fn)) is not a Julia name"))
    value = lookup_spelled(name -> lookup_root(executor, name), parts[1])
    for part in parts[2:end]
        value isa Module || (value = nothing; break)
        outer = value
        value = lookup_spelled(name -> isdefined(outer, name) ? getfield(outer, name) : nothing, part)
    end
    value === nothing &&
        throw(FunctionNotFound("no function $fn in the client's module, the shared module or Base"))
    return value
end

# What `part` names, else, for a part ending in `_b`, what its `!` form names: Python's
# attributes cannot spell `!` (juliacall's `jl.sort_b` is `sort!`), but a physicist's own
# `n_b` (b-jets) must come first.
function lookup_spelled(lookup, part::AbstractString)
    value = lookup(Symbol(part))
    value === nothing && endswith(part, "_b") && (value = lookup(Symbol(chop(part; tail = 2), "!")))
    return value
end

function lookup_root(executor::ExecutorState, name::Symbol)
    mod = executor.mod
    # `isdefined` on a name the module only gets through `using` (Base's `sum`) binds it, and a
    # later `sum(x) = …` in the client's eval would then fail to define its own function, so the
    # client's module is first asked only for the names it defined itself (`names` lists those
    # without binding anything, on every Julia version).
    name in names(mod; all = true) && isdefined(mod, name) && return getfield(mod, name)
    isdefined(executor.shared, name) && return getfield(executor.shared, name)
    # Last, what the client's own `using` brings in (LinearAlgebra after `using LinearAlgebra`).
    isdefined(mod, name) && return getfield(mod, name)
    return nothing
end
