# The seed talk's hand-written loop, unchanged: it runs on the bridge's zero-copy views exactly
# as it ran on AwkwardArray.jl arrays.
function path_length(array)
    total = 0.0
    for i in 1:length(array)
        for j in 1:length(array[i])
            total += array[i][j]
        end
    end
    return total
end
