// The AVX2 + FMA GEMM declared in gemm_avx2.hpp.
//
// Loops, outermost first (BLIS's order): OpenMP tasks = (row block of <= kMc rows) x (range of 16-column panels),
// then K blocks of <= max_kc(), then the panels of the range, then 6-row micro-tiles. A panel's kc x 16 slice
// (16-24 KiB) stays in L1 while every micro-tile of the row block passes over it; x's mc x kc slice stays in L2. The
// partial sums of y live in y itself between K blocks; the last K block adds the bias and applies the epilogue in
// registers.
#include "gemm_avx2.hpp"

#include "activations_avx2.hpp"
#include "gemm_blocking.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>

namespace vit::gemm_avx2 {

namespace {

#define VIT_AVX2 __attribute__((target("avx2,fma")))

constexpr int kMr = 6, kNr = 16;
// K block: a panel's slice of kc x 16 floats (64 bytes a K value): 384 with a 48 KiB L1, 256 with 32 KiB.
int max_kc() { return slice_bytes_for_l1(384 * 64) / 64; }
constexpr std::int64_t kMc = 240;  // row block: x's slice of kMc x kc floats is 240-360 KiB

// c [MR, 16] (row stride ldc) = (load_c ? c : 0) + a [MR, kc] (row stride lda) · b [kc, 16]; where last, the bias
// [16] is added and the activation applied before the store (a template parameter: the MR x 2 activations are then
// straight-line code that the CPU overlaps). The first pf lines of 64 bytes at next (this tile's share of the next
// panel slice) are prefetched into L2 on the way: the weights come from memory, their first use would wait on it.
template <int MR, Epilogue EP>
VIT_AVX2 void micro_tile(const float* a, std::int64_t lda, const float* b, int kc, float* c, std::int64_t ldc,
                         bool load_c, bool last, const float* bias, const char* next, int pf) {
    __m256 acc[MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
        acc[r][0] = load_c ? _mm256_loadu_ps(c + r * ldc) : _mm256_setzero_ps();
        acc[r][1] = load_c ? _mm256_loadu_ps(c + r * ldc + 8) : _mm256_setzero_ps();
    }
#pragma GCC unroll 2
    for (int k = 0; k < kc; ++k) {
        if (k < pf) _mm_prefetch(next + k * 64, _MM_HINT_T1);  // one K value of a panel is a line
        const __m256 b0 = _mm256_load_ps(b + k * kNr), b1 = _mm256_load_ps(b + k * kNr + 8);
#pragma GCC unroll 6
        for (int r = 0; r < MR; ++r) {
            const __m256 av = _mm256_broadcast_ss(a + r * lda + k);
            acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
        }
    }
    if (last) {
        const __m256 bias0 = _mm256_loadu_ps(bias), bias1 = _mm256_loadu_ps(bias + 8);
#pragma GCC unroll 6
        for (int r = 0; r < MR; ++r) {
            acc[r][0] = simd::activate_avx2<EP>(_mm256_add_ps(acc[r][0], bias0));
            acc[r][1] = simd::activate_avx2<EP>(_mm256_add_ps(acc[r][1], bias1));
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
        _mm256_storeu_ps(c + r * ldc, acc[r][0]);
        _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
    }
}

using MicroTile = void (*)(const float*, std::int64_t, const float*, int, float*, std::int64_t, bool, bool,
                           const float*, const char*, int);
template <Epilogue EP>
constexpr MicroTile kRowsTable[kMr + 1] = {nullptr,           micro_tile<1, EP>, micro_tile<2, EP>, micro_tile<3, EP>,
                                           micro_tile<4, EP>, micro_tile<5, EP>, micro_tile<6, EP>};
// [epilogue][rows]; Residual's store is None's (y was loaded into the accumulators).
constexpr const MicroTile* kMicroTile[] = {kRowsTable<Epilogue::None>, kRowsTable<Epilogue::Gelu>,
                                           kRowsTable<Epilogue::GeluTanh>, kRowsTable<Epilogue::QuickGelu>,
                                           kRowsTable<Epilogue::None>};

struct Problem {
    const float* x;
    std::int64_t M;
    int K, N;
    const float* w;
    const float* bias;
    Epilogue ep;
    float* y;
};

// y rows [m0, m1) x panels [p0, p1).
VIT_AVX2 void run_block(const Problem& pr, std::int64_t m0, std::int64_t m1, int p0, int p1) {
    const int K = pr.K, N = pr.N;
    const int kblocks = (K + max_kc() - 1) / max_kc(), kc = (K + kblocks - 1) / kblocks;
    alignas(32) float tile_bias[kNr];
    const MicroTile* tiles = kMicroTile[static_cast<int>(pr.ep)];
    for (int k0 = 0; k0 < K; k0 += kc) {
        const int kl = std::min(kc, K - k0);
        const bool last = k0 + kl >= K, load_c = k0 > 0 || pr.ep == Epilogue::Residual;
        for (int p = p0; p < p1; ++p) {
            const float* b = pr.w + (static_cast<std::size_t>(p) * K + k0) * kNr;
            const int n0 = p * kNr, nv = std::min(kNr, N - n0);
            for (int j = 0; j < kNr; ++j) tile_bias[j] = pr.bias && j < nv ? pr.bias[n0 + j] : 0.f;
            const float* next = next_slice(pr.w, K, kNr, p0, p1, p, k0, kl);
            panel_tiles<kMr, kNr>(m0, m1, pr.y + m0 * N + n0, N, nv, load_c, next, kl,
                                  [&](std::int64_t m, int mr, float* c, std::int64_t ldc, const char* pf, int lines) {
                                      tiles[mr](pr.x + m * K + k0, K, b, kl, c, ldc, load_c, last, tile_bias, pf,
                                                lines);
                                  });
        }
    }
}

}  // namespace

bool supported() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

PackedWeights::PackedWeights(const float* w_nk, int K, int N) : K_(K), N_(N) {
    if (K <= 0 || N <= 0)
        throw std::invalid_argument("gemm_avx2: weights of " + std::to_string(N) + " x " + std::to_string(K) +
                                    ", expected at least one input and one output feature");
    const int panels = (N + kNr - 1) / kNr;
    const std::size_t count = static_cast<std::size_t>(panels) * K * kNr;
    bytes_ = (count * sizeof(float) + 63) / 64 * 64;
    void* mem = std::aligned_alloc(64, std::max<std::size_t>(bytes_, 64));
    if (!mem) throw std::bad_alloc();
    data_ = std::shared_ptr<float>(static_cast<float*>(mem), [](float* p) { std::free(p); });
    float* d = data_.get();
    for (int p = 0; p < panels; ++p)
        for (int j = 0; j < kNr; ++j) {
            const int n = p * kNr + j;
            for (int k = 0; k < K; ++k)
                d[(static_cast<std::size_t>(p) * K + k) * kNr + j] = n < N ? w_nk[static_cast<std::size_t>(n) * K + k]
                                                                           : 0.f;
        }
}

void gemm(const float* x, std::int64_t M, const PackedWeights& w, const float* bias, Epilogue ep, float* y) {
    if (M <= 0 || w.N() <= 0) return;
    const Problem pr{x, M, w.K(), w.N(), w.data(), bias, ep, y};
    const int panels = (pr.N + kNr - 1) / kNr;
    for_each_block(M, panels, kMc, kMr, 2.0 * static_cast<double>(M) * pr.K * pr.N,
                   [&](std::int64_t m0, std::int64_t m1, int p0, int p1) { run_block(pr, m0, m1, p0, p1); });
}

}  // namespace vit::gemm_avx2
