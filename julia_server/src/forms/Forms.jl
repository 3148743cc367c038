"""
    AwkwardBridge.Forms

Awkward's forms, one Form class per file, read from and written as form JSON.
"""
module Forms

using Dates
using ..Basics, ..Wire, ..ZMQ, ..SharedMemory
import ..Wire: write_json

include("form.jl")
include("primitives.jl")
include("numpy_form.jl")
include("empty_form.jl")
include("list_forms.jl")
include("regular_form.jl")
include("indexed_form.jl")
include("option_forms.jl")
include("record_form.jl")
include("union_form.jl")
include("parse_form.jl")

export BitMaskedForm, ByteMaskedForm, Datetime64, EmptyForm, Form, INDEX_TYPES, IndexedForm,
       IndexedOptionForm, ListForm, ListOffsetForm, NumpyForm, Parameters, RecordForm,
       RegularForm, TYPE_PRIMITIVES, UnionForm, UnmaskedForm, buffer_roles, class_name,
       element_type, form_contents, form_error, form_json, form_key, node_label, parameters,
       parse_form

end
