"""
    flatten(v::ListVector) -> AbstractVector

Every element of every list of `v`, in order, as one vector (awkward's `ak.flatten(v, axis=1)`):
`sum(flatten(events.Jet.pt))` is the pt of every jet. No element is copied: it is the contiguous
part of the content where the lists follow each other (any whole `ListOffsetArray`), otherwise
a selection of the content by a new index vector.
"""
function flatten(v::ListVector)
    starts, stops = getfield(v, :starts), getfield(v, :stops)
    content = getfield(v, :content)
    isempty(starts) && return select_rows(content, 1:0)
    n = length(starts)
    holds_for_each(==, view(stops, 1:n-1), view(starts, 2:n)) && return select_rows(content, Int(starts[1])+1:Int(stops[end]))
    rows = Int[]
    for i in eachindex(starts)
        append!(rows, Int(starts[i])+1:Int(stops[i]))
    end
    return select_rows(content, rows)
end

flatten(v::AbstractVector) = throw(ArgumentError("flatten needs a ListVector (a jagged vector), not a $(nameof(typeof(v)))"))

"""
    holds_for_each(f, a, b) -> Bool

Whether `f(a[i], b[i])` for every `i` of two vectors of one length. It reads every pair, with no
early exit, so that LLVM vectorizes the loop: over a million lists' offsets this is several times
faster than `all` (docs/performance.md, "Results from views").
"""
function holds_for_each(f, a::AbstractVector, b::AbstractVector)
    axes(a) == axes(b) || throw(DimensionMismatch("vectors of $(length(a)) and $(length(b)) items"))
    holds = true
    @inbounds for i in eachindex(IndexLinear(), a)   # `a` and `b` share their axes, checked above
        holds &= f(a[i], b[i])
    end
    return holds
end
