"""
    ParameterizedVector(data, parameters)

A `NumpyArray` that carries Awkward parameters (for example the `"char"` content of strings):
it indexes like `data` and keeps `parameters` for the way back. Without parameters a
`NumpyArray` is just its data vector.
"""
struct ParameterizedVector{T,V<:AbstractVector{T}} <: BridgeView{T}
    data::V
    parameters::Parameters
end

Base.size(v::ParameterizedVector) = size(v.data)
Base.getindex(v::ParameterizedVector, i::Int) = v.data[i]
