// Writing safetensors files: float32 tensors, sorted by name, header padded to 8 bytes (as the safetensors
// library writes them).
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace vit {

struct F32Tensor {
    std::vector<std::int64_t> shape;
    std::vector<float> data;
};

// Throws std::invalid_argument when a tensor's data does not match its shape.
void write_safetensors(std::ostream& out, const std::map<std::string, F32Tensor>& tensors);

}  // namespace vit
