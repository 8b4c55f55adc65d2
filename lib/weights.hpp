// A checkpoint (one safetensors file or the shards of a sharded one) checked against the tensor table that a
// config implies (arch.hpp).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "arch.hpp"
#include "config.hpp"
#include "safetensors.hpp"

namespace vit {

// Weights that have passed the check: every expected tensor present (optional ones may be absent) with the right
// shape and a float dtype (F32, F16, BF16), nothing unknown. `warnings` lists non-fatal findings (NaN/Inf values)
// by tensor name.
class CheckedWeights {
public:
    std::vector<std::string> warnings;

    const TensorView& at(const std::string& name) const;  // throws ModelError naming the tensor
    bool contains(const std::string& name) const { return index_.count(name) != 0; }
    // The tensor as float32; its mapped pages are dropped afterwards (read each tensor once).
    std::vector<float> load(const std::string& name) const;
    // A tensor of the external head file ("head.weight", "head.bias"); see ModelSpec::head_path.
    std::vector<float> load_head(const std::string& name) const;
    bool has_external_head() const { return head_file_ != nullptr; }

private:
    friend CheckedWeights open_weights(const std::vector<std::filesystem::path>&, const ModelConfig&, bool);
    friend CheckedWeights open_weights(const ModelSpec&);
    std::vector<std::unique_ptr<SafetensorsFile>> files_;
    std::unique_ptr<SafetensorsFile> head_file_;
    std::map<std::string, std::pair<const SafetensorsFile*, const TensorView*>> index_;
};

// Opens the files (several for a sharded checkpoint: a tensor may be in any of them, in exactly one) and checks
// them. Throws ModelError naming the file, the tensor and got/expected.
// With `external_head`, the files' own head tensors (any shape) are ignored: the head comes from elsewhere.
CheckedWeights open_weights(const std::vector<std::filesystem::path>& files, const ModelConfig& c,
                            bool external_head = false);
inline CheckedWeights open_weights(const std::filesystem::path& path, const ModelConfig& c) {
    return open_weights(std::vector<std::filesystem::path>{path}, c);
}
// The files of a spec: its shards, else its weights file; and its external head file when it has one.
CheckedWeights open_weights(const ModelSpec& spec);

}  // namespace vit
