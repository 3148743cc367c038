# The supertype of the bridge's own views. An index the user gives is bounds-checked as Julia's
# arrays check theirs (`@boundscheck`, so `@inbounds` in user code lifts it); positions read from
# a buffer are trusted once `validate` has checked them. Only the client's own executor reads
# them, and the client runs code there anyway, so a buffer it changes after validation can crash
# only its own executor (docs/ownership.md, "Limits", which says what the checks cost).

"""
    BridgeView{T} <: AbstractVector{T}

Supertype of the views `open_array` builds over Awkward buffers (lists, records, options, …).
A view keeps its node's Awkward parameters ([`parameters`](@ref)), so `place_array` writes it
back with the same Awkward type.
"""
abstract type BridgeView{T} <: AbstractVector{T} end

Base.IndexStyle(::Type{<:BridgeView}) = IndexLinear()

# As Julia's `Array` iterates: the index is in range by construction, so the element is read
# without checking it again (AbstractArray's fallback checks every one).
@inline Base.iterate(v::BridgeView, i::Int=1) = (i - 1) % UInt < length(v) % UInt ? (@inbounds(v[i]), i + 1) : nothing

parameters(v::BridgeView) = getfield(v, :parameters)

# `v.pt = x` on a view would replace a whole column, which a view, a window on buffers, cannot do;
# Julia's own message ("type RecordVector has no field pt") misleads.
Base.setproperty!(v::BridgeView, name::Symbol, x) =
    throw(ArgumentError("cannot assign field $name of a $(nameof(typeof(v))): $(how_to_write_field(v, name)) " *
                        "(in c = copy(x) for an argument, which is read-only)"))

# How to write field `name` of the records in view `v`, in a builder's result or a copy.
how_to_write_field(::BridgeView, name::Symbol) =
    "write each record's field, x[i].$name = value, or x[i][k].$name = value in lists of records"

"""
    row(c::AbstractArray, i::Int)

Element `i` of `c` along its first axis: `c[i]` for a vector, the view `c[i, :, …]` for a
matrix or higher array (a NumPy array with `inner_shape`). Bounds are checked.
"""
Base.@propagate_inbounds row(c::AbstractVector, i::Int) = c[i]
row(c::AbstractArray{T,N}, i::Int) where {T,N} = view(c, i, ntuple(_ -> Colon(), Val(N - 1))...)

"""
    row_type(c::AbstractArray) -> Type

The type of `row(c, i)`: `eltype(c)` for a vector; for an empty higher array, whose rows
cannot be looked at, `Any`.
"""
row_type(c::AbstractVector) = eltype(c)
row_type(c::AbstractArray) = size(c, 1) > 0 ? typeof(row(c, 1)) : Any
