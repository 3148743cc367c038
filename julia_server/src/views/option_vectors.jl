# The four Awkward option types, each an AbstractVector{Union{Missing,T}}.

"""
    IndexedOptionVector(content, index, parameters)

An Awkward `IndexedOptionArray`: element `i` is `missing` where `index[i] < 0`, else
`content[index[i]+1]`.
"""
struct IndexedOptionVector{T,C<:AbstractArray,I<:Integer} <: BridgeView{Union{Missing,T}}
    content::C
    index::Vector{I}
    parameters::Parameters
end

IndexedOptionVector(content::AbstractArray, index::Vector{I}, parameters::Parameters) where {I} =
    IndexedOptionVector{row_type(content),typeof(content),I}(content, index, parameters)

Base.size(v::IndexedOptionVector) = size(getfield(v, :index))

Base.@propagate_inbounds function Base.getindex(v::IndexedOptionVector, i::Int)
    @boundscheck checkbounds(v, i)
    @inbounds j = Int(getfield(v, :index)[i])
    j < 0 && return missing
    @inbounds return row(getfield(v, :content), j + 1)
end

"""
    ByteMaskedVector(content, mask, valid_when, parameters)

An Awkward `ByteMaskedArray`: element `i` is `content[i]` where `(mask[i] != 0) == valid_when`,
else `missing`.
"""
struct ByteMaskedVector{T,C<:AbstractArray} <: BridgeView{Union{Missing,T}}
    content::C
    mask::Vector{Int8}
    valid_when::Bool
    parameters::Parameters
end

ByteMaskedVector(content::AbstractArray, mask::Vector{Int8}, valid_when::Bool, parameters::Parameters) =
    ByteMaskedVector{row_type(content),typeof(content)}(content, mask, valid_when, parameters)

Base.size(v::ByteMaskedVector) = size(getfield(v, :mask))
Base.@propagate_inbounds function Base.getindex(v::ByteMaskedVector, i::Int)
    @boundscheck checkbounds(v, i)
    @inbounds return (getfield(v, :mask)[i] != 0) == getfield(v, :valid_when) ? row(getfield(v, :content), i) : missing
end

"""
    BitMaskedVector(content, mask, valid_when, lsb_order, length, parameters)

An Awkward `BitMaskedArray`: element `i` is `content[i]` where bit `i-1` of `mask` equals
`valid_when`, else `missing`. With `lsb_order` bit 0 of each byte is its least significant.
"""
struct BitMaskedVector{T,C<:AbstractArray} <: BridgeView{Union{Missing,T}}
    content::C
    mask::Vector{UInt8}
    valid_when::Bool
    lsb_order::Bool
    length::Int
    parameters::Parameters
end

BitMaskedVector(content::AbstractArray, mask::Vector{UInt8}, valid_when::Bool, lsb_order::Bool,
                length::Int, parameters::Parameters) =
    BitMaskedVector{row_type(content),typeof(content)}(content, mask, valid_when, lsb_order, length, parameters)

Base.size(v::BitMaskedVector) = (getfield(v, :length),)

# Element `i`'s bit in a bit-packed mask: with `lsb_order` bit 0 of each byte is its least
# significant, otherwise its most significant (Awkward's BitMaskedArray convention).
Base.@propagate_inbounds mask_bit(mask::AbstractVector{UInt8}, i::Int, lsb_order::Bool) =
    (mask[(i-1)>>3+1] >> bit_shift(i, lsb_order)) & 0x01 == 0x01
bit_shift(i::Int, lsb_order::Bool) = lsb_order ? (i - 1) & 7 : 7 - (i - 1) & 7

Base.@propagate_inbounds function Base.getindex(v::BitMaskedVector, i::Int)
    @boundscheck checkbounds(v, i)
    @inbounds return mask_bit(getfield(v, :mask), i, getfield(v, :lsb_order)) == getfield(v, :valid_when) ?
                     row(getfield(v, :content), i) : missing
end

"""
    UnmaskedVector(content, parameters)

An Awkward `UnmaskedArray`: an option type with no missing elements; element `i` is `content[i]`.
"""
struct UnmaskedVector{T,C<:AbstractArray} <: BridgeView{Union{Missing,T}}
    content::C
    parameters::Parameters
end

UnmaskedVector(content::AbstractArray, parameters::Parameters) =
    UnmaskedVector{row_type(content),typeof(content)}(content, parameters)

Base.size(v::UnmaskedVector) = (size(getfield(v, :content), 1),)
Base.@propagate_inbounds Base.getindex(v::UnmaskedVector, i::Int) = row(getfield(v, :content), i)
