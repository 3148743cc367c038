"""
    AwkwardBridge.Codec

Between buffers and Julia: validate buffers and build views over them (`open_array`), and
write a Julia value as buffers (`place_array`).
"""
module Codec

using Dates
using ..Basics, ..Wire, ..ZMQ, ..SharedMemory, ..Forms, ..Views
import ..Forms: parameters, node_label

include("validate.jl")
include("form_cache.jl")
include("open_array.jl")
include("plans.jl")
include("plan_for.jl")
include("place_array.jl")
include("open_buffers.jl")

export FORM_CACHE, FORM_CACHE_MAX_JSON, FormCache, ListPlan, NumpyPlan, Plan, RecordPlan,
       cached_form, is_placeable, is_struct_record, lay_out!, located_ref, node_label, open_array,
       open_buffers, parameters, place_array

end
