"""
    ListVector(content, starts, stops, parameters)

An Awkward `ListOffsetArray` or `ListArray` as a vector of lists: element `i` is
`view(content, starts[i]+1:stops[i])`, a `SubArray`, so it behaves like `Vector{Vector{T}}`
(`length`, indexing, iteration, `sum`, `collect`) without copying. For a `ListOffsetArray`,
`starts` and `stops` are the two overlapping views of its offsets.
"""
struct ListVector{T,C<:AbstractVector,S<:AbstractVector{<:Integer}} <: BridgeView{T}
    content::C
    starts::S
    stops::S
    parameters::Parameters
end

function ListVector(content::AbstractVector, starts::S, stops::S, parameters::Parameters) where {S}
    T = typeof(view(content, 1:0))
    return ListVector{T,typeof(content),S}(content, starts, stops, parameters)
end

Base.size(v::ListVector) = size(v.starts)

function Base.getindex(v::ListVector, i::Int)
    range = Int(v.starts[i])+1:Int(v.stops[i])
    checkbounds(v.content, range)
    return view(v.content, range)
end
