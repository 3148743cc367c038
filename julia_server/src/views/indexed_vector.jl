"""
    IndexedVector(content, index, parameters)

An Awkward `IndexedArray`: element `i` is `content[index[i]+1]`. A categorical array
(`"__array__" => "categorical"`) is one, so it behaves like its values.
"""
struct IndexedVector{T,C<:AbstractArray,I<:Integer} <: BridgeView{T}
    content::C
    index::Vector{I}
    parameters::Parameters
end

IndexedVector(content::AbstractArray, index::Vector{I}, parameters::Parameters) where {I} =
    IndexedVector{row_type(content),typeof(content),I}(content, index, parameters)

Base.size(v::IndexedVector) = size(getfield(v, :index))

Base.@propagate_inbounds function Base.getindex(v::IndexedVector, i::Int)
    @boundscheck checkbounds(v, i)
    @inbounds return row(getfield(v, :content), Int(getfield(v, :index)[i]) + 1)
end
