# The supertype of the bridge's own views. Their positions come from another process's buffers,
# which may change after validation, so every position read from a buffer is bounds-checked
# explicitly (never `@inbounds`, never `@propagate_inbounds`): a bad one is a `BoundsError`.

"""
    BridgeView{T} <: AbstractVector{T}

Supertype of the views `open_array` builds over Awkward buffers (lists, records, options, …).
A view keeps its node's Awkward parameters ([`parameters`](@ref)), so `place_array` writes it
back with the same Awkward type.
"""
abstract type BridgeView{T} <: AbstractVector{T} end

Base.IndexStyle(::Type{<:BridgeView}) = IndexLinear()

parameters(v::BridgeView) = getfield(v, :parameters)
