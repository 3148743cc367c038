# `copy` of a view, the Julian way to keep an argument past the call that received it: a view
# over shared memory is valid only while its request holds the segments, and `Base.copy`'s
# default (an `Array` of elements) would lose the view's form and parameters. Each method builds
# the same view type (`typeof(v)(…)` fails loudly otherwise) over copied buffers, so
# `place_array` writes a copy back with exactly the argument's form: `bridge.call("copy", x)`
# returns a result Julia wrote, where `identity` returns the argument itself (docs/protocol.md).

"""
    copy(v::BridgeView)
    copy(v::BoolVector)

The same view, with the same form and parameters, over copies of its buffers in Julia's own
memory: it stays valid after the call that opened `v` returns, and `place_array` writes it with
`v`'s form.
"""
Base.copy(v::BoolVector) = BoolVector(copy(v.bytes))

Base.copy(v::ParameterizedVector) = typeof(v)(copy(v.data), copy(v.parameters))

Base.copy(v::ListVector) = typeof(v)(copy(v.content), copy_bounds(v.starts, v.stops)..., copy(v.parameters))

Base.copy(v::StringVector) = typeof(v)(copy(v.lists))

Base.copy(v::RegularVector) = typeof(v)(copy(v.content), v.size, v.length, copy(v.parameters))

Base.copy(v::IndexedVector) = typeof(v)(copy(v.content), copy(v.index), copy(v.parameters))

Base.copy(v::IndexedOptionVector) = typeof(v)(copy(v.content), copy(v.index), copy(v.parameters))

Base.copy(v::ByteMaskedVector) = typeof(v)(copy(v.content), copy(v.mask), v.valid_when, copy(v.parameters))

Base.copy(v::BitMaskedVector) =
    typeof(v)(copy(v.content), copy(v.mask), v.valid_when, v.lsb_order, v.length, copy(v.parameters))

Base.copy(v::UnmaskedVector) = typeof(v)(copy(v.content), copy(v.parameters))

Base.copy(rv::RecordVector) =
    typeof(rv)(map(copy, getfield(rv, :columns)), getfield(rv, :length), copy(getfield(rv, :parameters)))

Base.copy(v::UnionVector) = typeof(v)(copy(v.tags), copy(v.index), map(copy, v.contents), copy(v.parameters))

# A ListOffsetArray's starts and stops are two views of one offsets buffer: their copies are two
# views of one copy, which `place_array` writes as offsets again.
copy_bounds(starts, stops) = (copy(starts), copy(stops))

function copy_bounds(starts::S, stops::S) where {S<:SubArray}
    copies = IdDict{Any,Any}()
    again(bound) = view(get!(() -> copy(parent(bound)), copies, parent(bound)), parentindices(bound)...)
    return again(starts), again(stops)
end
