// The exponential half of a row softmax, for attention: normalisation is left to the caller, who applies it to
// the (much smaller) product with V instead of to every score.
#pragma once

#include <cstdint>

namespace vit {

// Vector code the kernel can use: AVX-512F, AVX2 + FMA, or plain C++.
enum class SimdLevel { Scalar, Avx2, Avx512 };

// The widest level this CPU has and oneDNN is allowed to use (ONEDNN_MAX_CPU_ISA=AVX2 selects the AVX2 code here
// too, so that one machine can time the AVX2 path of the whole model).
SimdLevel simd_level();

// In place over rows [rows, cols] with row stride ld: s[r, j] = exp(scale * (s[r, j] - max_j s[r, j])), and
// inv_sum[r] = 1 / sum_j s[r, j] of the new values, so that softmax(scale * row r) = s[r, :] * inv_sum[r]
// (scale > 0: attention's 1/sqrt(d) applied here instead of to the scores).
// Relative error of each exponential below 2e-7 (a degree-6 polynomial after range reduction); inputs more than
// 87 below their row's maximum come out as exp(-87.3) ~ 1e-38 instead of smaller.
void exp_rows(float* s, std::int64_t rows, std::int64_t cols, std::int64_t ld, float* inv_sum,
              SimdLevel level = simd_level(), float scale = 1.f);

}  // namespace vit
