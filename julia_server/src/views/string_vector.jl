"""
    StringVector(lists)

An Awkward array of strings (a list of `"char"` bytes with `"__array__" => "string"`): element
`i` is a `String` holding a copy of list `i`'s bytes. Byte strings (`"bytestring"`) stay a
[`ListVector`](@ref) whose elements are `UInt8` views.
"""
struct StringVector{L<:ListVector} <: BridgeView{String}
    lists::L
end

Base.size(v::StringVector) = size(v.lists)
Base.getindex(v::StringVector, i::Int) = String(v.lists[i])
parameters(v::StringVector) = parameters(v.lists)
