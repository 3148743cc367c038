# NumPy primitive names as they appear in form JSON, and the Julia element type each maps to.

"""
    Datetime64{P}(value)

A NumPy `datetime64` value: `value` counts periods `P` (`Dates.Nanosecond`, `Dates.Day`, …)
since 1970-01-01T00:00:00. It has the layout of an `Int64`, so a `datetime64` buffer maps to a
`Vector{Datetime64{P}}` without copying and writes back with its unit unchanged.
`Dates.DateTime(x)` converts it (rounding down to whole milliseconds for finer units);
`Dates.value(x)` is the raw count.
"""
struct Datetime64{P<:Dates.Period}
    value::Int64
end

Dates.value(x::Datetime64) = x.value
Base.isless(a::Datetime64{P}, b::Datetime64{P}) where {P} = isless(a.value, b.value)

const UNIX_EPOCH = Dates.DateTime(1970)

Dates.DateTime(x::Datetime64{P}) where {P<:Union{Dates.Year,Dates.Month,Dates.Week,Dates.Day,Dates.Hour,Dates.Minute,Dates.Second,Dates.Millisecond}} =
    UNIX_EPOCH + P(x.value)
Dates.DateTime(x::Datetime64{Dates.Microsecond}) = UNIX_EPOCH + Dates.Millisecond(fld(x.value, 1_000))
Dates.DateTime(x::Datetime64{Dates.Nanosecond}) = UNIX_EPOCH + Dates.Millisecond(fld(x.value, 1_000_000))

Base.convert(::Type{Datetime64{Dates.Millisecond}}, d::Dates.DateTime) =
    Datetime64{Dates.Millisecond}(Dates.value(d - UNIX_EPOCH))
Base.convert(::Type{Datetime64{Dates.Day}}, d::Dates.Date) =
    Datetime64{Dates.Day}(Dates.value(d - Dates.Date(1970)))

const NUMERIC_PRIMITIVES = (
    "bool" => Bool, "int8" => Int8, "uint8" => UInt8, "int16" => Int16, "uint16" => UInt16,
    "int32" => Int32, "uint32" => UInt32, "int64" => Int64, "uint64" => UInt64,
    "float16" => Float16, "float32" => Float32, "float64" => Float64,
    "complex64" => ComplexF32, "complex128" => ComplexF64)

# NumPy's time units with an exact Dates period; multiples (`[15us]`) and ps/fs/as have none.
const TIME_UNITS = (
    "Y" => Dates.Year, "M" => Dates.Month, "W" => Dates.Week, "D" => Dates.Day,
    "h" => Dates.Hour, "m" => Dates.Minute, "s" => Dates.Second, "ms" => Dates.Millisecond,
    "us" => Dates.Microsecond, "ns" => Dates.Nanosecond)

"""Julia element type of each supported primitive: numbers, `Datetime64{P}`, `Dates` periods."""
const PRIMITIVE_TYPES = Dict{String,DataType}(
    NUMERIC_PRIMITIVES...,
    ("datetime64[$unit]" => Datetime64{P} for (unit, P) in TIME_UNITS)...,
    ("timedelta64[$unit]" => P for (unit, P) in TIME_UNITS)...)

"""The primitive name of each supported Julia element type (inverse of `PRIMITIVE_TYPES`)."""
const TYPE_PRIMITIVES = Dict{DataType,String}(T => name for (name, T) in PRIMITIVE_TYPES)
