// The GELU family as AVX2 + FMA intrinsics, eight floats at a time: the f32 GEMM's fused epilogue (gemm_avx2.cpp)
// and the int8 Linear's epilogues on AVX2 (quantize.cpp). They are the vector twins of quantize.cpp's scalar
// polynomials (same formulas; exp from exp_simd.hpp instead of Cephes'): applying those scalar forms, vectorised by
// the compiler, to the stored rows made ViT-B/16's fc1 + GELU 20% slower on the AVX2 path (56.8 -> 68.3 ms per
// pass, ab_ops.sh, 3 rounds), so both kernels use these.
#pragma once

#include <immintrin.h>

#include "exp_simd.hpp"

namespace vit::simd {

#define VIT_AVX2_ACT inline __attribute__((target("avx2,fma"), always_inline))

VIT_AVX2_ACT __m256 exp_capped_avx2(__m256 x) { return exp_avx2(_mm256_min_ps(x, _mm256_set1_ps(88.f))); }

// erf(x) as Eigen's (and XLA's) float erf: x P(x²) / Q(x²) on x clamped to [-4, 4] (beyond, erf is ±1 in
// float), absolute error 4.2e-7 (float32, measured against math.erf). No exponential: half the instructions of
// Abramowitz & Stegun's 7.1.26 with its exp(-x²).
VIT_AVX2_ACT __m256 erf_avx2(__m256 x) {
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(4.f)), _mm256_set1_ps(-4.f));
    const __m256 x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_fmadd_ps(x2, _mm256_set1_ps(-2.72614225801306e-10f), _mm256_set1_ps(2.77068142495902e-08f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-2.10102402082508e-06f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-5.69250639462346e-05f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-7.34990630326855e-04f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-2.95459980854025e-03f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-1.60960333262415e-02f));
    __m256 q = _mm256_fmadd_ps(x2, _mm256_set1_ps(-1.45660718464996e-05f), _mm256_set1_ps(-2.13374055278905e-04f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-1.68282697438203e-03f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-7.37332916720468e-03f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-1.42647390514189e-02f));
    return _mm256_div_ps(_mm256_mul_ps(x, p), q);
}

// 0.5 x (1 + erf(x / sqrt 2)).
VIT_AVX2_ACT __m256 gelu_erf_avx2(__m256 x) {
    const __m256 erf = erf_avx2(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.f), erf));
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

// The activation named K, an enumerator of either epilogue enum (gemm_avx2::Epilogue, int8::Act: both name Gelu,
// GeluTanh and QuickGelu); any other value (None, Residual) is the identity.
template <auto K>
VIT_AVX2_ACT __m256 activate_avx2(__m256 v) {
    using E = decltype(K);
    if constexpr (K == E::Gelu) return gelu_erf_avx2(v);
    if constexpr (K == E::GeluTanh) return gelu_tanh_avx2(v);
    if constexpr (K == E::QuickGelu) return quick_gelu_avx2(v);
    return v;
}

#undef VIT_AVX2_ACT

}  // namespace vit::simd
