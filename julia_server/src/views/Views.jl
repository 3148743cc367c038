"""
    AwkwardBridge.Views

The Julia views over an Awkward Array's buffers, one view type per file, and the
operations on them (selections, projections, `flatten`, `copy`).
"""
module Views

using ..Basics, ..Wire, ..ZMQ, ..SharedMemory, ..Forms
import ..Forms: parameters

include("bridge_view.jl")
include("parameterized_vector.jl")
include("bool_vector.jl")
include("list_vector.jl")
include("string_vector.jl")
include("regular_vector.jl")
include("indexed_vector.jl")
include("option_vectors.jl")
include("wide_columns.jl")
include("record_vector.jl")
include("union_vector.jl")
include("select_rows.jl")
include("project_field.jl")
include("flatten.jl")
include("copy.jl")

export BitMaskedVector, BoolVector, BridgeView, ByteMaskedVector, IndexedOptionVector,
       IndexedVector, ListVector, ParameterizedVector, Record, RecordVector, RegularVector,
       StringVector, UnionVector, UnmaskedVector, WIDE_RECORD_FIELDS, WideColumns, bit_shift,
       column, column_at, copied, flatten, has_field, holds_for_each, mask_bit, numpy_rows, parameters,
       project_field, record_columns, regular_rows, select_rows

end
