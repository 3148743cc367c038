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

Base.size(v::RegularVector) = (getfield(v, :length),)

function Base.getindex(v::RegularVector, i::Int)
    checkbounds(v, i)
    range = (i-1)*getfield(v, :size)+1:i*getfield(v, :size)
    checkbounds(getfield(v, :content), range)
    return view(getfield(v, :content), range)
end

"""
    regular_rows(A::AbstractArray) -> RegularVector

An `N`-dimensional array as `N - 1` nested [`RegularVector`](@ref)s in NumPy's row-major order:
element `[i]` is row `i` (`A[i, :, …]`). The elements are copied once, in that order.
"""
function regular_rows(A::AbstractArray)
    N = ndims(A)
    flat = vec(permutedims(A, N:-1:1))
    nested = flat
    for d in N:-1:2
        nested = RegularVector(nested, size(A, d), prod(size(A)[1:d-1]), Parameters())
    end
    return nested
end
