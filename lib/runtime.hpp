// Numeric precision and thread settings of the engine, without oneDNN's headers (app/ includes this).
#pragma once

#include <string>

namespace vit {

// Numeric precision of the linear layers (activations between ops stay float32).
//   BF16: bf16 weights and inputs, f32 accumulation and output (needs AVX-512 in oneDNN 2.6).
//   INT8: weights quantised per output channel at load, inputs quantised per row (token) at run time,
//         s8 x s8 -> s32 matmul, then dequantised with bias and epilogue in f32.
enum class Precision { F32, BF16, INT8 };
std::string to_string(Precision p);
Precision parse_precision(const std::string& s);  // "fp32" | "bf16" | "int8"; throws std::invalid_argument

// The instruction set oneDNN runs with on this CPU, e.g. "AVX2", "AVX-512 BF16".
std::string cpu_isa_name();

// Inference threads used by the ops (OpenMP inside oneDNN and in our own loops).
void set_num_threads(int n);
int num_threads();

}  // namespace vit
