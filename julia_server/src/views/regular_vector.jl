"""
    RegularVector(content, size, length, parameters)

An Awkward `RegularArray` (or a `NumpyArray` dimension of `inner_shape`): `length` lists of
exactly `size` elements; element `i` is `view(content, (i-1)*size+1:i*size)`. The length is
stored because a list size of 0 leaves the content empty.
"""
struct RegularVector{T,C<:AbstractArray} <: BridgeView{T}
    content::C
    size::Int
    length::Int
    parameters::Parameters
end

RegularVector(content::AbstractArray, size::Int, length::Int, parameters::Parameters) =
    RegularVector{typeof(select_rows(content, 1:0)),typeof(content)}(content, size, length, parameters)

Base.size(v::RegularVector) = (getfield(v, :length),)

Base.@propagate_inbounds function Base.getindex(v::RegularVector, i::Int)
    @boundscheck checkbounds(v, i)
    @inbounds return select_rows(getfield(v, :content), (i-1)*getfield(v, :size)+1:i*getfield(v, :size))
end

"""
    regular_rows(A::AbstractArray) -> AbstractVector

An array as a vector of its rows, as NumPy holds it: a vector as it is; an `N`-dimensional
array as `N - 1` nested [`RegularVector`](@ref)s over its elements in row-major order, element
`[i]` being row `i` (`A[i, :, …]`). An array opened from a NumPy `inner_shape` is already in
that order, so its rows are views of the same buffer; any other is copied once.
"""
regular_rows(A::AbstractVector) = A
regular_rows(A::AbstractArray) = nest_rows(vec(permutedims(A, ndims(A):-1:1)), size(A))

function regular_rows(A::PermutedDimsArray{T,N,perm}) where {T,N,perm}
    reshaped = parent(A)
    is_numpy_rows = perm == ntuple(d -> N + 1 - d, Val(N)) && reshaped isa Base.ReshapedArray{T,N,<:AbstractVector}
    return nest_rows(is_numpy_rows ? parent(reshaped) : vec(permutedims(A, N:-1:1)), size(A))
end

function nest_rows(flat::AbstractVector, shape::Dims)
    nested = flat
    for d in length(shape):-1:2
        nested = RegularVector(nested, shape[d], prod(shape[1:d-1]), Parameters())
    end
    return nested
end

"""
    numpy_rows(data::AbstractVector, shape::Dims) -> AbstractArray

The `shape`-sized array over `data` in NumPy's row-major order, without copying: `A[i, j]` is
`data[(i-1)*shape[2] + j]`. A NumPy array with `inner_shape` arrives as this.
"""
numpy_rows(data::AbstractVector, shape::Dims{N}) where {N} =
    PermutedDimsArray(reshape(data, reverse(shape)), ntuple(d -> N + 1 - d, Val(N)))
