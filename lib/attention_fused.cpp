// The f32 attention kernels of attention_fused.hpp: one register-blocked FMA tile, C [R, W] = A [R, K] · B [K, W]
// with A read by broadcast, serves both products (R x W = 8 x 32 with AVX-512, 6 x 16 with AVX2: 16 and 12
// accumulators, FMA-bound). Kᵀ and V are packed once per head into column blocks of W ([d, W] and [T, W]), which
// the tile then reads sequentially (V's rows in qkv lie 3D floats apart: a page per row at ViT-B's sizes, and the
// tile stalled on its loads); Q is read where it lies in qkv.
#include "attention_fused.hpp"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace vit {

namespace {

std::int64_t round_up(std::int64_t x, std::int64_t m) { return (x + m - 1) / m * m; }

// C[r, :n] = (A[r, :K] · B[:K, :32]) * (cscale ? cscale[r] : 1) for r < R, n <= 32 (all 32 when Full); B is
// [K, 32] contiguous; row strides lda and ldc. Columns of C past n are not written.
template <int R, bool Full>
__attribute__((target("avx512f"))) void tile_avx512(const float* A, std::int64_t lda, const float* B, std::int64_t K,
                                                    std::int64_t n, float* C, std::int64_t ldc, const float* cscale) {
    const auto mask = [](std::int64_t k) {
        return k >= 16  ? static_cast<__mmask16>(0xffff)
               : k <= 0 ? static_cast<__mmask16>(0)
                        : static_cast<__mmask16>((1u << k) - 1u);
    };
    const __mmask16 m0 = mask(n), m1 = mask(n - 16);
    __m512 c0[R], c1[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) c0[r] = c1[r] = _mm512_setzero_ps();
    for (std::int64_t k = 0; k < K; ++k) {
        const __m512 b0 = _mm512_loadu_ps(B + k * 32), b1 = _mm512_loadu_ps(B + k * 32 + 16);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            const __m512 a = _mm512_set1_ps(A[r * lda + k]);
            c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        const __m512 s = _mm512_set1_ps(cscale ? cscale[r] : 1.f);
        if (Full) {
            _mm512_storeu_ps(C + r * ldc, _mm512_mul_ps(c0[r], s));
            _mm512_storeu_ps(C + r * ldc + 16, _mm512_mul_ps(c1[r], s));
        } else {
            _mm512_mask_storeu_ps(C + r * ldc, m0, _mm512_mul_ps(c0[r], s));
            _mm512_mask_storeu_ps(C + r * ldc + 16, m1, _mm512_mul_ps(c1[r], s));
        }
    }
}

// The same with AVX2 + FMA: B [K, 16], n <= 16 columns.
template <int R, bool Full>
__attribute__((target("avx2,fma"))) void tile_avx2(const float* A, std::int64_t lda, const float* B, std::int64_t K,
                                                   std::int64_t n, float* C, std::int64_t ldc, const float* cscale) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lanes);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n) - 8), lanes);
    __m256 c0[R], c1[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) c0[r] = c1[r] = _mm256_setzero_ps();
    for (std::int64_t k = 0; k < K; ++k) {
        const __m256 b0 = _mm256_loadu_ps(B + k * 16), b1 = _mm256_loadu_ps(B + k * 16 + 8);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            const __m256 a = _mm256_broadcast_ss(A + r * lda + k);
            c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
            c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        const __m256 s = _mm256_set1_ps(cscale ? cscale[r] : 1.f);
        if (Full) {
            _mm256_storeu_ps(C + r * ldc, _mm256_mul_ps(c0[r], s));
            _mm256_storeu_ps(C + r * ldc + 8, _mm256_mul_ps(c1[r], s));
        } else {
            _mm256_maskstore_ps(C + r * ldc, m0, _mm256_mul_ps(c0[r], s));
            _mm256_maskstore_ps(C + r * ldc + 8, m1, _mm256_mul_ps(c1[r], s));
        }
    }
}

using TileFn = void (*)(const float*, std::int64_t, const float*, std::int64_t, std::int64_t, float*, std::int64_t,
                        const float*);

// Per SIMD level: rows and columns of a tile, and its kernels by row count (1..rows) for full and partial columns.
struct Kernels {
    std::int64_t rows, cols;
    TileFn full[9], part[9];
};

const Kernels kAvx512{
    8,
    32,
    {nullptr, tile_avx512<1, true>, tile_avx512<2, true>, tile_avx512<3, true>, tile_avx512<4, true>,
     tile_avx512<5, true>, tile_avx512<6, true>, tile_avx512<7, true>, tile_avx512<8, true>},
    {nullptr, tile_avx512<1, false>, tile_avx512<2, false>, tile_avx512<3, false>, tile_avx512<4, false>,
     tile_avx512<5, false>, tile_avx512<6, false>, tile_avx512<7, false>, tile_avx512<8, false>}};
const Kernels kAvx2{6,
                    16,
                    {nullptr, tile_avx2<1, true>, tile_avx2<2, true>, tile_avx2<3, true>, tile_avx2<4, true>,
                     tile_avx2<5, true>, tile_avx2<6, true>, nullptr, nullptr},
                    {nullptr, tile_avx2<1, false>, tile_avx2<2, false>, tile_avx2<3, false>, tile_avx2<4, false>,
                     tile_avx2<5, false>, tile_avx2<6, false>, nullptr, nullptr}};

// Kᵀ of one head (keys with row stride ld) in blocks of W keys, block jb = [d, W] at jb * d * W, zeros past T keys.
void pack_kt(const float* k, std::int64_t ld, std::int64_t T, std::int64_t d, std::int64_t Tp, std::int64_t W,
             float* kt) {
    std::fill(kt + (T / W) * d * W, kt + Tp * d, 0.f);
    for (std::int64_t j = 0; j < T; ++j) {
        float* o = kt + j / W * d * W + j % W;
        for (std::int64_t c = 0; c < d; ++c) o[c * W] = k[j * ld + c];
    }
}

// V of one head (row stride ld) in blocks of W columns, block cb = [T, W] at cb * T * W, zeros past d columns.
void pack_v(const float* v, std::int64_t ld, std::int64_t T, std::int64_t d, std::int64_t W, float* out) {
    for (std::int64_t c0 = 0; c0 < d; c0 += W) {
        const std::int64_t n = std::min(W, d - c0);
        float* o = out + c0 * T;
        for (std::int64_t j = 0; j < T; ++j, o += W) {
            std::copy(v + j * ld + c0, v + j * ld + c0 + n, o);
            std::fill(o + n, o + W, 0.f);
        }
    }
}

}  // namespace

void attention_fused(const float* qkv, std::int64_t B, std::int64_t T, std::int64_t H, std::int64_t d, float scale,
                     float* probs, float* ctx, SimdLevel level, std::int64_t queries) {
    if (level != SimdLevel::Avx512 && level != SimdLevel::Avx2)
        throw std::logic_error("attention_fused needs AVX-512 or AVX2 kernels");
    if (d < 1 || !(scale > 0))
        throw std::invalid_argument("attention_fused: head dim " + std::to_string(d) + " (>= 1 expected) or scale " +
                                    std::to_string(scale) + " (> 0 expected)");
    if (B < 1 || T < 1 || H < 1) return;
    if (queries < 0) queries = T;
    if (queries < 1 || queries > T || (probs && queries < T))
        throw std::invalid_argument("attention_fused: " + std::to_string(queries) + " query tokens of " +
                                    std::to_string(T) + (probs ? " with probabilities (all T expected)" : ""));
    const Kernels& kern = level == SimdLevel::Avx512 ? kAvx512 : kAvx2;
    const std::int64_t D = H * d, heads = B * H, R = kern.rows, W = kern.cols, Tp = round_up(T, W);
    const std::int64_t blocks = (queries + R - 1) / R, kt_elems = d * Tp, head_elems = kt_elems + T * round_up(d, W);
    const std::int64_t s_elems = R * Tp + 16;  // a block's scores, and 16 for its row sums
    const int threads = omp_get_max_threads();
    thread_local std::vector<float> buf;  // per thread: Kᵀ and V of its current head, its scores and row sums
    const std::int64_t thread_elems = round_up(head_elems + s_elems, 16);
    buf.resize(static_cast<std::size_t>(threads * thread_elems + 16));
    float* base = buf.data() + (16 - reinterpret_cast<std::uintptr_t>(buf.data()) / 4 % 16) % 16;  // 64-byte aligned
    const std::int64_t items = heads * blocks;
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        float* kt = base + t * thread_elems;
        float* S = kt + head_elems;
        float* inv = S + R * Tp;
        // Each thread a consecutive range of items (R query rows of one head), packing Kᵀ and V of each head it
        // meets into its own buffer: they stay in its L2 while its items use them (all heads packed up front were
        // 10 MB for ViT-Ti at batch 32, read back from memory); a head split between two threads is packed by both.
        std::int64_t packed = -1;
        for (std::int64_t item = items * t / nt; item < items * (t + 1) / nt; ++item) {
            const std::int64_t bh = item / blocks, b = bh / H, h = bh % H, r0 = item % blocks * R;
            const std::int64_t rows = std::min(R, queries - r0);
            if (bh != packed) {
                const float* head = qkv + b * T * 3 * D + h * d;  // q of (b, h) at token 0
                pack_kt(head + D, 3 * D, T, d, Tp, W, kt);
                pack_v(head + 2 * D, 3 * D, T, d, W, kt + kt_elems);
                packed = bh;
            }
            const float* q = qkv + (b * T + r0) * 3 * D + h * d;
            for (std::int64_t j0 = 0; j0 < Tp; j0 += W)
                kern.full[rows](q, 3 * D, kt + j0 * d, d, W, S + j0, Tp, nullptr);
            exp_rows(S, rows, T, Tp, inv, level, scale);
            if (probs)
                for (std::int64_t r = 0; r < rows; ++r)
                    for (std::int64_t j = 0; j < T; ++j) probs[(bh * T + r0 + r) * T + j] = S[r * Tp + j] * inv[r];
            const float* v = kt + kt_elems;
            float* out = ctx + (b * T + r0) * D + h * d;
            for (std::int64_t c0 = 0; c0 < d; c0 += W) {
                const std::int64_t n = std::min(W, d - c0);
                (n == W ? kern.full : kern.part)[rows](S, Tp, v + c0 * T, T, n, out + c0, D, inv);
            }
        }
    }
}

}  // namespace vit
