// The tensor table of a timm VisionTransformer and the check of a safetensors file against it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "config.hpp"
#include "safetensors.hpp"

namespace vit {

struct TensorSpec {
    std::string name;                  // timm name, e.g. "blocks.3.attn.qkv.weight"
    std::vector<std::int64_t> shape;
};

// Every tensor the config implies, in checkpoint order.
std::vector<TensorSpec> expected_tensors(const ModelConfig& c);

// Total parameter count implied by the config.
std::int64_t parameter_count(const ModelConfig& c);

// A weights file that has passed the check: all expected tensors present with the right shapes and a float dtype
// (F32, F16, BF16), nothing unknown. `warnings` lists non-fatal findings (NaN/Inf values) by tensor name.
struct CheckedWeights {
    std::unique_ptr<SafetensorsFile> file;
    std::vector<std::string> warnings;

    const TensorView& at(const std::string& name) const;
};

// Throws ModelError naming the file, the tensor and got/expected.
CheckedWeights open_weights(const std::filesystem::path& path, const ModelConfig& c);

}  // namespace vit
