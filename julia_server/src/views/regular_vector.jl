"""
    RegularVector(content, size, length, parameters)

An Awkward `RegularArray` (or a `NumpyArray` dimension of `inner_shape`): `length` lists of
exactly `size` elements; element `i` is `view(content, (i-1)*size+1:i*size)`. The length is
stored because a list size of 0 leaves the content empty.
"""
struct RegularVector{T,C<:AbstractVector} <: BridgeView{T}
    content::C
    size::Int
    length::Int
    parameters::Parameters
end

RegularVector(content::AbstractVector, size::Int, length::Int, parameters::Parameters) =
    RegularVector{typeof(view(content, 1:0)),typeof(content)}(content, size, length, parameters)

Base.size(v::RegularVector) = (v.length,)

function Base.getindex(v::RegularVector, i::Int)
    checkbounds(v, i)
    range = (i-1)*v.size+1:i*v.size
    checkbounds(v.content, range)
    return view(v.content, range)
end
