"""
    BoolVector(bytes)

A NumPy `bool` buffer seen as `AbstractVector{Bool}`: element `i` is `bytes[i] != 0`. The bytes
are never reinterpreted as `Bool`, since another process may have written any value there.
"""
struct BoolVector <: AbstractVector{Bool}
    bytes::Vector{UInt8}
end

Base.size(v::BoolVector) = size(v.bytes)
Base.IndexStyle(::Type{BoolVector}) = IndexLinear()
Base.getindex(v::BoolVector, i::Int) = v.bytes[i] != 0x00
