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
    contiguous = all(i -> stops[i] == starts[i+1], 1:length(starts)-1)
    contiguous && return select_rows(content, Int(starts[1])+1:Int(stops[end]))
    rows = Int[]
    for i in eachindex(starts)
        append!(rows, Int(starts[i])+1:Int(stops[i]))
    end
    return select_rows(content, rows)
end

flatten(v::AbstractVector) = throw(ArgumentError("flatten needs a ListVector (a jagged vector), not a $(nameof(typeof(v)))"))
