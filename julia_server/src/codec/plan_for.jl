# Which plan a Julia value gets: from its element type when that says everything (so a typed
# vector is never scanned), from the bridge view it is (so its parameters come back), and
# otherwise from its values, merged.

"""
    primitive_eltype(T) -> Union{DataType,Nothing}

The NumPy element type a Julia scalar type is stored as: itself for numbers, `Bool`,
`Datetime64{P}` and `Dates` periods; `Datetime64{Millisecond}` for `DateTime`;
`Datetime64{Day}` for `Date`; `nothing` for anything else.
"""
primitive_eltype(::Type{Dates.DateTime}) = Datetime64{Dates.Millisecond}
primitive_eltype(::Type{Dates.Date}) = Datetime64{Dates.Day}
primitive_eltype(T::Type) = T isa DataType && haskey(TYPE_PRIMITIVES, T) ? T : nothing

unsupported(T::Type) = throw(ResultTypeError("a Julia $T has no Awkward Array equivalent"))

"""
    is_struct_record(T) -> Bool

Whether values of type `T` are written as records of their fields: a user's (or a package's)
`struct` with fields. Types of Julia's own `Base` and `Core` and their submodules (dicts, sets,
pairs, iterators such as `enumerate`'s and `zip`'s, …) and functions (closures are structs of
what they capture) are not.
"""
is_struct_record(@nospecialize(T::Type)) =
    isconcretetype(T) && isstructtype(T) && fieldcount(T) > 0 && !is_julias_own(parentmodule(T)) &&
    !(T <: Union{Function,AbstractArray,AbstractDict,AbstractSet,AbstractString,Number,IO})

# Whether a module is `Base` or `Core` or inside one (`Base.Iterators`); `Main` is its own parent.
is_julias_own(m::Module) = m === Base || m === Core || (parentmodule(m) !== m && is_julias_own(parentmodule(m)))

# A struct's records are named after it (awkward's "__record__"), so Python can attach behaviour.
record_parameters(@nospecialize(T::Type)) =
    T <: NamedTuple ? Parameters() : Parameters("__record__" => string(nameof(T)))

"""
    plan_for_type(T) -> Union{Plan,Nothing}

The plan for values of type `T` when the type alone decides it, `nothing` when the values must
be looked at (abstract types, bridge views and their elements). Raises `ResultTypeError` for a
concrete type with no Awkward equivalent.
"""
function plan_for_type(@nospecialize(T::Type))
    T === Union{} && return EmptyPlan()
    T === Missing && return option_of(EmptyPlan())
    S = nonmissingtype(T)
    if S !== T
        inner = plan_for_type(S)
        return inner === nothing ? nothing : option_of(inner)
    end
    E = primitive_eltype(T)
    E === nothing || return NumpyPlan{E}()
    T <: StringLike && return string_plan()
    (T <: BridgeView || T <: Record || T <: SubArray{<:Any,1,<:BridgeView}) && return nothing
    if T <: AbstractVector
        inner = plan_for_type(eltype(T))
        return inner === nothing ? nothing : ListPlan(Parameters(), inner)
    end
    T <: AbstractArray && return nothing    # a matrix's row size is in its value
    if isconcretetype(T) && (T <: Tuple || T <: NamedTuple || is_struct_record(T))
        contents = Plan[]
        for F in fieldtypes(T)
            p = plan_for_type(F)
            p === nothing && return nothing
            push!(contents, p)
        end
        T <: Tuple && return RecordPlan(Parameters(), nothing, contents)
        return RecordPlan(record_parameters(T), collect(Symbol, fieldnames(T)), contents)
    end
    isconcretetype(T) && unsupported(T)
    return nothing
end

"""
    plan_for_value(v) -> Plan

The plan for one element `v` of an array.
"""
plan_for_value(::Missing) = option_of(EmptyPlan())
plan_for_value(::StringLike) = string_plan()
plan_for_value(v::AbstractVector) = ListPlan(Parameters(), plan_for_array(v))
plan_for_value(A::AbstractArray) = ListPlan(Parameters(), plan_for_array(A))
plan_for_value(r::Record) = record_plan(getfield(r, :columns), parameters(r))

function plan_for_value(v::Union{Tuple,NamedTuple})
    p = plan_for_type(typeof(v))
    p === nothing || return p
    fields = v isa NamedTuple ? collect(Symbol, keys(v)) : nothing
    return RecordPlan(Parameters(), fields, Plan[plan_for_value(x) for x in v])
end

function plan_for_value(v)
    p = plan_for_type(typeof(v))
    p !== nothing && return p
    is_struct_record(typeof(v)) || unsupported(typeof(v))
    names = fieldnames(typeof(v))
    return RecordPlan(record_parameters(typeof(v)), collect(Symbol, names),
                      Plan[plan_for_value(getfield(v, name)) for name in names])
end

record_plan(columns::Union{NamedTuple,WideColumns}, params::Parameters) =
    RecordPlan(params, collect(Symbol, keys(columns)), Plan[plan_for_array(c) for c in columns])
record_plan(columns::Tuple, params::Parameters) =
    RecordPlan(params, nothing, Plan[plan_for_array(c) for c in columns])

"""
    plan_for_array(xs::AbstractVector) -> Plan

The plan of an Awkward array holding the elements of `xs`. A bridge view (or a view into one)
gives the plan of the form it was opened from, parameters and option classes included.
"""
function plan_for_array(xs::AbstractVector)
    p = plan_for_type(eltype(xs))
    p === nothing || return p
    return plan_for_values(xs)
end

"""Origins (see [`plan_origin`](@ref)) one array's planning remembers."""
const MAX_PLAN_ORIGINS = 8

# The merged plan of the values of `xs`. A value whose origin was met before adds nothing, so
# the plan of a million views of one argument (`[ev.Jet for ev in events]`), or of lists of a
# few concrete types, is made a few times, not once per value.
function plan_for_values(xs::AbstractVector)
    acc = EmptyPlan()
    known, undecided = Any[], Any[]
    for v in xs
        o = plan_origin(v)
        is_among(o, known) && continue
        acc = merge_plans(acc, plan_for_value(v))
        if length(known) + length(undecided) < MAX_PLAN_ORIGINS && !is_among(o, undecided)
            push!(origin_decides(o) ? known : undecided, o)
        end
    end
    return acc
end

function is_among(o, origins::Vector{Any})
    for k in origins
        k === o && return true
    end
    return false
end

"""
    plan_origin(v)

What `v`'s plan comes from, such that two values with `===` origins have equal plans when
[`origin_decides`](@ref) says so: a view's (or record's) kind with the columns or content and
the parameters it was opened from, whichever of their rows or lists it shows; a vector of views
of one origin; otherwise the value's type.
"""
plan_origin(v) = typeof(v)
plan_origin(r::Record) = (Record, getfield(r, :columns), getfield(r, :parameters))
plan_origin(v::RecordVector) = (RecordVector, getfield(v, :columns), getfield(v, :parameters))
plan_origin(v::ListVector) = (ListVector, getfield(v, :content), getfield(v, :parameters))
plan_origin(v::SubArray{<:Any,1,<:BridgeView}) = (SubArray, plan_origin(parent(v)))
function plan_origin(v::AbstractVector{<:Union{Record,BridgeView}})
    isempty(v) && return (typeof(v),)
    first_origin = plan_origin(first(v))
    return all(x -> plan_origin(x) === first_origin, v) ? (typeof(v), first_origin) : typeof(v)
end

"""Whether values of origin `o` all have one plan: always for views, for a type when it decides."""
origin_decides(o) = true
origin_decides(T::Type) = plan_for_type(T) !== nothing

plan_for_array(xs::SubArray{<:Any,1,<:BridgeView}) = plan_for_array(parent(xs))

# A matrix (or higher) is planned as its rows: NumPy's inner_shape, written as RegularArrays.
plan_for_array(A::AbstractArray) = plan_for_array(regular_rows(A))

function plan_for_array(v::ParameterizedVector)
    p = plan_for_array(v.data)
    p.parameters = parameters(v)
    return p
end

plan_for_array(v::ListVector) = ListPlan(parameters(v), plan_for_array(getfield(v, :content)))
plan_for_array(v::StringVector) = plan_for_array(v.lists)
plan_for_array(v::RegularVector) = RegularPlan(parameters(v), plan_for_array(getfield(v, :content)), getfield(v, :size))
plan_for_array(v::RecordVector) = record_plan(record_columns(v), parameters(v))
plan_for_array(v::IndexedOptionVector) = option_of(plan_for_array(getfield(v, :content)), parameters(v))

# A masked or unmasked view keeps its option class, unless its content plans as a node awkward
# lets only an IndexedOptionArray hold (an option, a union, an IndexedArray).
function plan_for_array(v::Union{ByteMaskedVector,BitMaskedVector,UnmaskedVector})
    content = plan_for_array(getfield(v, :content))
    content isa Union{OptionPlan,UnionPlan,IndexedPlan} && return option_of(content, parameters(v))
    return mask_plan(v, content)
end

mask_plan(v::ByteMaskedVector, content::Plan) = ByteMaskedPlan(parameters(v), content, getfield(v, :valid_when))
mask_plan(v::BitMaskedVector, content::Plan) = BitMaskedPlan(parameters(v), content, getfield(v, :valid_when), getfield(v, :lsb_order))
mask_plan(v::UnmaskedVector, content::Plan) = UnmaskedPlan(parameters(v), content)

plan_for_array(v::IndexedVector) = indexed_of(plan_for_array(getfield(v, :content)), parameters(v))
plan_for_array(v::UnionVector) = union_of(Plan[plan_for_array(c) for c in v.contents], parameters(v))
