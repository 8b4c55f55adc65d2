// Numeric precision and thread settings of the engine, without oneDNN's headers (app/ includes this).
#pragma once

#include <string>

namespace vit {

// Numeric precision of the encoder's matmuls (patch embedding and head stay float32).
//   BF16: bf16 weights; what feeds a matmul is written in bf16 by the op before it (layer norm, fc1 with its
//         activation, q/k/v, attention probabilities and context), f32 accumulation; the residual stream, the
//         attention scores and softmax's arithmetic stay f32 (needs AVX-512 in oneDNN 2.6).
//   INT8: weights quantised per output channel at load, inputs quantised per row (token) at run time,
//         s8 x s8 -> s32 matmul, then dequantised with bias and epilogue in f32.
enum class Precision { F32, BF16, INT8 };
std::string to_string(Precision p);
Precision parse_precision(const std::string& s);  // "fp32" | "bf16" | "int8"; throws std::invalid_argument

// The instruction set oneDNN runs with on this CPU, e.g. "AVX2", "AVX-512 BF16".
std::string cpu_isa_name();

// True where INT8 layers quantise their weights to 7 bits ([-63, 63]) instead of 8: CPUs without AVX-512 VNNI,
// where oneDNN's s8 kernels add pairs of products in saturating 16-bit lanes (see Linear::Linear).
bool int8_weights_7bit();

// Inference threads used by the ops (OpenMP inside oneDNN and in our own loops).
void set_num_threads(int n);
int num_threads();

// Starts the inference threads now (an empty parallel region with the default team). Call it before anything that
// dlopen()s libraries in the background: creating a thread waits for the dynamic loader's lock, which a dlopen
// holds for its whole relocation work (~85 ms for OpenCV's codecs), so the first oneDNN call would stall there.
// Returns the team size.
int start_threads();

}  // namespace vit
