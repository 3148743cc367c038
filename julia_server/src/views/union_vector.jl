"""
    UnionVector(tags, index, contents, parameters)

An Awkward `UnionArray`: element `i` is `contents[tags[i]+1][index[i]+1]`, so elements have
the element type of whichever content they come from.
"""
struct UnionVector{T,C<:Tuple,I<:Integer} <: BridgeView{T}
    tags::Vector{Int8}
    index::Vector{I}
    contents::C
    parameters::Parameters
end

UnionVector(tags::Vector{Int8}, index::Vector{I}, contents::Tuple, parameters::Parameters) where {I} =
    UnionVector{Union{map(row_type, contents)...},typeof(contents),I}(tags, index, contents, parameters)

Base.size(v::UnionVector) = size(v.tags)

Base.@propagate_inbounds function Base.getindex(v::UnionVector, i::Int)
    @boundscheck checkbounds(v, i)
    @inbounds tag = Int(v.tags[i]) + 1
    # the tag picks the element's type: checked, as a wrong one would read a content as another
    1 <= tag <= length(v.contents) || throw(BoundsError(v.contents, tag))
    @inbounds return row(v.contents[tag], Int(v.index[i]) + 1)
end
