// The GELU family as AVX2 + FMA intrinsics, eight floats at a time: the f32 GEMM's fused epilogue (gemm_avx2.cpp)
// and the int8 Linear's requantisation on AVX2 (quantize.cpp). They are the vector twins of quantize.cpp's scalar
// polynomials (same formulas; exp from exp_simd.hpp instead of Cephes'): applying those scalar forms, vectorised by
// the compiler, to the stored rows made ViT-B/16's fc1 + GELU 20% slower on the AVX2 path (56.8 -> 68.3 ms per
// pass, ab_ops.sh, 3 rounds), so both kernels use these.
#pragma once

#include <immintrin.h>

#include "exp_simd.hpp"

namespace vit::simd {

#define VIT_AVX2_ACT inline __attribute__((target("avx2,fma"), always_inline))

VIT_AVX2_ACT __m256 exp_capped_avx2(__m256 x) { return exp_avx2(_mm256_min_ps(x, _mm256_set1_ps(88.f))); }

// 0.5 x (1 + erf(x / sqrt 2)), erf by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7) as oneDNN's gelu_erf.
VIT_AVX2_ACT __m256 gelu_erf_avx2(__m256 x) {
    const __m256 sign = _mm256_set1_ps(-0.f), one = _mm256_set1_ps(1.f);
    const __m256 z = _mm256_mul_ps(_mm256_andnot_ps(sign, x), _mm256_set1_ps(0.70710678118654752f));
    const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), z, one));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    const __m256 e = exp_avx2(_mm256_mul_ps(_mm256_xor_ps(z, sign), z));  // exp(-z²)
    const __m256 erf_abs = _mm256_fnmadd_ps(_mm256_mul_ps(p, t), e, one);
    const __m256 erf = _mm256_xor_ps(erf_abs, _mm256_and_ps(sign, x));  // erf is odd
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(one, erf));
}

// 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x³), tanh(u) = 1 - 2 / (exp(2u) + 1).
VIT_AVX2_ACT __m256 gelu_tanh_avx2(__m256 x) {
    const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    const __m256 u = _mm256_mul_ps(_mm256_set1_ps(0.79788456080286536f),
                                   _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x));
    const __m256 e = exp_capped_avx2(_mm256_add_ps(u, u));
    const __m256 two = _mm256_set1_ps(2.f);
    const __m256 th1 = _mm256_sub_ps(two, _mm256_div_ps(two, _mm256_add_ps(e, _mm256_set1_ps(1.f))));  // 1 + tanh
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), th1);
}

// x sigmoid(1.702 x) = x / (1 + exp(-1.702 x)).
VIT_AVX2_ACT __m256 quick_gelu_avx2(__m256 x) {
    const __m256 e = exp_capped_avx2(_mm256_mul_ps(_mm256_set1_ps(-1.702f), x));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.f), e));
}

#undef VIT_AVX2_ACT

}  // namespace vit::simd
