# The seed's triple on the Julia side (AwkwardArray.jl's `from_buffers`/`to_buffers`): a view
# given out as its form, length and buffer bytes, and such a triple taken back as a result.

# The job running on this task, so `buffers` finds where an argument lies.
const SCOPE_KEY = :awkward_bridge_scope

"""
    with_scope(f, scope)

Run `f()` with `scope` as the job that [`buffers`](@ref) looks arguments up in.
"""
with_scope(f, scope::Scope) = task_local_storage(f, SCOPE_KEY, scope)

"""
    buffers(x::AbstractVector) -> (form::String, length::Int, containers::Dict{String,AbstractVector{UInt8}})

`x` as the triple `ak.from_buffers` and AwkwardArray.jl's `from_buffers` take. An argument of
the running call (on the task that runs it) gives its own form and its bytes in the client's
shared memory, without copying: read-only, and valid until the call returns. Anything else (a
projection, a selection, a Julia vector) is written once into Julia memory, with the form its
result would have, each buffer a view of that one block.
"""
function buffers(x::AbstractVector)
    scope = get(task_local_storage(), SCOPE_KEY, nothing)
    ref = scope === nothing ? nothing : get(scope.returned, x, nothing)
    if ref !== nothing
        containers = Dict{String,AbstractVector{UInt8}}(key => unsafe_wrap(Array, resolve!(scope, b), b.nbytes; own=false)
                                                        for (key, b) in ref.buffers)
        return ref.form, ref.length, containers
    end
    block = UInt8[]
    placed = place_array(x, nbytes -> (resize!(block, nbytes); ("julia", 0, pointer(block))))
    containers = Dict{String,AbstractVector{UInt8}}(key => view(block, b.offset+1:b.offset+b.nbytes)
                                                    for (key, b) in placed.buffers)
    return placed.form, placed.length, containers
end

"""
    is_buffers_triple(x) -> Bool

Whether a result is an Awkward Array as `(form, length, containers)`: a form JSON string that
parses, a length, and a dict of byte vectors by string key.
"""
function is_buffers_triple(x::Tuple)
    length(x) == 3 && x[1] isa AbstractString && x[2] isa Integer && x[3] isa AbstractDict || return false
    all(kv -> kv[1] isa AbstractString && kv[2] isa AbstractVector{UInt8}, x[3]) || return false
    return try
        parse_form(x[1]); true
    catch e
        e isa InvalidArray || rethrow()
        false
    end
end
