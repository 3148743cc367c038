"""
    AwkwardBridge.ExecutorProcess

The executor: a Julia process of its own that runs one client's code, maps its arrays and
writes its results (docs/architecture.md).
"""
module ExecutorProcess

using Random
import InteractiveUtils, Logging
using ..Basics, ..Wire, ..ZMQ, ..SharedMemory, ..Forms, ..Views, ..Codec

include("describe_error.jl")
include("mappings.jl")
include("link.jl")
include("job_output.jl")
include("executor_state.jl")
include("scope.jl")
include("buffers.jl")
include("shared_results.jl")
include("growing_results.jl")
include("values.jl")
include("functions.jl")
include("run_job.jl")
include("warm_up.jl")
include("main.jl")

export IDLE_CAP, LOG_END, LOG_RECORDS_CAP, Mappings, OUTPUT_CAP, OUTPUT_STREAMS, OutputFiles, TYPE_PARAMETERS_MAX,
       acquire!, buffers, cached_bytes, capture_output, describe, executor_main, forget!, nested,
       open_regular_file, output_path, output_text, read_log_records, release!, relend!, remove_output_files,
       shared_array, shared_lists, shared_records, growing_array, growing_lists, growing_records,
       end_list!, GrowingVector, GrowingRecords, ListBuilder, short_type_name, shorten_types,
       take_output, writable!

end
