# Awkward's projection: a field of records seen through the lists and options that hold them.
# `events.Jet.pt` is the jagged vector of every event's jet pts, over the same offsets and the
# same pt column, as `events.Jet["pt"]` is in awkward.

"""
    project_field(v::AbstractVector, field::Union{Symbol,Int}) -> AbstractVector

Field `field` of the records inside `v`, through any lists, options and indexes around them,
without copying: the same structure over the field's column. `v.field` calls it on a
[`ListVector`](@ref), [`RegularVector`](@ref), [`IndexedVector`](@ref) and the option views;
[`column`](@ref) calls it on any of them. Raises `ArgumentError` when `v` holds no records or
they have no such field.
"""
@inline project_field(rv::RecordVector, field::Union{Symbol,Int}) = column(rv, field)

@inline project_field(v::ListVector, field::Union{Symbol,Int}) =
    ListVector(project_field(getfield(v, :content), field), getfield(v, :starts), getfield(v, :stops),
               getfield(v, :parameters))

@inline project_field(v::RegularVector, field::Union{Symbol,Int}) =
    RegularVector(project_field(getfield(v, :content), field), getfield(v, :size), getfield(v, :length),
                  getfield(v, :parameters))

@inline project_field(v::IndexedVector, field::Union{Symbol,Int}) =
    IndexedVector(project_field(getfield(v, :content), field), getfield(v, :index), getfield(v, :parameters))

@inline project_field(v::IndexedOptionVector, field::Union{Symbol,Int}) =
    IndexedOptionVector(project_field(getfield(v, :content), field), getfield(v, :index), getfield(v, :parameters))

@inline project_field(v::ByteMaskedVector, field::Union{Symbol,Int}) =
    ByteMaskedVector(project_field(getfield(v, :content), field), getfield(v, :mask), getfield(v, :valid_when),
                     getfield(v, :parameters))

@inline project_field(v::BitMaskedVector, field::Union{Symbol,Int}) =
    BitMaskedVector(project_field(getfield(v, :content), field), getfield(v, :mask), getfield(v, :valid_when),
                    getfield(v, :lsb_order), getfield(v, :length), getfield(v, :parameters))

@inline project_field(v::UnmaskedVector, field::Union{Symbol,Int}) =
    UnmaskedVector(project_field(getfield(v, :content), field), getfield(v, :parameters))

@inline project_field(v::AbstractVector, field::Union{Symbol,Int}) =
    throw(ArgumentError("there is no field $(repr(field)) to take: the values inside are a $(nameof(typeof(v))), not records"))

"""The views whose `v.field` projects a field of the records inside them."""
const ProjectingView = Union{ListVector,RegularVector,IndexedVector,IndexedOptionVector,ByteMaskedVector,
                             BitMaskedVector,UnmaskedVector}

@inline Base.getproperty(v::ProjectingView, field::Symbol) = project_field(v, field)
Base.propertynames(v::ProjectingView) = record_fields(getfield(v, :content))

@inline column(v::ProjectingView, field::Union{Symbol,Int}) = project_field(v, field)
# a field named by a string, as Python names it: `bridge.call("column", events, "Muon_pt")`
column(v::Union{RecordVector,ProjectingView}, field::AbstractString) = column(v, Symbol(field))

# The field names of the records a view holds, for tab completion; () where it holds none.
record_fields(rv::RecordVector) = propertynames(rv)
record_fields(v::ProjectingView) = record_fields(getfield(v, :content))
record_fields(::AbstractVector) = ()
