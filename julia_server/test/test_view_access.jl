# Awkward-style access on the views (docs/types.md, "Fields, selections and standard functions"):
# fields project through lists and options, selections keep field access, and Julia's
# standard functions work as on ordinary vectors.
module TestViewAccess

using Test
using AwkwardBridge
using AwkwardBridge: ListVector, RecordVector, Record, StringVector, IndexedOptionVector, column,
                     project_field, flatten, parameters

include("memory_helpers.jl")

const Jet = NamedTuple{(:pt, :eta),Tuple{Float32,Float32}}

@testset "view access" begin
    mem = TestMemory()
    # Events shaped like NanoAOD's, written to and opened from (stand-in) shared memory.
    events = roundtrip(mem, [(Jet=Jet[(pt=50f0, eta=1f0), (pt=20f0, eta=-2f0)], MET=(pt=5f0, phi=0.5f0), run=1),
                             (Jet=Jet[], MET=(pt=6f0, phi=1.5f0), run=2),
                             (Jet=Jet[(pt=35f0, eta=0f0), (pt=31f0, eta=3f0), (pt=12f0, eta=1f0)], MET=(pt=7f0, phi=2.5f0), run=3)])
    jet_pt = Float32[50, 20, 35, 31, 12]

    @testset "a field projects through lists of records, without copying" begin
        @test events isa RecordVector
        pts = events.Jet.pt
        @test pts isa ListVector
        @test pts == [Float32[50, 20], Float32[], Float32[35, 31, 12]]
        @test getfield(pts, :content) === getfield(getfield(events.Jet, :content), :columns).pt  # the pt column itself
        @test getfield(pts, :starts) === getfield(events.Jet, :starts)                           # and the same offsets
        @test column(events.Jet, :pt) == pts
        @test project_field(events.Jet, 2) == events.Jet.eta
        @test propertynames(events.Jet) == (:pt, :eta)
        ev = events[3]
        @test ev isa Record
        @test ev.Jet isa RecordVector && length(ev.Jet) == 3
        @test ev.Jet.pt == Float32[35, 31, 12] && eltype(ev.Jet.pt) === Float32
        @test column(ev.Jet, :eta) == Float32[0, 3, 1]
        @test ev.Jet[2].pt == 31f0
        @test [j.pt for j in ev.Jet if abs(j.eta) < 2.5] == Float32[35, 12]
        @test isempty(events[2].Jet.pt)
        @test events.MET.pt == Float32[5, 6, 7]
    end

    @testset "events with lists of particles keep their columns inline; offsets are windows" begin
        Muon = NamedTuple{(:pt, :eta, :phi, :mass, :charge),Tuple{Float32,Float32,Float32,Float32,Int32}}
        m = (pt=40f0, eta=0f0, phi=1f0, mass=0.1f0, charge=Int32(-1))
        wide = roundtrip(mem, [(Muon=Muon[m, m], Electron=Muon[m], Tau=Muon[]), (Muon=Muon[], Electron=Muon[], Tau=Muon[m])])
        # Julia 1.5 keeps a struct inline only while each of its fields is under 128 bytes, and a
        # loop over boxed columns reads every list through the box (docs/performance.md)
        @test Base.allocatedinline(typeof(getfield(wide, :columns)))
        starts, stops = getfield(wide.Muon, :starts), getfield(wide.Muon, :stops)
        @test starts isa Vector && pointer(stops) == pointer(starts) + sizeof(eltype(starts))
        @test (starts, stops) == ([0, 2], [2, 2]) && wide.Tau.pt == [Float32[], Float32[40]]
    end

    @testset "a field projects through options and indexes too" begin
        options = roundtrip(mem, [[(pt=1f0, q=1), missing], Union{Missing,NamedTuple{(:pt, :q),Tuple{Float32,Int}}}[], [(pt=3f0, q=-1)]])
        @test isequal(options.pt, [[1f0, missing], [], [3f0]])
        @test getfield(options.q, :content) isa IndexedOptionVector
        @test isequal(column(options, :q)[1], [1, missing])
    end

    @testset "a missing field, or fields of what holds no records, are clear errors" begin
        err = try events.Jet.mass; nothing catch e; e end
        @test err isa ArgumentError && occursin("no field :mass", err.msg) && occursin("pt, eta", err.msg)
        err = try events[1].Jet[1].mass; nothing catch e; e end
        @test err isa ArgumentError && occursin("no field :mass", err.msg)
        err = try events.Jet.pt.x; nothing catch e; e end
        @test err isa ArgumentError && occursin("no field :x", err.msg) && occursin("not records", err.msg)
        for (v, name, how) in ((events.MET, "RecordVector", "x.pt .= values"), (events.Jet, "ListVector", "x[i][k].pt = value"))
            err = try v.pt = 1f0; nothing catch e; e end
            @test err isa ArgumentError && occursin("cannot assign field pt of a $name", err.msg) && occursin(how, err.msg)
        end
        @test events.MET.pt == Float32[5, 6, 7]
        # what the messages advise works on copies
        met, jets = copy(events.MET), copy(events.Jet)
        met.pt .= 1f0
        jets[1][2].pt = 2f0
        @test met.pt == Float32[1, 1, 1] && jets.pt[1] == Float32[50, 2] && events.Jet.pt[1] == Float32[50, 20]
    end

    @testset "selections keep field access and copy only the selection" begin
        @test events[2:3] isa RecordVector
        @test events[2:3].MET.pt == Float32[6, 7]
        @test events[[true, false, true]].run == [1, 3]
        @test events[[3, 1]].Jet.pt == [Float32[35, 31, 12], Float32[50, 20]]
        @test view(events, 1:2).Jet.eta == [Float32[1, -2], Float32[]]
        @test view(events, [3]).MET.phi == Float32[2.5]
        @test events[:] === events
        selected = filter(e -> !isempty(e.Jet), events)              # Base's filter empties its index after use
        @test selected isa RecordVector && selected.run == [1, 3]
        @test selected.Jet.pt == [Float32[50, 20], Float32[35, 31, 12]]
        @test events.Jet[2:3].pt == [Float32[], Float32[35, 31, 12]]
        @test events.Jet.pt[[3]] == [Float32[35, 31, 12]]
        @test getfield(events[1:2], :columns) === getfield(events, :columns)   # no column was touched
        rows = [1, 3]
        picked = events[rows]
        rows[1] = 2
        @test picked.run == [1, 3]                                    # the selection is its own
        @test_throws BoundsError events[2:4]
        @test_throws BoundsError events[[0]]
        @test_throws BoundsError events[[true, false]]
        @test_throws BoundsError events.Jet[4:4]
        names = roundtrip(mem, ["ee", "μμ", "eμ"])
        @test names isa StringVector && names[[3, 1]] == ["eμ", "ee"] && names[[3, 1]] isa StringVector
    end

    @testset "copies and results of selections hold just the selected rows" begin
        picked = copy(events[[3, 1]])
        @test picked isa RecordVector && picked.run == [3, 1] && picked.Jet.pt == [Float32[35, 31, 12], Float32[50, 20]]
        back = roundtrip(mem, events[[3, 1]])
        @test back.run == [3, 1] && back.Jet.eta == [Float32[0, 3, 1], Float32[1, -2]] && back.MET.pt == Float32[7, 5]
        @test roundtrip(mem, events[3].Jet).pt == Float32[35, 31, 12]
    end

    @testset "list views are written through their content, each as it holds its lists" begin
        expected = [[(pt=j.pt, eta=j.eta) for j in ev.Jet] for ev in events]
        for (lists, rows) in [(events.Jet, 1:3), (events[[3, 1]].Jet, [3, 1]), (events[2:3].Jet, 2:3), (events[Int[]].Jet, Int[])]
            back = roundtrip(mem, lists)      # whole, a selection out of order, a range, empty
            @test [[NamedTuple(j) for j in l] for l in back] == expected[rows]
            @test roundtrip(mem, lists.pt) == [[j.pt for j in l] for l in expected[rows]]
        end
        names = roundtrip(mem, ["mu", "", "ele"])
        @test roundtrip(mem, names) == ["mu", "", "ele"] && roundtrip(mem, names[[3, 1]]) == ["ele", "mu"]
        nested = roundtrip(mem, [[[1, 2], Int[]], [[3]]])
        @test roundtrip(mem, nested[[2, 1]]) == [[[3]], [[1, 2], Int[]]]
        # a view built by hand whose stops come before their starts holds empty lists there
        odd = ListVector(Float32[1, 2, 3], [0, 2], [2, 1], AwkwardBridge.Parameters())
        @test roundtrip(mem, odd) == [Float32[1, 2], Float32[]]
    end

    @testset "flatten" begin
        @test flatten(events.Jet.pt) == jet_pt
        @test flatten(events.Jet.pt) isa SubArray{Float32,1,Vector{Float32},Tuple{UnitRange{Int}}}   # contiguous: no index
        @test sum(flatten(events.Jet.pt)) == sum(jet_pt)
        @test flatten(events[[3, 1]].Jet.pt) == Float32[35, 31, 12, 50, 20]
        @test flatten(events.Jet).eta == Float32[1, -2, 0, 3, 1]
        @test isempty(flatten(events[Int[]].Jet.pt))
        @test_throws ArgumentError flatten(events.run)
        # lists that overlap or leave gaps are selected row by row, in their order
        @test flatten(ListVector(Int[10, 20, 30, 40], [0, 1, 3], [2, 2, 4], AwkwardBridge.Parameters())) == [10, 20, 20, 40]
        @test AwkwardBridge.Views.holds_for_each(>=, [2, 3, 5], [1, 3, 5])
        @test !AwkwardBridge.Views.holds_for_each(>=, [2, 3, 5], [1, 4, 5])
        @test_throws DimensionMismatch AwkwardBridge.Views.holds_for_each(==, [1, 2], [1])
    end

    @testset "a record wider than $(AwkwardBridge.WIDE_RECORD_FIELDS) fields keeps names in data, not in its type" begin
        n = AwkwardBridge.WIDE_RECORD_FIELDS + 50
        names = Tuple(Symbol("b$i") for i in 1:n)
        wide = roundtrip(mem, [NamedTuple{names}(Tuple(i == 3 ? Float32[k, k] : k * i for i in 1:n)) for k in 1:3])
        @test getfield(wide, :columns) isa AwkwardBridge.WideColumns
        @test length(wide) == 3 && propertynames(wide) == names
        @test wide.b7 == [7, 14, 21] && wide[2].b7 == 14 && wide[2][:b1] == 2 && wide[2][7] == 14
        @test wide.b3 == [Float32[1, 1], Float32[2, 2], Float32[3, 3]]
        @test wide[[3, 1]].b2 == [6, 2] && filter(r -> r.b1 > 1, wide).b5 == [10, 15]
        @test copy(wide[2:3]).b9 == [18, 27]
        @test roundtrip(mem, wide[[3]]).b250 == [750]
        err = try wide.nope; nothing catch e; e end
        @test err isa ArgumentError && occursin("b1, b2", err.msg) && occursin("($n in all)", err.msg)
        @test startswith(sprint(show, wide[1]), "Record with $n fields (b1, b2")
        @test NamedTuple(wide[1]).b4 == 4
    end

    @testset "builders lay a result out in one block (Julia memory outside a call)" begin
        a = AwkwardBridge.shared_array(Float32, 4)
        a .= 1:4
        @test a isa Vector{Float32} && roundtrip(mem, a) == Float32[1, 2, 3, 4]
        lists = AwkwardBridge.shared_lists(Int16, [2, 0, 1])
        lists[1] .= [5, 6]
        lists[3][1] = 7
        @test lists == [Int16[5, 6], Int16[], Int16[7]] && roundtrip(mem, lists) == lists
        jets = AwkwardBridge.shared_lists([1, 2]; pt=Float32, q=Int8)
        jets[1].pt[1] = 1
        jets[2].pt .= [2, 3]
        jets.q[1][1] = -1
        jets[2].q .= [1, 1]
        back = roundtrip(mem, jets)
        @test back.pt == [Float32[1], Float32[2, 3]] && back.q == [Int8[-1], Int8[1, 1]]
        jets[2][1].q = 5                          # a field of one record, written in its column
        @test jets.q[2] == Int8[5, 1]
        @test_throws ArgumentError jets[1][1].nope = 1
        grid = RecordVector((m = zeros(2, 3),), 2, AwkwardBridge.Parameters())   # a field that is a row
        grid[2].m = [1, 2, 3]
        @test getfield(grid, :columns).m == [0 0 0; 1 2 3]
        records = AwkwardBridge.shared_records(2; n=Int32, ok=Bool)
        records.n .= [3, 4]
        records.ok .= [true, false]
        records[2].n = 9
        @test roundtrip(mem, records).n == Int32[3, 9] && roundtrip(mem, records).ok == [true, false]
        GC.gc(); GC.gc()
        @test sum(a) == 10 && lists[1] == Int16[5, 6]       # the views keep their block alive
        @test_throws ArgumentError AwkwardBridge.shared_array(String, 2)
        @test_throws OverflowError AwkwardBridge.shared_array(UInt8, typemax(Int))   # never a short block
        @test_throws OverflowError AwkwardBridge.shared_array(Float64, typemax(Int) ÷ 4)
        @test_throws ArgumentError AwkwardBridge.shared_lists(Float32, [1, -1])
        @test_throws ArgumentError AwkwardBridge.shared_records(3)
        @test isempty(AwkwardBridge.shared_lists(Float64, Int[]))
        lazy = AwkwardBridge.shared_lists(UInt8, Iterators.repeated(2, 3))      # counts need only a length
        @test length(lazy) == 3 && all(l -> length(l) == 2, lazy)
        @test_throws ArgumentError AwkwardBridge.shared_lists(Float32, [1.5])
        # given as a type, the record fields make a result whose type Julia infers, so the function
        # that makes it fills it at full speed; the keyword form gives the same vector
        Jet = NamedTuple{(:pt, :q),Tuple{Float32,Int8}}
        typed = AwkwardBridge.shared_lists(Jet, [1, 2])
        @test typeof(typed) == typeof(AwkwardBridge.shared_lists([1, 2]; pt=Float32, q=Int8))
        typed.pt[2] .= [2, 3]
        @test typed.pt[2] == Float32[2, 3] && eltype(typed.q[1]) == Int8
        @test typeof(AwkwardBridge.shared_records(Jet, 2)) == typeof(AwkwardBridge.shared_records(2; pt=Float32, q=Int8))
        for (f, types) in ((AwkwardBridge.shared_array, (Type{Float32}, Int)),
                           (AwkwardBridge.shared_lists, (Type{Float32}, Vector{Int})),
                           (AwkwardBridge.shared_lists, (Type{Jet}, Vector{Int32})),
                           (AwkwardBridge.shared_records, (Type{Jet}, Int)))
            @test isconcretetype(only(Base.return_types(f, types)))
        end
        @test_throws ArgumentError AwkwardBridge.shared_records(NamedTuple{(:s,),Tuple{String}}, 2)
        @test_throws ArgumentError AwkwardBridge.shared_lists(NamedTuple{(),Tuple{}}, [1])
        err = try AwkwardBridge.shared_records(2; pt=1.0); nothing catch e; e end
        @test err isa ArgumentError && occursin("is a type", err.msg)
    end

    @testset "the seed's buffers triple, both ways" begin
        form, len, containers = AwkwardBridge.buffers(events[[3, 1]])   # not an argument: written once
        @test len == 2 && all(b -> b isa SubArray{UInt8,1,Vector{UInt8}}, values(containers))   # views of one block
        @test length(unique(parent(b) for b in values(containers))) == 1
        opened, kept = AwkwardBridge.open_buffers(form, len, containers)
        GC.@preserve kept begin
            @test opened.run == [3, 1] && opened.Jet.pt == [Float32[35, 31, 12], Float32[50, 20]]
        end
        subarrays = Dict(k => view(b, 1:length(b)) for (k, b) in containers)   # any byte vector
        again, kept = AwkwardBridge.open_buffers(form, len, subarrays)
        GC.@preserve kept @test again.MET.pt == Float32[7, 5]
        @test_throws AwkwardBridge.InvalidArray AwkwardBridge.open_buffers(form, len, Dict("node0-data" => [1.0]))
        @test_throws AwkwardBridge.InvalidArray AwkwardBridge.open_buffers(form, len + 5, containers)
    end

    @testset "standard functions work as on ordinary vectors" begin
        pts = events.Jet.pt
        @test sum.(pts) == Float32[70, 0, 78]
        @test sum(sum, pts) == sum(jet_pt)
        @test maximum(length, pts) == 3
        @test map(length, pts) == [2, 0, 3]
        @test length.(events.Jet) == [2, 0, 3]
        @test sort(pts; by=length) == [Float32[], Float32[50, 20], Float32[35, 31, 12]]
        @test findall(isempty, pts) == [2]
        @test collect(eachindex(pts)) == [1, 2, 3]
        @test sort(events[3].Jet.pt) == Float32[12, 31, 35]
        @test maximum(events[1].Jet.pt) == 50f0
        @test findall(j -> j.pt > 30, events[3].Jet) == [1, 2]
        @test map(j -> j.pt * 2, events[1].Jet) == Float32[100, 40]
        @test events.MET.pt .+ 1 == Float32[6, 7, 8]
        @test findall(e -> e.MET.pt > 5.5, events) == [2, 3]
        @test sum(e -> e.run, events) == 6
        @test sort(events; by=e -> -e.run)[1].run == 3
        @test [e.run for e in events] == [1, 2, 3]
        @test (pt -> pt > 30).(events[3].Jet.pt) == [true, true, false]
    end

    @testset "every view type: $name" for (name, v, plain) in [
            ("BoolVector", roundtrip(mem, [true, false, true]), [true, false, true]),
            ("StringVector", roundtrip(mem, ["b", "a", "c"]), ["b", "a", "c"]),
            ("IndexedOptionVector", roundtrip(mem, [2, missing, 1]), [2, missing, 1]),
            ("ListVector", roundtrip(mem, [[2, 1], Int[], [3]]), [[2, 1], Int[], [3]]),
            ("RecordVector", roundtrip(mem, [(x = 2,), (x = 1,), (x = 3,)]), [(x = 2,), (x = 1,), (x = 3,)]),
            ("UnionVector", roundtrip(mem, Any[2, "a", 1]), Any[2, "a", 1]),
            ("RegularVector", roundtrip(mem, [2 1; 3 4; 0 5]), [[2, 1], [3, 4], [0, 5]])]
        norm(x) = x isa Record ? NamedTuple(x) : x isa AbstractVector ? collect(x) : x
        same(a, b) = isequal(map(norm, collect(a)), b)
        @test same(v, plain)
        @test collect(eachindex(v)) == [1, 2, 3]
        @test same(map(identity, v), plain) && same(identity.(v), plain)
        @test findall(x -> !isequal(norm(x), plain[2]), v) == [1, 3]
        @test count(x -> !isequal(norm(x), plain[2]), v) == 2 && any(x -> isequal(norm(x), plain[3]), v)
        key(x) = x isa Union{Record,NamedTuple} ? x.x : x isa Missing ? 0 : x isa AbstractVector ? reduce(+, x; init=0) :
                 x isa String ? -1 : x
        @test same(sort(v; by=key), sort(plain; by=key))
        @test maximum(key, v) == maximum(key, plain) && sum(key, v) == sum(key, plain)
    end
    @test sum(roundtrip(mem, [true, false, true])) == 2
    @test sum(skipmissing(roundtrip(mem, [2, missing, 1]))) == 3 && maximum(roundtrip(mem, Int32[4, 9, 2])) == 9
end

end
