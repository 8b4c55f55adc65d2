// The vector exponentials shared by exp_rows.cpp and the AMX attention (attention_amx.cpp): inline, compiled with
// target attributes (the project builds for baseline x86-64) so that each caller picks its ISA at run time.
#pragma once

#include <immintrin.h>

namespace vit::simd {

// exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2] (ln 2 split in two for exactness),
// exp(r) by Cephes' expf polynomial.
inline constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
inline constexpr float kP0 = 1.9875691500e-4f, kP1 = 1.3981999507e-3f, kP2 = 8.3334519073e-3f, kP3 = 4.1665795894e-2f,
                       kP4 = 1.6666665459e-1f, kP5 = 5.0000001201e-1f;
inline constexpr float kMinArg = -87.3365447f;  // exp of it is the smallest normal float

__attribute__((target("avx2,fma"))) inline __m256 exp_avx2(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(kMinArg));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
    __m256 p = _mm256_set1_ps(kP0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP5));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.f)));
    // 2^n by building its exponent bits: n >= -126 after the clamp, so the result is a normal float
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

__attribute__((target("avx512f"))) inline __m512 exp_avx512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(kMinArg));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
    __m512 p = _mm512_set1_ps(kP0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP5));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.f)));
    return _mm512_scalef_ps(p, n);  // p * 2^n
}

// 2^t: n = round(t), f = t - n in [-1/2, 1/2], 2^f by the degree-5 Chebyshev interpolant (relative error 2.5e-7
// evaluated in f32), times 2^n by scalef (0 below the float range, no clamp needed). With the scale folded into t, a
// softmax's exponential costs 9 vector operations instead of exp_avx512's 15.
inline constexpr float kC0 = 1.00000012f, kC1 = 0.693147182f, kC2 = 0.240221068f, kC3 = 5.55035695e-2f,
                       kC4 = 9.67603177e-3f, kC5 = 1.33908633e-3f;

__attribute__((target("avx512f"))) inline __m512 exp2_avx512(__m512 t) {
    const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(t, n);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(kC5), f, _mm512_set1_ps(kC4));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kC3));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kC2));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kC1));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kC0));
    return _mm512_scalef_ps(p, n);
}

}  // namespace vit::simd
