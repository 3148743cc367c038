# Selecting elements of a view (`v[2:5]`, `v[mask]`, `v[[3, 1]]`, `view(v, …)`, `filter`) gives
# the same kind of view over the same buffers, so field access and projection keep working and
# no element is copied: only the selection itself is stored, as a range or an index vector of
# its own (Base's `filter` empties the index vector it passes to `getindex`).

"""
    select_rows(v::AbstractArray, rows::Union{Base.OneTo{Int},Rows}) -> AbstractArray

Elements `rows` of `v`, without copying them: a record, list or string view stays that kind of
view (a [`RecordVector`](@ref) keeps only the rows, a [`ListVector`](@ref) views its starts and
stops); any other vector becomes a `SubArray`, and a matrix the `SubArray` of those rows. `Base.OneTo` rows are a whole record array's,
whose columns have exactly its length, so they select the whole vector. Bounds are checked.
"""
Base.@propagate_inbounds select_rows(v::AbstractVector, rows::Rows) = view(v, rows)
select_rows(v::AbstractVector, ::Base.OneTo{Int}) = v
select_rows(A::AbstractArray{T,N}, rows::Rows) where {T,N} = view(A, rows, ntuple(_ -> Colon(), Val(N - 1))...)
select_rows(A::AbstractArray, ::Base.OneTo{Int}) = A

Base.@propagate_inbounds select_rows(rv::RecordVector, rows::Rows) =
    RecordVector(getfield(rv, :columns), rows_of_rows(getfield(rv, :rows), rows), getfield(rv, :parameters))

# Rows `rows` of a selection `outer`. Of a whole record array's `OneTo`, they are themselves:
# this is every list's records (`ev.Jet`), so it skips Base's range arithmetic, which checks for
# overflow, on each event.
Base.@propagate_inbounds rows_of_rows(outer::AbstractVector{Int}, rows::Rows) = outer[rows]
Base.@propagate_inbounds function rows_of_rows(outer::Base.OneTo{Int}, rows::Rows)
    @boundscheck checkbounds(outer, rows)
    return rows
end

select_rows(v::ListVector, rows::Rows) =
    ListVector(getfield(v, :content), view(getfield(v, :starts), rows), view(getfield(v, :stops), rows),
               getfield(v, :parameters))

select_rows(v::StringVector, rows::Rows) = StringVector(select_rows(v.lists, rows))

"""The views whose selections stay views of their own kind (see [`select_rows`](@ref))."""
const SelectableView = Union{RecordVector,ListVector,StringVector}

# The selection a view keeps: a range as it is, anything else as a new Vector{Int}.
owned_rows(rows::AbstractUnitRange{<:Integer}) = UnitRange{Int}(rows)
owned_rows(rows::AbstractVector{<:Integer}) = Vector{Int}(rows)
owned_rows(mask::AbstractVector{Bool}) = findall(mask)

function Base.getindex(v::SelectableView, rows::AbstractVector{<:Integer})
    checkbounds(v, rows)
    return select_rows(v, owned_rows(rows))
end

Base.getindex(v::SelectableView, ::Colon) = v
Base.view(v::SelectableView, rows::AbstractVector{<:Integer}) = v[rows]
Base.view(v::SelectableView, ::Colon) = v
