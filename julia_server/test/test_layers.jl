# The layers of julia_server/src (docs/architecture.md, "Layers"): each folder, a submodule,
# uses only the folders before it in LAYERS. A name from a later layer inside a function body
# would fail only when that code runs, so this test reads every source file and fails on a name
# used in a lower layer but first defined in a higher one.

const LAYERS = ["base", "wire", "zmq", "shm", "forms", "views", "codec", "executor", "server"]

# Names a lower layer uses as a local variable, a keyword or a field, not as the higher
# layer's function of that name.
const NOT_REFERENCES = Set([:buffers, :nested, :pid])

const SRC = normpath(joinpath(@__DIR__, "..", "src"))

function source_expressions(path::String)
    text = read(path, String)
    exprs, position = Any[], 1
    while position <= ncodeunits(text)
        ex, position = Meta.parse(text, position; raise = true)
        ex === nothing || push!(exprs, ex)
    end
    return exprs
end

defined_name(x::Symbol) = x
defined_name(x::Expr) = x.head in (:call, :where, :(::), :curly, :(<:)) ? defined_name(x.args[1]) : nothing
defined_name(x) = nothing

# The top-level names an expression defines: functions, types, constants.
function definitions!(names::Set{Symbol}, ex)
    ex isa Expr || return names
    if ex.head in (:macrocall, :block)
        foreach(a -> definitions!(names, a), ex.args)
    elseif ex.head in (:function, :macro) || (ex.head === :(=) && ex.args[1] isa Expr && ex.args[1].head in (:call, :where))
        n = defined_name(ex.args[1])
        n === nothing || push!(names, n)
    elseif ex.head === :const && ex.args[1] isa Expr && ex.args[1].head === :(=)
        n = defined_name(ex.args[1].args[1])
        n === nothing || push!(names, n)
    elseif ex.head in (:struct, :abstract)
        n = defined_name(ex.args[ex.head === :struct ? 2 : 1])
        n === nothing || push!(names, n)
    end
    return names
end

# Every symbol an expression mentions, except the field in `a.b`.
references!(names::Set{Symbol}, x::Symbol) = push!(names, x)
function references!(names::Set{Symbol}, ex::Expr)
    ex.head === :. && length(ex.args) == 2 && ex.args[2] isa QuoteNode && return references!(names, ex.args[1])
    ex.head === :quote || foreach(a -> references!(names, a), ex.args)
    return names
end
references!(names::Set{Symbol}, x) = names

@testset "layers" begin
    files = String[]
    for (root, _, names) in walkdir(SRC), name in names
        endswith(name, ".jl") && push!(files, relpath(joinpath(root, name), SRC))
    end
    layer_of(file) = findfirst(==(first(splitpath(file))), LAYERS)
    sources = filter(f -> f != "AwkwardBridge.jl", files)
    @test all(f -> layer_of(f) !== nothing, sources)     # every source file is in a layer's folder
    exprs = Dict(f => source_expressions(joinpath(SRC, f)) for f in sources)
    home = Dict{Symbol,Int}()                              # a name's lowest defining layer
    for f in sources, n in foldl(definitions!, exprs[f]; init = Set{Symbol}())
        home[n] = min(get(home, n, typemax(Int)), layer_of(f))
    end
    upward = String[]
    for f in sources, n in foldl(references!, exprs[f]; init = Set{Symbol}())
        n in NOT_REFERENCES && continue
        h = get(home, n, 0)
        h > layer_of(f) && push!(upward, "$f uses $n from $(LAYERS[h])")
    end
    @test isempty(upward) || (foreach(println, sort(upward)); false)
end
