# Parsed forms, kept by their JSON text: clients send the same few forms over and over, and
# parsing one (JSON, then the form tree) is about half of what `open_array` spends on a small
# array. Only the parse is shared: the buffers of every array are still validated on every call.

"""Most forms a `FormCache` keeps; inserting one more drops the oldest."""
const FORM_CACHE_ENTRIES = 256

"""Longest form JSON (in bytes) a `FormCache` keeps, so that its memory stays bounded
(`FORM_CACHE_ENTRIES` × this); longer forms are parsed on every use."""
const FORM_CACHE_MAX_JSON = 64 * 1024

"""
    FormCache(capacity=FORM_CACHE_ENTRIES)

A bounded, thread-safe map from form JSON to its parsed [`Form`](@ref), dropping the oldest
entry when full. Only forms that parsed without error are kept. A cached form is shared by
every array that names the same JSON, so nothing may modify it (`open_array` gives each view
its own copy of the parameters).
"""
struct FormCache
    lock::ReentrantLock
    forms::Dict{String,Form}
    order::Vector{String}    # keys of `forms`, oldest first
    capacity::Int
end

FormCache(capacity::Int = FORM_CACHE_ENTRIES) =
    FormCache(ReentrantLock(), Dict{String,Form}(), String[], capacity)

Base.length(cache::FormCache) = lock(() -> length(cache.forms), cache.lock)

"""
    cached_form(cache, json) -> Form

`parse_form(json)`, parsed once per distinct JSON while it stays in `cache`. Errors are those
of `parse_form`, raised again for every array that names the malformed JSON.
"""
function cached_form(cache::FormCache, json::String)
    sizeof(json) > FORM_CACHE_MAX_JSON && return parse_form(json)
    form = lock(() -> get(cache.forms, json, nothing), cache.lock)
    form === nothing || return form
    # Parsed outside the lock so other threads' hits never wait for a parse. Two threads that
    # miss on one JSON both parse it; the first to insert wins and both return equal forms.
    parsed = parse_form(json)
    return lock(cache.lock) do
        existing = get(cache.forms, json, nothing)
        existing === nothing || return existing
        if length(cache.order) >= cache.capacity
            delete!(cache.forms, popfirst!(cache.order))
        end
        cache.forms[json] = parsed
        push!(cache.order, json)
        return parsed
    end
end

"""The cache `open_array` parses forms through, shared by every call of the process."""
const FORM_CACHE = FormCache()
