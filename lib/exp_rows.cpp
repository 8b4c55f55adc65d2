// exp(x - row max) with row sums (see exp_rows.hpp): AVX-512 and AVX2 kernels compiled with target attributes (the
// rest of the project builds for baseline x86-64), picked at run time.
#include "exp_rows.hpp"
#include "exp_simd.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <dnnl.hpp>

namespace vit {

// GCC 12 reports its own _mm512_undefined_ps() (an intentionally uninitialised operand) in the AVX-512 intrinsics.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
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

__attribute__((target("avx2,fma"))) void exp_rows_avx2(float* s, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                                                       float* inv_sum, float scale) {
    const __m256 sc = _mm256_set1_ps(scale);
    const std::int64_t vec = cols / 8 * 8;
    // the tail's lanes (cols % 8) as a mask: masked loads read zeros elsewhere, masked stores leave it alone
    const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(cols - vec)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const bool has_tail = vec < cols;
    for (std::int64_t i = 0; i < rows; ++i) {
        float* x = s + i * ld;
        __m256 m8 = _mm256_set1_ps(x[0]);
        for (std::int64_t j = 0; j < vec; j += 8) m8 = _mm256_max_ps(m8, _mm256_loadu_ps(x + j));
        if (has_tail)  // lanes past the row keep x[0], which cannot raise the max
            m8 = _mm256_max_ps(m8, _mm256_blendv_ps(_mm256_set1_ps(x[0]), _mm256_maskload_ps(x + vec, tail),
                                                    _mm256_castsi256_ps(tail)));
        alignas(32) float lanes[8];
        _mm256_store_ps(lanes, m8);
        const float mx = *std::max_element(lanes, lanes + 8);
        const __m256 mv = _mm256_set1_ps(mx);
        __m256 s8 = _mm256_setzero_ps();
        for (std::int64_t j = 0; j < vec; j += 8) {
            const __m256 e = exp_avx2(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + j), mv), sc));
            _mm256_storeu_ps(x + j, e);
            s8 = _mm256_add_ps(s8, e);
        }
        if (has_tail) {
            const __m256 e = _mm256_and_ps(
                exp_avx2(_mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + vec, tail), mv), sc)),
                _mm256_castsi256_ps(tail));
            _mm256_maskstore_ps(x + vec, tail, e);
            s8 = _mm256_add_ps(s8, e);
        }
        _mm256_store_ps(lanes, s8);
        float sum = 0;
        for (float l : lanes) sum += l;
        inv_sum[i] = 1.f / sum;
    }
}

__attribute__((target("avx512f"))) void exp_rows_avx512(float* s, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                                                        float* inv_sum, float scale) {
    const __m512 sc = _mm512_set1_ps(scale);
    const std::int64_t vec = cols / 16 * 16;
    const __mmask16 tail = static_cast<__mmask16>((1u << (cols - vec)) - 1u);
    for (std::int64_t i = 0; i < rows; ++i) {
        float* x = s + i * ld;
        __m512 m16 = _mm512_set1_ps(x[0]);
        for (std::int64_t j = 0; j < vec; j += 16) m16 = _mm512_max_ps(m16, _mm512_loadu_ps(x + j));
        m16 = _mm512_mask_max_ps(m16, tail, m16, _mm512_maskz_loadu_ps(tail, x + vec));
        const __m512 mv = _mm512_set1_ps(_mm512_reduce_max_ps(m16));
        __m512 s16 = _mm512_setzero_ps();
        for (std::int64_t j = 0; j < vec; j += 16) {
            const __m512 e = exp_avx512(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + j), mv), sc));
            _mm512_storeu_ps(x + j, e);
            s16 = _mm512_add_ps(s16, e);
        }
        if (tail) {
            const __m512 e = exp_avx512(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + vec), mv), sc));
            _mm512_mask_storeu_ps(x + vec, tail, e);
            s16 = _mm512_mask_add_ps(s16, tail, s16, e);
        }
        inv_sum[i] = 1.f / _mm512_reduce_add_ps(s16);
    }
}

}  // namespace

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

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
        case SimdLevel::Avx512: exp_rows_avx512(s, rows, cols, ld, inv_sum, scale); break;
        case SimdLevel::Avx2: exp_rows_avx2(s, rows, cols, ld, inv_sum, scale); break;
        default: exp_rows_scalar(s, rows, cols, ld, inv_sum, scale); break;
    }
}

}  // namespace vit
