# Awkward records: a RecordVector holds one column per field; its elements are lightweight
# `Record`s (named fields) or plain Julia tuples (a RecordArray with `fields: null`).

"""
    Record

One element of a [`RecordVector`](@ref) with named fields: `r.x` (or `r[:x]`, or `r[1]` by
position) reads field `x` from its column, and `r.x = v` writes it there (a builder's records;
an argument's are read-only). `propertynames(r)` and `keys(r)` list the fields, `NamedTuple(r)`
copies the values out, and `length(r)` counts the fields.
"""
struct Record{C<:Union{NamedTuple,WideColumns}}
    columns::C
    index::Int
    parameters::Parameters
end

# Inlined, so a field name written in the code is a constant and `ev.Jet` has one concrete type.
@inline function Base.getindex(r::Record, field::Union{Symbol,Int})
    columns = getfield(r, :columns)
    has_field(columns, field) || throw(no_field_error(columns, field))
    return @inbounds row(column_at(columns, field), getfield(r, :index))
end
@inline Base.getproperty(r::Record, name::Symbol) = r[name]

# A field written in its column: the records of a builder (`shared_records`, `shared_lists`)
# can be filled this way; an argument's columns are read-only, so writing one fails there.
@inline function Base.setproperty!(r::Record, name::Symbol, x)
    columns = getfield(r, :columns)
    has_field(columns, name) || throw(no_field_error(columns, name))
    column = column_at(columns, name)
    # a matrix column's field is a row of it
    column isa AbstractVector ? (column[getfield(r, :index)] = x) : (row(column, getfield(r, :index)) .= x)
    return x
end
Base.propertynames(r::Record) = keys(getfield(r, :columns))
Base.keys(r::Record) = keys(getfield(r, :columns))
Base.length(r::Record) = length(getfield(r, :columns))
Base.NamedTuple(r::Record{<:NamedTuple}) = map(column -> row(column, getfield(r, :index)), getfield(r, :columns))
Base.NamedTuple(r::Record) = NamedTuple{keys(r)}(Tuple(r[name] for name in keys(r)))
parameters(r::Record) = getfield(r, :parameters)

function Base.show(io::IO, r::Record)
    print(io, "Record")
    show(io, NamedTuple(r))
end

function Base.show(io::IO, r::Record{WideColumns})
    names = keys(r)
    print(io, "Record with $(length(names)) fields (", join(names[1:5], ", "), ", …)")
end

"""A selection of rows: a range of them, or any of them by position."""
const Rows = Union{UnitRange{Int},Vector{Int}}

"""
    RecordVector(columns, length, parameters)
    RecordVector(columns, rows, parameters)

An Awkward `RecordArray`. With `columns` a `NamedTuple` of column vectors, `rv[i]` is a
[`Record`](@ref) and `rv.x` is column `x` (`propertynames(rv)` lists the fields); with `columns`
a `Tuple` (an Awkward tuple), `rv[i]` is a Julia `Tuple`. [`column`](@ref) reads a column by
name or position in both cases.

`rows` are the rows of the columns the vector holds: `Base.OneTo(length)` for a whole record
array, a `UnitRange{Int}` or a `Vector{Int}` for a selection (`rv[2:5]`, `rv[mask]`, the records of one
list), so selecting records never touches the columns until a field is read. As with Base's
`SubArray` constructor, `rows` given here are not checked against the columns; indexing and
`view` check a selection before they make one.
"""
struct RecordVector{T,C<:Union{NamedTuple,Tuple,WideColumns},R<:Union{Base.OneTo{Int},Rows}} <: BridgeView{T}
    columns::C
    rows::R
    parameters::Parameters
end

RecordVector(columns::Union{NamedTuple,WideColumns}, rows::Union{Base.OneTo{Int},Rows}, parameters::Parameters) =
    RecordVector{Record{typeof(columns)},typeof(columns),typeof(rows)}(columns, rows, parameters)

RecordVector(columns::Tuple, rows::Union{Base.OneTo{Int},Rows}, parameters::Parameters) =
    RecordVector{Tuple{map(row_type, columns)...},typeof(columns),typeof(rows)}(columns, rows, parameters)

function RecordVector(columns::Union{NamedTuple,Tuple,WideColumns}, length::Int, parameters::Parameters)
    all(c -> size(c, 1) == length, columns) ||
        throw(ArgumentError("every column of $length records needs $length elements, not $(map(c -> size(c, 1), Tuple(columns)))"))
    return RecordVector(columns, Base.OneTo(length), parameters)
end

Base.size(rv::RecordVector) = (row_count(getfield(rv, :rows)),)

# The length of a selection without the overflow check of Base's `length(::UnitRange)`, which a
# loop over each event's particles pays per event (about 6% of `has_z` over an index): a range
# `a:b` ends at least one before its start, and these rows lie within a column.
row_count(rows::UnitRange{Int}) = last(rows) - first(rows) + 1
row_count(rows::Union{Base.OneTo{Int},Vector{Int}}) = length(rows)

Base.@propagate_inbounds function Base.getindex(rv::RecordVector{<:Record}, i::Int)
    @boundscheck checkbounds(rv, i)
    return Record(getfield(rv, :columns), @inbounds(getfield(rv, :rows)[i]), getfield(rv, :parameters))
end

function Base.getindex(rv::RecordVector{<:Tuple}, i::Int)
    i_row = getfield(rv, :rows)[i]
    return map(column -> row(column, i_row), getfield(rv, :columns))
end

@inline Base.getproperty(rv::RecordVector, name::Symbol) = column(rv, name)
how_to_write_field(::RecordVector, name::Symbol) = "write the column in place, x.$name .= values"
Base.propertynames(rv::RecordVector) = propertynames(getfield(rv, :columns))

"""
    column(rv::RecordVector, field::Union{Symbol,Int}) -> AbstractVector

Field `field` (a name, or a 1-based position, which also works for tuples) of every record in
`rv`, without copying: the column itself for a whole record array, a view of its rows for a
selection. Also works through lists and options of records ([`project_field`](@ref)).
"""
@inline function column(rv::RecordVector, field::Union{Symbol,Int})
    columns = getfield(rv, :columns)
    has_field(columns, field) || throw(no_field_error(columns, field))
    # the rows were checked against the columns when this view was made
    return @inbounds select_rows(column_at(columns, field), getfield(rv, :rows))
end

has_field(columns::NamedTuple, field::Symbol) = haskey(columns, field)
has_field(columns::Union{NamedTuple,Tuple}, field::Int) = 1 <= field <= length(columns)
has_field(::Tuple, ::Symbol) = false
column_at(columns::Union{NamedTuple,Tuple}, field::Union{Symbol,Int}) = getfield(columns, field)

function no_field_error(columns, field)
    names = columns isa Tuple ? "none (a tuple of $(length(columns)))" :
            length(columns) <= 50 ? join(keys(columns), ", ") :
            join(keys(columns)[1:50], ", ") * ", … ($(length(columns)) in all)"
    return ArgumentError("these records have no field $(repr(field)); their fields are $names")
end

"""
    record_columns(rv::RecordVector) -> Union{NamedTuple,Tuple,WideColumns}

All columns of the records in `rv`, by field name (records) or position (tuples).
"""
record_columns(rv::RecordVector) = map(c -> @inbounds(select_rows(c, getfield(rv, :rows))), getfield(rv, :columns))
