"""
    WideColumns(names::Vector{Symbol}, columns::Vector{AbstractArray})

The columns of a record with more than `WIDE_RECORD_FIELDS` fields (a whole NanoAOD file has
thousands), by name. A `NamedTuple` of that many columns is a type Julia takes seconds to
build and compile for (docs/performance.md, "First calls"), so these stay plain data: opening is fast,
and reading a field is a lookup whose type Julia learns only when it runs. A kernel over few
fields is faster given just those (`tree.arrays(filter_name=…)`, `events[["Jet_pt", …]]`).
"""
struct WideColumns
    names::Vector{Symbol}
    positions::Dict{Symbol,Int}
    columns::Vector{AbstractArray}
end

WideColumns(names::Vector{Symbol}, columns::Vector{AbstractArray}) =
    WideColumns(names, Dict(name => i for (i, name) in enumerate(names)), columns)

"""Records with more fields than this are [`WideColumns`](@ref)."""
const WIDE_RECORD_FIELDS = 200

Base.keys(c::WideColumns) = Tuple(c.names)
Base.propertynames(c::WideColumns) = Tuple(c.names)
Base.length(c::WideColumns) = length(c.columns)
Base.iterate(c::WideColumns, state...) = iterate(c.columns, state...)
Base.map(f, c::WideColumns) = WideColumns(c.names, c.positions, AbstractArray[f(x) for x in c.columns])

has_field(c::WideColumns, field::Symbol) = haskey(c.positions, field)
has_field(c::WideColumns, field::Int) = 1 <= field <= length(c.columns)
column_at(c::WideColumns, field::Symbol) = c.columns[c.positions[field]]
column_at(c::WideColumns, field::Int) = c.columns[field]
