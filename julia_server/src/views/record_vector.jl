# Awkward records: a RecordVector holds one column per field; its elements are lightweight
# `Record`s (named fields) or plain Julia tuples (a RecordArray with `fields: null`).

"""
    Record

One element of a [`RecordVector`](@ref) with named fields: `r.x` (or `r[:x]`, or `r[1]` by
position) reads field `x` from its column. `propertynames(r)` and `keys(r)` list the fields,
`NamedTuple(r)` copies the values out, and `length(r)` counts the fields.
"""
struct Record{C<:NamedTuple}
    columns::C
    index::Int
    parameters::Parameters
end

Base.getproperty(r::Record, name::Symbol) = getfield(getfield(r, :columns), name)[getfield(r, :index)]
Base.getindex(r::Record, name::Symbol) = getproperty(r, name)
Base.getindex(r::Record, position::Int) = getfield(getfield(r, :columns), position)[getfield(r, :index)]
Base.propertynames(r::Record) = keys(getfield(r, :columns))
Base.keys(r::Record) = keys(getfield(r, :columns))
Base.length(r::Record) = length(getfield(r, :columns))
Base.NamedTuple(r::Record) = map(column -> column[getfield(r, :index)], getfield(r, :columns))
parameters(r::Record) = getfield(r, :parameters)

function Base.show(io::IO, r::Record)
    print(io, "Record")
    show(io, NamedTuple(r))
end

"""
    RecordVector(columns, length, parameters)

An Awkward `RecordArray`. With `columns` a `NamedTuple` of column vectors, `rv[i]` is a
[`Record`](@ref) and `rv.x` is the whole column `x` (`propertynames(rv)` lists the fields);
with `columns` a `Tuple` (an Awkward tuple), `rv[i]` is a Julia `Tuple`. [`column`](@ref)
reads a column by name or position in both cases.
"""
struct RecordVector{T,C<:Union{NamedTuple,Tuple}} <: BridgeView{T}
    columns::C
    length::Int
    parameters::Parameters
end

RecordVector(columns::NamedTuple, length::Int, parameters::Parameters) =
    RecordVector{Record{typeof(columns)},typeof(columns)}(columns, length, parameters)

RecordVector(columns::Tuple, length::Int, parameters::Parameters) =
    RecordVector{Tuple{map(eltype, columns)...},typeof(columns)}(columns, length, parameters)

Base.size(rv::RecordVector) = (getfield(rv, :length),)

function Base.getindex(rv::RecordVector{<:Record}, i::Int)
    checkbounds(rv, i)
    return Record(getfield(rv, :columns), i, getfield(rv, :parameters))
end

function Base.getindex(rv::RecordVector{<:Tuple}, i::Int)
    checkbounds(rv, i)
    return map(column -> column[i], getfield(rv, :columns))
end

Base.getproperty(rv::RecordVector, name::Symbol) = getfield(getfield(rv, :columns), name)
Base.propertynames(rv::RecordVector) = propertynames(getfield(rv, :columns))

"""
    column(rv::RecordVector, field::Union{Symbol,Int}) -> AbstractVector

The whole column of field `field` (a name, or a 1-based position, which also works for tuples).
"""
column(rv::RecordVector, field::Union{Symbol,Int}) = getfield(getfield(rv, :columns), field)

"""
    record_columns(rv::RecordVector) -> Union{NamedTuple,Tuple}

All columns, by field name (records) or position (tuples).
"""
record_columns(rv::RecordVector) = getfield(rv, :columns)
