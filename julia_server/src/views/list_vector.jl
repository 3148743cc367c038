"""
    ListVector(content, starts, stops, parameters)

An Awkward `ListOffsetArray` or `ListArray` as a vector of lists: element `i` is elements
`starts[i]+1:stops[i]` of `content`, a view (a `SubArray` of numbers, a [`RecordVector`](@ref)
of records, a `ListVector` of lists), so it behaves like `Vector{Vector{T}}` (`length`,
indexing, iteration, `sum.(v)`, `collect`) without copying. `v.x` projects field `x` of the
records inside ([`project_field`](@ref)). For a `ListOffsetArray`, `starts` and `stops` are two
windows of its offsets, one item apart.
"""
struct ListVector{T,C<:AbstractArray,S<:AbstractVector{<:Integer}} <: BridgeView{T}
    content::C
    starts::S
    stops::S
    parameters::Parameters
end

function ListVector(content::AbstractArray, starts::S, stops::S, parameters::Parameters) where {S}
    T = typeof(select_rows(content, 1:0))
    return ListVector{T,typeof(content),S}(content, starts, stops, parameters)
end

Base.size(v::ListVector) = size(getfield(v, :starts))

Base.@propagate_inbounds function Base.getindex(v::ListVector, i::Int)
    @boundscheck checkbounds(v, i)
    @inbounds range = Int(getfield(v, :starts)[i])+1:Int(getfield(v, :stops)[i])
    return @inbounds select_rows(getfield(v, :content), range)
end
