# A plan is the Awkward layout a Julia result will be written as: a tree of nodes that knows
# each node's type and parameters, then (measure pass) how many elements each node holds, and
# finally (fill pass) the buffers it writes into and how far it has written.
#
# Plans are built only in shapes awkward accepts: an option never wraps an option, a union or
# an IndexedArray (`option_of` absorbs them), a masked option's content is at least as
# long as the option, and a union's contents are never unions, are all options or none, and are
# merged so that no two of them could hold the same value.

"""
    Plan

One node of the Awkward layout planned for a Julia value. Every plan has `parameters`,
`length` (elements counted by the measure pass) and `cursor` (elements written so far).
"""
abstract type Plan end

"""A `NumpyArray` of `T` values (`T` a key of `TYPE_PRIMITIVES`)."""
mutable struct NumpyPlan{T} <: Plan
    parameters::Parameters
    length::Int
    cursor::Int
    data::Vector{T}
end

NumpyPlan{T}(parameters::Parameters=Parameters()) where {T} = NumpyPlan{T}(parameters, 0, 0, T[])

"""A `ListOffsetArray` with int64 offsets (also strings and byte strings)."""
mutable struct ListPlan <: Plan
    parameters::Parameters
    content::Plan
    length::Int
    cursor::Int
    offsets::Vector{Int64}
end

ListPlan(parameters::Parameters, content::Plan) = ListPlan(parameters, content, 0, 0, Int64[])

"""A `RegularArray` of lists of `size` elements (written back from a `RegularVector`)."""
mutable struct RegularPlan <: Plan
    parameters::Parameters
    content::Plan
    size::Int
    length::Int
    cursor::Int
end

RegularPlan(parameters::Parameters, content::Plan, size::Int) = RegularPlan(parameters, content, size, 0, 0)

"""A `RecordArray`; `fields === nothing` for a tuple."""
mutable struct RecordPlan <: Plan
    parameters::Parameters
    fields::Union{Vector{Symbol},Nothing}
    contents::Vector{Plan}
    length::Int
    cursor::Int
end

RecordPlan(parameters::Parameters, fields, contents::Vector{Plan}) = RecordPlan(parameters, fields, contents, 0, 0)

"""
An option node: its `content` holds the values that are not missing. Every option node has the
same type and accepts the same values; the four subtypes are Awkward's four option classes.
"""
abstract type OptionPlan <: Plan end

"""An `IndexedOptionArray` with an int64 index: the option type of every result with `missing`."""
mutable struct IndexedOptionPlan <: OptionPlan
    parameters::Parameters
    content::Plan
    length::Int
    cursor::Int
    index::Vector{Int64}
end

IndexedOptionPlan(parameters::Parameters, content::Plan) = IndexedOptionPlan(parameters, content, 0, 0, Int64[])

"""
A `ByteMaskedArray` (written back from a `ByteMaskedVector`): one int8 mask byte per element,
and the content has one element per element, a placeholder where missing.
"""
mutable struct ByteMaskedPlan <: OptionPlan
    parameters::Parameters
    content::Plan
    valid_when::Bool
    length::Int
    cursor::Int
    mask::Vector{Int8}
end

ByteMaskedPlan(parameters::Parameters, content::Plan, valid_when::Bool) =
    ByteMaskedPlan(parameters, content, valid_when, 0, 0, Int8[])

"""
A `BitMaskedArray` (written back from a `BitMaskedVector`): a uint8 mask of one bit per element,
`cld(length, 8)` bytes, and one content element per element, a placeholder where missing.
"""
mutable struct BitMaskedPlan <: OptionPlan
    parameters::Parameters
    content::Plan
    valid_when::Bool
    lsb_order::Bool
    length::Int
    cursor::Int
    mask::Vector{UInt8}
end

BitMaskedPlan(parameters::Parameters, content::Plan, valid_when::Bool, lsb_order::Bool) =
    BitMaskedPlan(parameters, content, valid_when, lsb_order, 0, 0, UInt8[])

"""An `UnmaskedArray` (written back from an `UnmaskedVector`): an option type with no missing values."""
mutable struct UnmaskedPlan <: OptionPlan
    parameters::Parameters
    content::Plan
    length::Int
    cursor::Int
end

UnmaskedPlan(parameters::Parameters, content::Plan) = UnmaskedPlan(parameters, content, 0, 0)

"""The option plans whose content holds one element per element (no index)."""
const MaskPlan = Union{ByteMaskedPlan,BitMaskedPlan,UnmaskedPlan}

"""
An `IndexedArray` (written back from an `IndexedVector`, e.g. a categorical): each distinct
value is written to the content once, in order of first appearance, as a categorical needs.
"""
mutable struct IndexedPlan <: Plan
    parameters::Parameters
    content::Plan
    length::Int
    cursor::Int
    index::Vector{Int64}
    positions::Dict{Any,Int}    # value => 0-based position in the content
end

IndexedPlan(parameters::Parameters, content::Plan) =
    IndexedPlan(parameters, content, 0, 0, Int64[], Dict{Any,Int}())

"""A `UnionArray` with int8 tags and an int64 index."""
mutable struct UnionPlan <: Plan
    parameters::Parameters
    contents::Vector{Plan}
    length::Int
    cursor::Int
    tags::Vector{Int8}
    index::Vector{Int64}
end

UnionPlan(parameters::Parameters, contents::Vector{Plan}) = UnionPlan(parameters, contents, 0, 0, Int8[], Int64[])

"""An `EmptyArray`: no element seen, so no type known."""
mutable struct EmptyPlan <: Plan
    length::Int
    cursor::Int
end

EmptyPlan() = EmptyPlan(0, 0)

parameters(p::Plan) = p.parameters
parameters(::EmptyPlan) = Parameters()

"""What is written as an Awkward string: strings, and `Symbol`s and `Char`s as their text."""
const StringLike = Union{AbstractString,Symbol,AbstractChar}

"""The plan of strings: a list of `"char"` bytes with `"__array__" => "string"`."""
string_plan() = ListPlan(Parameters("__array__" => "string"),
                         NumpyPlan{UInt8}(Parameters("__array__" => "char")))

is_string_plan(p::ListPlan) = get(p.parameters, "__array__", nothing) == "string"

"""
    option_of(plan, parameters=Parameters()) -> Plan

`plan` with missing values allowed: an `IndexedOptionPlan` around it, or (for a union) around
each of its contents, or (for an `IndexedPlan`, e.g. a categorical) in its place; an option plan
is returned as it is.
"""
function option_of(p::Plan, params::Parameters=Parameters())
    p isa OptionPlan && return p
    p isa UnionPlan && return UnionPlan(p.parameters, Plan[option_of(c) for c in p.contents])
    p isa IndexedPlan && return IndexedOptionPlan(merge(p.parameters, params), p.content)
    return IndexedOptionPlan(params, p)
end

strip_option(p::Plan) = p isa OptionPlan ? p.content : p

"""
    indexed_of(content, parameters) -> Plan

An `IndexedPlan` over `content`, or `content` itself where awkward allows no IndexedArray
(over an option, a union or another IndexedArray).
"""
indexed_of(content::Plan, params::Parameters) =
    content isa Union{OptionPlan,UnionPlan,IndexedPlan} ? content : IndexedPlan(params, content)

"""
    placeholder(plan)

A value that fits `plan`, written into a masked option's content where the option is missing,
which awkward never reads: zero, an empty list or string, `missing`, a record of placeholders.
"""
placeholder(::NumpyPlan{T}) where {T} = zero_value(T)
placeholder(p::ListPlan) = is_string_plan(p) ? "" : Union{}[]
placeholder(p::RegularPlan) = fill(placeholder(p.content), p.size)
placeholder(p::RecordPlan) = p.fields === nothing ? Tuple(map(placeholder, p.contents)) :
                             NamedTuple{Tuple(p.fields)}(Tuple(map(placeholder, p.contents)))
placeholder(::OptionPlan) = missing
placeholder(p::IndexedPlan) = placeholder(p.content)
placeholder(p::UnionPlan) = placeholder(p.contents[1])
placeholder(::EmptyPlan) = throw(ArgumentError("an EmptyArray has no element to stand in for a missing value"))

zero_value(T::Type) = zero(T)
zero_value(::Type{Datetime64{P}}) where {P} = Datetime64{P}(0)

# The category of a NumPy element type: values of one category share a NumpyArray.
numeric_class(T::Type) = T === Bool ? Bool : T <: Number ? Number : T

"""
    merge_key(plan)

Plans with equal keys merge into one node; different keys become contents of a union.
"""
merge_key(p::NumpyPlan{T}) where {T} = (:numpy, numeric_class(T), p.parameters)
merge_key(p::ListPlan) = (:list, p.parameters)
merge_key(p::RegularPlan) = (:regular, p.size, p.parameters)
merge_key(p::RecordPlan) = (:record, p.fields, length(p.contents), p.parameters)
merge_key(p::IndexedPlan) = (:indexed, p.parameters)

function promoted_primitive(T::Type, S::Type)
    R = promote_type(T, S)
    haskey(TYPE_PRIMITIVES, R) || throw(ResultTypeError("$T and $S values promote to $R, which has no Awkward equivalent"))
    return R
end

merge_same(a::NumpyPlan{T}, ::NumpyPlan{T}) where {T} = a
merge_same(a::NumpyPlan{T}, ::NumpyPlan{S}) where {T,S} = NumpyPlan{promoted_primitive(T, S)}(a.parameters)
merge_same(a::ListPlan, b::ListPlan) = ListPlan(a.parameters, merge_plans(a.content, b.content))
merge_same(a::RegularPlan, b::RegularPlan) = RegularPlan(a.parameters, merge_plans(a.content, b.content), a.size)
merge_same(a::RecordPlan, b::RecordPlan) =
    RecordPlan(a.parameters, a.fields, Plan[merge_plans(x, y) for (x, y) in zip(a.contents, b.contents)])
merge_same(a::IndexedPlan, b::IndexedPlan) = indexed_of(merge_plans(a.content, b.content), a.parameters)

"""
    merge_plans(a, b) -> Plan

One plan that holds the values of both: equal kinds merge (numbers promote as Julia promotes
them, except `Bool`, which stays apart as in awkward), `missing` makes an option (an
`IndexedOptionPlan`, whichever option classes were merged), anything else becomes a union.
"""
function merge_plans(a::Plan, b::Plan)
    a isa EmptyPlan && return b
    b isa EmptyPlan && return a
    (a isa UnionPlan || b isa UnionPlan) && return union_of(Plan[a, b])
    if a isa OptionPlan || b isa OptionPlan
        params = (a isa OptionPlan ? a : b).parameters
        return option_of(merge_plans(strip_option(a), strip_option(b)), params)
    end
    return merge_key(a) == merge_key(b) ? merge_same(a, b) : union_of(Plan[a, b])
end

"""
    union_of(members, parameters=Parameters()) -> Plan

A union holding the values of all `members`, with like members merged; a single remaining
kind is returned as itself (an option if any member was).
"""
function union_of(members::Vector{Plan}, params::Parameters=Parameters())
    flat = Plan[]
    for m in members
        m isa UnionPlan ? append!(flat, m.contents) : push!(flat, m)
    end
    optional = any(m -> m isa OptionPlan, flat)
    merged = Plan[]
    for m in flat
        inner = strip_option(m)
        inner isa IndexedPlan && (inner = inner.content)    # awkward unions hold no IndexedArrays
        inner isa EmptyPlan && continue
        i = findfirst(x -> merge_key(x) == merge_key(inner), merged)
        i === nothing ? push!(merged, inner) : (merged[i] = merge_same(merged[i], inner))
    end
    length(merged) > 128 && throw(ResultTypeError("a union of $(length(merged)) types has no Awkward equivalent (at most 128)"))
    if length(merged) <= 1
        single = isempty(merged) ? EmptyPlan() : merged[1]
        return optional ? option_of(single) : single
    end
    return UnionPlan(params, Plan[optional ? option_of(x) : x for x in merged])
end

"""
    accepts(plan, value) -> Int

How well `value` fits `plan`: 0 not at all, 1 after conversion, 2 exactly. A union sends each
value to its best-fitting content.
"""
function accepts(::NumpyPlan{T}, v) where {T}
    S = primitive_eltype(typeof(v))
    S === nothing && return 0
    S === T && return 2
    return numeric_class(S) === numeric_class(T) ? 1 : 0
end
accepts(p::ListPlan, v) = (is_string_plan(p) ? v isa StringLike : v isa AbstractArray) ? 2 : 0
accepts(p::RegularPlan, v) = v isa AbstractArray && size(v, 1) == p.size ? 2 : 0
accepts(p::OptionPlan, v) = v === missing ? 2 : accepts(p.content, v)
accepts(p::IndexedPlan, v) = accepts(p.content, v)
accepts(::EmptyPlan, v) = 0
accepts(p::RecordPlan, v::Tuple) =
    p.fields === nothing && length(v) == length(p.contents) ? (isempty(p.parameters) ? 2 : 1) : 0
accepts(p::RecordPlan, v::NamedTuple) =
    p.fields !== nothing && collect(keys(v)) == p.fields ? (isempty(p.parameters) ? 2 : 1) : 0
accepts(p::RecordPlan, r::Record) =
    p.fields !== nothing && collect(keys(r)) == p.fields ? (parameters(r) == p.parameters ? 2 : 1) : 0
function accepts(p::RecordPlan, v)
    T = typeof(v)
    is_struct_record(T) && p.fields !== nothing && collect(Symbol, fieldnames(T)) == p.fields || return 0
    return record_parameters(T) == p.parameters ? 2 : 1
end

"""
    select_content(plan::UnionPlan, value) -> Int

The (1-based) content of the union that `value` goes to.
"""
function select_content(p::UnionPlan, v)
    best, best_score = 0, 0
    for (k, c) in enumerate(p.contents)
        score = accepts(c, v)
        score > best_score && ((best, best_score) = (k, score))
    end
    best == 0 && layout_mismatch(v)
    return best
end

layout_mismatch(v) = throw(ArgumentError(
    "a $(typeof(v)) value does not fit the layout planned for it; was the result changed while it was written?"))
