# `copy` of a view, the Julian way to keep an argument past the call that received it: a view
# over shared memory is valid only while its request holds the segments, and `Base.copy`'s
# default (an `Array` of elements) would lose the view's form and parameters. Each method builds
# the same kind of view over copied buffers, so `place_array` writes a copy back with exactly
# the argument's form: `bridge.call("copy", x)` returns a result Julia wrote, where `identity`
# returns the argument itself (docs/protocol.md).

"""
    copy(v::BridgeView)
    copy(v::BoolVector)

The same view, with the same form and parameters, over copies of its buffers in Julia's own
memory: it stays valid after the call that opened `v` returns, and `place_array` writes it with
`v`'s form.
"""
Base.copy(v::BoolVector) = BoolVector(copy(v.bytes))

# Each view's own fields, copied where they are buffers (struct fields, since `v.x` projects).
copied(v, name::Symbol) = copy(getfield(v, name))

Base.copy(v::ParameterizedVector) = ParameterizedVector(copied(v, :data), copied(v, :parameters))

Base.copy(v::ListVector) =
    ListVector(copied(v, :content), copy_bounds(getfield(v, :starts), getfield(v, :stops))..., copied(v, :parameters))

Base.copy(v::StringVector) = StringVector(copy(v.lists))

Base.copy(v::RegularVector) =
    RegularVector(copied(v, :content), getfield(v, :size), getfield(v, :length), copied(v, :parameters))

Base.copy(v::IndexedVector) = IndexedVector(copied(v, :content), copied(v, :index), copied(v, :parameters))

Base.copy(v::IndexedOptionVector) = IndexedOptionVector(copied(v, :content), copied(v, :index), copied(v, :parameters))

Base.copy(v::ByteMaskedVector) =
    ByteMaskedVector(copied(v, :content), copied(v, :mask), getfield(v, :valid_when), copied(v, :parameters))

Base.copy(v::BitMaskedVector) =
    BitMaskedVector(copied(v, :content), copied(v, :mask), getfield(v, :valid_when), getfield(v, :lsb_order),
                    getfield(v, :length), copied(v, :parameters))

Base.copy(v::UnmaskedVector) = UnmaskedVector(copied(v, :content), copied(v, :parameters))

# A selection of records is copied as a whole record array of just those rows.
Base.copy(rv::RecordVector) = RecordVector(map(copy, record_columns(rv)), length(rv), copied(rv, :parameters))

Base.copy(v::UnionVector) = UnionVector(copy(v.tags), copy(v.index), map(copy, v.contents), copy(v.parameters))

# A builder's starts and stops are two views of one offsets buffer: their copies are two views of
# one copy, which `place_array` writes as offsets again. Any others (an argument's two `Vector`
# windows over its offsets, `offset_windows`, or a selection of them) are copied as they are,
# which keeps the view's type.
copy_bounds(starts, stops) = (copy(starts), copy(stops))

function copy_bounds(starts::S, stops::S) where {S<:SubArray}
    copies = IdDict{Any,Any}()
    again(bound) = view(get!(() -> copy(parent(bound)), copies, parent(bound)), parentindices(bound)...)
    return again(starts), again(stops)
end
