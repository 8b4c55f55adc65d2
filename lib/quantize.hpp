// The INT8 Linear's own passes around oneDNN's s8 x s8 -> s32 matmul: per-row activation quantisation, and one
// fused epilogue (dequantisation, bias, activation, residual or re-quantisation for the next INT8 Linear).
//
// Dimension letters as in ops.hpp: M rows (tokens), K input features, N output features. Every function spreads
// its rows over the OpenMP threads and runs the vector code of `level` (default: the widest oneDNN may use).
#pragma once

#include <cstdint>

#include "exp_rows.hpp"  // SimdLevel, simd_level()

namespace vit::int8 {

// Symmetric per-row quantisation: x[m, :] ≈ scale[m] * q[m, :], q in [-127, 127], scale[m] = max|x[m, :]| / 127
// (1 for an all-zero row), rounding half away from zero. `u8`: the bytes of q + 128 instead (as unsigned bytes: the
// source of a u8 x s8 matmul, whose s32 results then need acc_offset below).
void quantize_rows(const float* x, std::int64_t M, std::int64_t K, std::int8_t* q, float* scale,
                   SimdLevel level = simd_level(), bool u8 = false);

// The activation of the epilogue. GELU uses an erf, tanh GELU a tanh and quick GELU x·sigmoid(1.702x) evaluated
// with polynomial approximations (max abs error < 1e-6, tests/test_quantize.cpp) rather than oneDNN's eltwise, so that
// the activation runs in the same pass as the dequantisation.
enum class Act { None, Gelu, GeluTanh, QuickGelu };

// v[m, n] = act((acc[m, n] + acc_offset[n]) * xscale[m] * wscale[n] + bias[n]), written to y (y = v) or added to it
// (y += v). acc [M, N] s32, xscale [M], wscale [N], bias [N], y [M, N]; acc_offset [N] or null (no offset): for a
// u8 source, -128 * the column sums of the s8 weights.
void dequantize_rows(const std::int32_t* acc, std::int64_t M, std::int64_t N, const float* xscale, const float* wscale,
                     const float* bias, Act act, bool accumulate, float* y, SimdLevel level = simd_level(),
                     const std::int32_t* acc_offset = nullptr);

// The same v, quantised per row as by quantize_rows into q [M, N] and qscale [M] without a float copy of it:
// the next INT8 Linear's input straight from this one's accumulators.
void dequantize_requantize_rows(const std::int32_t* acc, std::int64_t M, std::int64_t N, const float* xscale,
                                const float* wscale, const float* bias, Act act, std::int8_t* q, float* qscale,
                                SimdLevel level = simd_level(), const std::int32_t* acc_offset = nullptr,
                                bool u8 = false);

// The activations element-wise (exposed for the tests).
float gelu_erf(float x);
float gelu_tanh(float x);
float quick_gelu(float x);

}  // namespace vit::int8
