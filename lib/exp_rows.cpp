// exp(x - row max) with row sums (see exp_rows.hpp): AVX-512 and AVX2 kernels compiled with target attributes (the
// rest of the project builds for baseline x86-64), picked at run time.
#include "exp_rows.hpp"
#include "exp_simd.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <dnnl.hpp>

namespace vit {

// GCC 12 reports its own _mm512_undefined_ps() (an intentionally uninitialised operand) in the AVX-512 intrinsics
// (GCC bug 105593, fixed in 13), also where the templates below are instantiated: for the whole file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace {

using namespace simd;

float exp_scalar(float x) {
    x = std::max(x, kMinArg);
    const float n = std::nearbyint(x * kLog2e);
    const float r = x - n * kLn2Hi - n * kLn2Lo;
    float p = kP0;
    for (float c : {kP1, kP2, kP3, kP4, kP5}) p = p * r + c;
    return std::ldexp(p * r * r + r + 1.f, static_cast<int>(n));
}

void exp_rows_scalar(float* s, std::int64_t rows, std::int64_t cols, std::int64_t ld, float* inv_sum, float scale) {
    for (std::int64_t i = 0; i < rows; ++i) {
        float* x = s + i * ld;
        float mx = x[0];
        for (std::int64_t j = 1; j < cols; ++j) mx = std::max(mx, x[j]);
        float sum = 0;
        for (std::int64_t j = 0; j < cols; ++j) sum += (x[j] = exp_scalar((x[j] - mx) * scale));
        inv_sum[i] = 1.f / sum;
    }
}

// Several rows at a time in the vector kernels: the rows' max and sum reductions overlap instead of each stalling its
// row (f32 attention 3-5% faster than row by row).

__attribute__((target("avx2,fma"))) inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

__attribute__((target("avx2,fma"))) inline float hsum(__m256 v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    return _mm_cvtss_f32(_mm_add_ss(a, _mm_movehdup_ps(a)));
}

template <int R>
__attribute__((target("avx2,fma"))) void rows_avx2(float* s, std::int64_t cols, std::int64_t ld, float* inv_sum,
                                                   float scale) {
    const std::int64_t vec = cols / 8 * 8;
    // the tail's lanes (cols % 8) as a mask: masked loads read zeros elsewhere, masked stores leave it alone
    const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(cols - vec)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const bool has_tail = vec < cols;
    __m256 m[R], sum[R];
    for (int r = 0; r < R; ++r) m[r] = _mm256_set1_ps(s[r * ld]);
    for (std::int64_t j = 0; j < vec; j += 8)
        for (int r = 0; r < R; ++r) m[r] = _mm256_max_ps(m[r], _mm256_loadu_ps(s + r * ld + j));
    for (int r = 0; r < R; ++r) {
        if (has_tail)  // lanes past the row keep x[0], which cannot raise the max
            m[r] = _mm256_max_ps(
                m[r], _mm256_blendv_ps(m[r], _mm256_maskload_ps(s + r * ld + vec, tail), _mm256_castsi256_ps(tail)));
        m[r] = _mm256_set1_ps(hmax(m[r]));
        sum[r] = _mm256_setzero_ps();
    }
    const __m256 cv = _mm256_set1_ps(scale);
    for (std::int64_t j = 0; j < vec; j += 8)
        for (int r = 0; r < R; ++r) {
            float* x = s + r * ld + j;
            const __m256 e = exp_avx2(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x), m[r]), cv));
            _mm256_storeu_ps(x, e);
            sum[r] = _mm256_add_ps(sum[r], e);
        }
    if (has_tail)
        for (int r = 0; r < R; ++r) {
            float* x = s + r * ld + vec;
            const __m256 e = _mm256_and_ps(
                exp_avx2(_mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x, tail), m[r]), cv)),
                _mm256_castsi256_ps(tail));
            _mm256_maskstore_ps(x, tail, e);
            sum[r] = _mm256_add_ps(sum[r], e);
        }
    for (int r = 0; r < R; ++r) inv_sum[r] = 1.f / hsum(sum[r]);
}

template <int R>
__attribute__((target("avx512f"))) void rows_avx512(float* s, std::int64_t cols, std::int64_t ld, float* inv_sum,
                                                    float scale) {
    const std::int64_t vec = cols / 16 * 16;
    const __mmask16 tail = static_cast<__mmask16>((1u << (cols - vec)) - 1u);
    __m512 m[R], sum[R];
    for (int r = 0; r < R; ++r) m[r] = _mm512_set1_ps(s[r * ld]);
    for (std::int64_t j = 0; j < vec; j += 16)
        for (int r = 0; r < R; ++r) m[r] = _mm512_max_ps(m[r], _mm512_loadu_ps(s + r * ld + j));
    for (int r = 0; r < R; ++r) {
        m[r] = _mm512_mask_max_ps(m[r], tail, m[r], _mm512_maskz_loadu_ps(tail, s + r * ld + vec));
        m[r] = _mm512_set1_ps(_mm512_reduce_max_ps(m[r]));
        sum[r] = _mm512_setzero_ps();
    }
    const __m512 cv = _mm512_set1_ps(scale);
    for (std::int64_t j = 0; j < vec; j += 16)
        for (int r = 0; r < R; ++r) {
            float* x = s + r * ld + j;
            const __m512 e = exp_avx512(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x), m[r]), cv));
            _mm512_storeu_ps(x, e);
            sum[r] = _mm512_add_ps(sum[r], e);
        }
    if (tail)
        for (int r = 0; r < R; ++r) {
            float* x = s + r * ld + vec;
            const __m512 e = exp_avx512(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x), m[r]), cv));
            _mm512_mask_storeu_ps(x, tail, e);
            sum[r] = _mm512_mask_add_ps(sum[r], tail, sum[r], e);
        }
    for (int r = 0; r < R; ++r) inv_sum[r] = 1.f / _mm512_reduce_add_ps(sum[r]);
}

// The rows four at a time, then two, then one (the f32 attention's blocks have 6 or 8 rows).
template <template <int> class Rows>
void by_groups(float* s, std::int64_t rows, std::int64_t cols, std::int64_t ld, float* inv_sum, float scale) {
    std::int64_t i = 0;
    for (; i + 4 <= rows; i += 4) Rows<4>::run(s + i * ld, cols, ld, inv_sum + i, scale);
    for (; i + 2 <= rows; i += 2) Rows<2>::run(s + i * ld, cols, ld, inv_sum + i, scale);
    for (; i < rows; ++i) Rows<1>::run(s + i * ld, cols, ld, inv_sum + i, scale);
}

template <int R>
struct Avx512Rows {
    static void run(float* s, std::int64_t cols, std::int64_t ld, float* inv_sum, float scale) {
        rows_avx512<R>(s, cols, ld, inv_sum, scale);
    }
};

template <int R>
struct Avx2Rows {
    static void run(float* s, std::int64_t cols, std::int64_t ld, float* inv_sum, float scale) {
        rows_avx2<R>(s, cols, ld, inv_sum, scale);
    }
};

}  // namespace

SimdLevel simd_level() {
    switch (dnnl::get_effective_cpu_isa()) {
        case dnnl::cpu_isa::avx512_core:
        case dnnl::cpu_isa::avx512_core_vnni:
        case dnnl::cpu_isa::avx512_core_bf16:
        case dnnl::cpu_isa::avx512_core_amx: return SimdLevel::Avx512;
        case dnnl::cpu_isa::avx2:
        case dnnl::cpu_isa::avx2_vnni: return __builtin_cpu_supports("fma") ? SimdLevel::Avx2 : SimdLevel::Scalar;
        default: return SimdLevel::Scalar;
    }
}

void exp_rows(float* s, std::int64_t rows, std::int64_t cols, std::int64_t ld, float* inv_sum, SimdLevel level,
              float scale) {
    if (cols <= 0) return;
    switch (level) {
        case SimdLevel::Avx512: by_groups<Avx512Rows>(s, rows, cols, ld, inv_sum, scale); break;
        case SimdLevel::Avx2: by_groups<Avx2Rows>(s, rows, cols, ld, inv_sum, scale); break;
        default: exp_rows_scalar(s, rows, cols, ld, inv_sum, scale); break;
    }
}

}  // namespace vit
