"""
    IndexedVector(content, index, parameters)

An Awkward `IndexedArray`: element `i` is `content[index[i]+1]`. A categorical array
(`"__array__" => "categorical"`) is one, so it behaves like its values.
"""
struct IndexedVector{T,C<:AbstractVector,I<:Integer} <: BridgeView{T}
    content::C
    index::Vector{I}
    parameters::Parameters
end

IndexedVector(content::AbstractVector, index::Vector{I}, parameters::Parameters) where {I} =
    IndexedVector{eltype(content),typeof(content),I}(content, index, parameters)

Base.size(v::IndexedVector) = size(getfield(v, :index))

function Base.getindex(v::IndexedVector, i::Int)
    j = Int(getfield(v, :index)[i]) + 1
    checkbounds(getfield(v, :content), j)
    return getfield(v, :content)[j]
end
