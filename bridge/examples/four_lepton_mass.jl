# The four-lepton invariant mass of each event: the four highest-pT leptons (muons and electrons
# together), or NaN where an event has fewer than four. `events` is a record array with the
# HZZ file's Muon_* and Electron_* momentum columns, as the bridge hands it over (zero-copy).

"""
    four_lepton_mass(events) -> Vector{Float64}

Per event, the invariant mass of its four highest-pT leptons; NaN with fewer than four.
"""
function four_lepton_mass(events)
    masses = Vector{Float64}(undef, length(events))
    leptons = NTuple{4,Float64}[]          # (px, py, pz, E), reused from event to event
    for i in 1:length(events)
        event = events[i]
        empty!(leptons)
        collect_leptons!(leptons, event.Muon_Px, event.Muon_Py, event.Muon_Pz, event.Muon_E)
        collect_leptons!(leptons, event.Electron_Px, event.Electron_Py, event.Electron_Pz, event.Electron_E)
        if length(leptons) < 4
            masses[i] = NaN
            continue
        end
        sort!(leptons; by = p -> p[1]^2 + p[2]^2, rev = true)
        px = py = pz = e = 0.0
        for (lx, ly, lz, le) in Iterators.take(leptons, 4)
            px += lx; py += ly; pz += lz; e += le
        end
        masses[i] = sqrt(max(e^2 - px^2 - py^2 - pz^2, 0.0))
    end
    return masses
end

function collect_leptons!(leptons, px, py, pz, e)
    for j in 1:length(px)
        push!(leptons, (Float64(px[j]), Float64(py[j]), Float64(pz[j]), Float64(e[j])))
    end
    return leptons
end
