// Per-row int8 quantisation and the INT8 Linear's fused dequantisation epilogue (see quantize.hpp).
//
// The row functions are written as plain loops of arithmetic (no library calls: exp and erf are polynomials here)
// so that the compiler vectorises them; each is compiled for AVX-512, AVX2 + FMA and baseline x86-64 and picked
// per call (simd_level(): what oneDNN may use, so ONEDNN_MAX_CPU_ISA=AVX2 times the AVX2 build here too).
#include "quantize.hpp"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "activations_avx2.hpp"

namespace vit::int8 {

namespace {

// The helpers are inlined into each instruction-set clone of the row kernels below (a call would run the
// baseline x86-64 build of them).
#define VIT_INLINE inline __attribute__((always_inline))

// exp(x) for x in [-87, 88] (clamped outside), relative error ~2e-7: Cephes' expf (x = n ln2 + r, a degree-6
// polynomial in r, 2^n built in the exponent bits).
VIT_INLINE float exp_poly(float x) {
    x = x < -87.f ? -87.f : x;
    x = x > 88.f ? 88.f : x;
    // round to nearest by adding and subtracting 1.5 * 2^23 (no library call, no branch)
    const float n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;
    const float r = x - n * 0.693359375f + n * 2.12194440e-4f;  // ln 2 split in two: n * ln2 exactly
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.f;
    const std::int32_t bits = (static_cast<std::int32_t>(n) + 127) * (1 << 23);
    float two_n;
    std::memcpy(&two_n, &bits, sizeof two_n);
    return p * two_n;
}

// erf by Eigen's (and XLA's) float rational approximation x P(x²) / Q(x²), x clamped to [-4, 4] where erf is ±1 in
// float; absolute error 4.2e-7 in float32 (measured against math.erf), no exponential.
VIT_INLINE float erf_poly(float x) {
    x = x < -4.f ? -4.f : x;
    x = x > 4.f ? 4.f : x;
    const float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 - 2.10102402082508e-06f;
    p = p * x2 - 5.69250639462346e-05f;
    p = p * x2 - 7.34990630326855e-04f;
    p = p * x2 - 2.95459980854025e-03f;
    p = p * x2 - 1.60960333262415e-02f;
    float q = -1.45660718464996e-05f;
    q = q * x2 - 2.13374055278905e-04f;
    q = q * x2 - 1.68282697438203e-03f;
    q = q * x2 - 7.37332916720468e-03f;
    q = q * x2 - 1.42647390514189e-02f;
    return x * p / q;
}

// 0.5 x (1 + erf(x / sqrt 2)), oneDNN's gelu_erf.
VIT_INLINE float gelu_erf_poly(float x) { return 0.5f * x * (1.f + erf_poly(x * 0.70710678118654752f)); }

// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), tanh(u) = 1 - 2 / (exp(2u) + 1).
VIT_INLINE float gelu_tanh_poly(float x) {
    const float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
    return 0.5f * x * (2.f - 2.f / (exp_poly(2.f * u) + 1.f));
}

// x sigmoid(1.702 x), CLIP's activation.
VIT_INLINE float quick_gelu_poly(float x) { return x / (1.f + exp_poly(-1.702f * x)); }

template <Act A>
VIT_INLINE float activate(float v) {
    if constexpr (A == Act::Gelu) return gelu_erf_poly(v);
    if constexpr (A == Act::GeluTanh) return gelu_tanh_poly(v);
    if constexpr (A == Act::QuickGelu) return quick_gelu_poly(v);
    return v;
}

// acc + off[n] when off is given: the u8 source's correction (see dequantize_rows).
template <Act A, bool Off>
VIT_INLINE void dequant_loop(const std::int32_t* acc, const std::int32_t* off, std::int64_t N, float xs,
                             const float* ws, const float* b, bool accumulate, float* y) {
    if (accumulate) {
#pragma omp simd
        for (std::int64_t n = 0; n < N; ++n)
            y[n] += activate<A>(static_cast<float>(Off ? acc[n] + off[n] : acc[n]) * xs * ws[n] + b[n]);
    } else {
#pragma omp simd
        for (std::int64_t n = 0; n < N; ++n)
            y[n] = activate<A>(static_cast<float>(Off ? acc[n] + off[n] : acc[n]) * xs * ws[n] + b[n]);
    }
}

template <Act A>
VIT_INLINE void dequant_loop(const std::int32_t* acc, const std::int32_t* off, std::int64_t N, float xs,
                             const float* ws, const float* b, bool accumulate, float* y) {
    if (off) dequant_loop<A, true>(acc, off, N, xs, ws, b, accumulate, y);
    else dequant_loop<A, false>(acc, off, N, xs, ws, b, accumulate, y);
}

// max |x[k]| over a row.
VIT_INLINE float abs_max(const float* x, std::int64_t K) {
    float mx = 0;
#pragma omp simd reduction(max : mx)
    for (std::int64_t k = 0; k < K; ++k) mx = std::max(mx, std::fabs(x[k]));
    return mx;
}

// flip 0x80: the byte of q + 128 (u8) instead of q's.
VIT_INLINE void quantize_with(const float* x, std::int64_t K, float mx, std::int8_t* q, float& scale,
                              std::uint8_t flip) {
    scale = mx > 0 ? mx / 127.f : 1.f;
    const float inv = 1.f / scale;
    for (std::int64_t k = 0; k < K; ++k) {
        const float v = x[k] * inv;
        const auto i = static_cast<std::uint8_t>(static_cast<std::int32_t>(v + std::copysign(0.5f, v)));  // half away
        q[k] = static_cast<std::int8_t>(i ^ flip);                                                        // from 0
    }
}

VIT_INLINE void dequant_any(const std::int32_t* acc, const std::int32_t* off, std::int64_t N, float xs, const float* ws,
                            const float* b, Act act, bool accumulate, float* y) {
    switch (act) {
        case Act::None: dequant_loop<Act::None>(acc, off, N, xs, ws, b, accumulate, y); break;
        case Act::Gelu: dequant_loop<Act::Gelu>(acc, off, N, xs, ws, b, accumulate, y); break;
        case Act::GeluTanh: dequant_loop<Act::GeluTanh>(acc, off, N, xs, ws, b, accumulate, y); break;
        case Act::QuickGelu: dequant_loop<Act::QuickGelu>(acc, off, N, xs, ws, b, accumulate, y); break;
    }
}

// The row kernels, built once per instruction set from the bodies above and picked per call by `level`.
struct RowKernels {
    void (*quantize)(const float* x, std::int64_t K, std::int8_t* q, float& scale, std::uint8_t flip);
    void (*dequantize)(const std::int32_t* acc, const std::int32_t* off, std::int64_t N, float xs, const float* ws,
                       const float* b, Act act, bool accumulate, float* y);
    // `row` is N floats of scratch: the row is activated there (in L1), then its maximum taken and quantised.
    void (*requantize)(const std::int32_t* acc, const std::int32_t* off, std::int64_t N, float xs, const float* ws,
                       const float* b, Act act, float* row, std::int8_t* q, float& scale, std::uint8_t flip);
};

#define VIT_ROW_KERNELS(NAME, TARGET)                                                                                 \
    TARGET void NAME##_quantize(const float* x, std::int64_t K, std::int8_t* q, float& scale, std::uint8_t flip) {    \
        quantize_with(x, K, abs_max(x, K), q, scale, flip);                                                           \
    }                                                                                                                 \
    TARGET void NAME##_dequantize(const std::int32_t* acc, const std::int32_t* off, std::int64_t N, float xs,         \
                                  const float* ws, const float* b, Act act, bool accumulate, float* y) {              \
        dequant_any(acc, off, N, xs, ws, b, act, accumulate, y);                                                      \
    }                                                                                                                 \
    TARGET void NAME##_requantize(const std::int32_t* acc, const std::int32_t* off, std::int64_t N, float xs,         \
                                  const float* ws, const float* b, Act act, float* row, std::int8_t* q, float& scale, \
                                  std::uint8_t flip) {                                                                \
        dequant_any(acc, off, N, xs, ws, b, act, false, row);                                                         \
        quantize_with(row, N, abs_max(row, N), q, scale, flip);                                                       \
    }                                                                                                                 \
    constexpr RowKernels NAME##_kernels{NAME##_quantize, NAME##_dequantize, NAME##_requantize};

VIT_ROW_KERNELS(avx512, __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma"))))
VIT_ROW_KERNELS(scalar, )

// ------------------------------------------------------------------ the AVX2 epilogues in intrinsics
// The compiler's vectorisation of the rows above spills its constants and blends its clamps; written out with
// activations_avx2.hpp, the re-quantising epilogue of ViT-B/16's fc1 (GELU) on the AVX2 path takes 0.17 ms per
// call instead of 0.34 (alone, 2 threads).

#define VIT_AVX2_INLINE inline __attribute__((target("avx2,fma"), always_inline))

// Eight columns of v = act((acc + off) * xs * ws + b), the scalar row's formula.
template <Act A, bool Off>
VIT_AVX2_INLINE __m256 dequant8(const std::int32_t* acc, const std::int32_t* off, __m256 xs, const float* ws,
                                const float* b) {
    __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc));
    if constexpr (Off) a = _mm256_add_epi32(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(off)));
    const __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(a), xs), _mm256_loadu_ps(ws));
    return simd::activate_avx2<A>(_mm256_add_ps(v, _mm256_loadu_ps(b)));
}

// Eight floats times inv, rounded half away from zero, as int32 (quantize_with's rounding).
VIT_AVX2_INLINE __m256i round8(const float* x, __m256 inv) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x), inv);
    const __m256 half = _mm256_or_ps(_mm256_set1_ps(0.5f), _mm256_and_ps(v, _mm256_set1_ps(-0.f)));
    return _mm256_cvttps_epi32(_mm256_add_ps(v, half));
}

VIT_AVX2_INLINE float hmax8(__m256 v) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, v);
    float mx = 0;
    for (float l : lanes) mx = std::max(mx, l);
    return mx;
}

// quantize_with with max |x| = mx, 32 values at a time.
VIT_AVX2_INLINE void quantize_row_avx2(const float* x, std::int64_t N, float mx, std::int8_t* q, float& scale,
                                       std::uint8_t flip) {
    scale = mx > 0 ? mx / 127.f : 1.f;
    const float inv = 1.f / scale;
    const __m256 invv = _mm256_set1_ps(inv);
    const __m256i flipv = _mm256_set1_epi8(static_cast<char>(flip));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // undoes the packs' lane interleaving
    std::int64_t n = 0;
    for (; n + 32 <= N; n += 32) {
        const __m256i s01 = _mm256_packs_epi32(round8(x + n, invv), round8(x + n + 8, invv));
        const __m256i s23 = _mm256_packs_epi32(round8(x + n + 16, invv), round8(x + n + 24, invv));
        const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(s01, s23), order);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + n), _mm256_xor_si256(bytes, flipv));
    }
    for (; n < N; ++n) {
        const float v = x[n] * inv;
        const auto i = static_cast<std::uint8_t>(static_cast<std::int32_t>(v + std::copysign(0.5f, v)));
        q[n] = static_cast<std::int8_t>(i ^ flip);
    }
}

__attribute__((target("avx2,fma"))) void quantize_avx2(const float* x, std::int64_t K, std::int8_t* q, float& scale,
                                                       std::uint8_t flip) {
    const __m256 sign = _mm256_set1_ps(-0.f);
    __m256 mxv = _mm256_setzero_ps();
    std::int64_t k = 0;
    for (; k + 8 <= K; k += 8) mxv = _mm256_max_ps(mxv, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + k)));
    float mx = hmax8(mxv);
    for (; k < K; ++k) mx = std::max(mx, std::fabs(x[k]));
    quantize_row_avx2(x, K, mx, q, scale, flip);
}

template <Act A, bool Off>
__attribute__((target("avx2,fma"))) void requantize_avx2(const std::int32_t* acc, const std::int32_t* off,
                                                         std::int64_t N, float xs, const float* ws, const float* b,
                                                         float* row, std::int8_t* q, float& scale, std::uint8_t flip) {
    const __m256 xv = _mm256_set1_ps(xs), sign = _mm256_set1_ps(-0.f);
    __m256 mxv = _mm256_setzero_ps();
    std::int64_t n = 0;
    for (; n + 8 <= N; n += 8) {
        const __m256 v = dequant8<A, Off>(acc + n, Off ? off + n : nullptr, xv, ws + n, b + n);
        _mm256_storeu_ps(row + n, v);
        mxv = _mm256_max_ps(mxv, _mm256_andnot_ps(sign, v));
    }
    float mx = hmax8(mxv);
    for (; n < N; ++n) {
        row[n] = activate<A>(static_cast<float>(Off ? acc[n] + off[n] : acc[n]) * xs * ws[n] + b[n]);
        mx = std::max(mx, std::fabs(row[n]));
    }
    quantize_row_avx2(row, N, mx, q, scale, flip);
}

template <Act A, bool Off>
__attribute__((target("avx2,fma"))) void dequantize_avx2(const std::int32_t* acc, const std::int32_t* off,
                                                         std::int64_t N, float xs, const float* ws, const float* b,
                                                         bool accumulate, float* y) {
    const __m256 xv = _mm256_set1_ps(xs);
    std::int64_t n = 0;
    for (; n + 8 <= N; n += 8) {
        __m256 v = dequant8<A, Off>(acc + n, Off ? off + n : nullptr, xv, ws + n, b + n);
        if (accumulate) v = _mm256_add_ps(v, _mm256_loadu_ps(y + n));
        _mm256_storeu_ps(y + n, v);
    }
    for (; n < N; ++n) {
        const float v = activate<A>(static_cast<float>(Off ? acc[n] + off[n] : acc[n]) * xs * ws[n] + b[n]);
        y[n] = accumulate ? y[n] + v : v;
    }
}

// Calls f(std::integral_constant<Act, act>, std::bool_constant<has offset>): the AVX2 row kernel instantiated for
// the runtime activation and offset.
template <class F>
void with_act(Act act, bool off, F&& f) {
    const auto go = [&](auto a) {
        if (off) f(a, std::true_type{});
        else f(a, std::false_type{});
    };
    switch (act) {
        case Act::None: go(std::integral_constant<Act, Act::None>{}); break;
        case Act::Gelu: go(std::integral_constant<Act, Act::Gelu>{}); break;
        case Act::GeluTanh: go(std::integral_constant<Act, Act::GeluTanh>{}); break;
        case Act::QuickGelu: go(std::integral_constant<Act, Act::QuickGelu>{}); break;
    }
}

void dequantize_avx2_rows(const std::int32_t* acc, const std::int32_t* off, std::int64_t N, float xs, const float* ws,
                          const float* b, Act act, bool accumulate, float* y) {
    with_act(act, off != nullptr, [&](auto a, auto o) {
        dequantize_avx2<decltype(a)::value, decltype(o)::value>(acc, off, N, xs, ws, b, accumulate, y);
    });
}

void requantize_avx2_rows(const std::int32_t* acc, const std::int32_t* off, std::int64_t N, float xs, const float* ws,
                          const float* b, Act act, float* row, std::int8_t* q, float& scale, std::uint8_t flip) {
    with_act(act, off != nullptr, [&](auto a, auto o) {
        requantize_avx2<decltype(a)::value, decltype(o)::value>(acc, off, N, xs, ws, b, row, q, scale, flip);
    });
}

constexpr RowKernels avx2_kernels{quantize_avx2, dequantize_avx2_rows, requantize_avx2_rows};

const RowKernels& kernels(SimdLevel level) {
    return level == SimdLevel::Avx512 ? avx512_kernels : level == SimdLevel::Avx2 ? avx2_kernels : scalar_kernels;
}

}  // namespace

void quantize_rows(const float* x, std::int64_t M, std::int64_t K, std::int8_t* q, float* scale, SimdLevel level,
                   bool u8) {
    const auto quantize = kernels(level).quantize;
    const std::uint8_t flip = u8 ? 0x80 : 0;
#pragma omp parallel for
    for (std::int64_t m = 0; m < M; ++m) quantize(x + m * K, K, q + m * K, scale[m], flip);
}

void dequantize_rows(const std::int32_t* acc, std::int64_t M, std::int64_t N, const float* xscale, const float* wscale,
                     const float* bias, Act act, bool accumulate, float* y, SimdLevel level,
                     const std::int32_t* acc_offset) {
    const auto dequantize = kernels(level).dequantize;
#pragma omp parallel for
    for (std::int64_t m = 0; m < M; ++m)
        dequantize(acc + m * N, acc_offset, N, xscale[m], wscale, bias, act, accumulate, y + m * N);
}

void dequantize_requantize_rows(const std::int32_t* acc, std::int64_t M, std::int64_t N, const float* xscale,
                                const float* wscale, const float* bias, Act act, std::int8_t* q, float* qscale,
                                SimdLevel level, const std::int32_t* acc_offset, bool u8) {
    const auto requantize = kernels(level).requantize;
    const std::uint8_t flip = u8 ? 0x80 : 0;
#pragma omp parallel
    {
        std::vector<float> row(static_cast<std::size_t>(N));
#pragma omp for
        for (std::int64_t m = 0; m < M; ++m)
            requantize(acc + m * N, acc_offset, N, xscale[m], wscale, bias, act, row.data(), q + m * N, qscale[m],
                       flip);
    }
}

float gelu_erf(float x) { return gelu_erf_poly(x); }
float gelu_tanh(float x) { return gelu_tanh_poly(x); }
float quick_gelu(float x) { return quick_gelu_poly(x); }

}  // namespace vit::int8
