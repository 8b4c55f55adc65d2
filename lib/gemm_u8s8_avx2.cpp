// The u8 x s8 GEMM declared in gemm_u8s8_avx2.hpp. Loops as gemm_avx2.cpp's: OpenMP tasks = (row block) x (range of
// 16-column panels), then K blocks whose panel slice stays in L1, then panels, then 4-row micro-tiles; partial
// sums live in acc between K blocks. Per 4-byte K group the tile broadcasts each row's 4 bytes and, per 8 columns,
// runs vpmaddubsw (u8 x s8 pairs to s16) and vpmaddwd by ones (pairs of s16 to s32): 32 multiply-adds per 2
// multiply instructions.
#include "gemm_u8s8_avx2.hpp"

#include "gemm_blocking.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

namespace vit::gemm_avx2 {

namespace {

#define VIT_AVX2 __attribute__((target("avx2,fma")))

constexpr int kMr = 4, kNr = 16, kGroup = 4;  // rows per micro-tile, columns per panel, K values per group
constexpr std::int64_t kMc = 240;             // row block: x's slice of kMc x kc bytes stays in L2

// K values per block: the panel slice is kc x 16 bytes (16-24 KiB).
int max_kc() { return slice_bytes_for_l1(1536 * 16) / 16; }

// c [MR, 16] (row stride ldc) = (load_c ? c : 0) + a [MR, 4 kq] (row stride lda) · b [kq groups of 16 x 4]; the
// first pf lines of 64 bytes at next (this tile's share of the next panel slice) are prefetched into L2.
template <int MR>
VIT_AVX2 void micro_tile(const std::uint8_t* a, std::int64_t lda, const std::int8_t* b, int kq, std::int32_t* c,
                         std::int64_t ldc, bool load_c, const char* next, int pf) {
    __m256i acc[MR][2];
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
        acc[r][0] = load_c ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + r * ldc)) : _mm256_setzero_si256();
        acc[r][1] = load_c ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + r * ldc + 8))
                           : _mm256_setzero_si256();
    }
    const __m256i ones = _mm256_set1_epi16(1);
#pragma GCC unroll 2
    for (int g = 0; g < kq; ++g) {
        if (g < pf) _mm_prefetch(next + g * 64, _MM_HINT_T1);
        const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + g * 64));
        const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + g * 64 + 32));
#pragma GCC unroll 4
        for (int r = 0; r < MR; ++r) {
            std::int32_t quad;
            std::memcpy(&quad, a + r * lda + g * kGroup, sizeof quad);
            const __m256i av = _mm256_set1_epi32(quad);
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(av, b0), ones));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(av, b1), ones));
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * ldc), acc[r][0]);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * ldc + 8), acc[r][1]);
    }
}

using MicroTile = void (*)(const std::uint8_t*, std::int64_t, const std::int8_t*, int, std::int32_t*, std::int64_t,
                           bool, const char*, int);
constexpr MicroTile kTiles[kMr + 1] = {nullptr, micro_tile<1>, micro_tile<2>, micro_tile<3>, micro_tile<4>};

struct Problem {
    const std::uint8_t* x;
    std::int64_t M;
    int K, N;
    const std::int8_t* w;
    std::int32_t* acc;
};

// acc rows [m0, m1) x panels [p0, p1).
VIT_AVX2 void run_block(const Problem& pr, std::int64_t m0, std::int64_t m1, int p0, int p1) {
    const int K = pr.K, N = pr.N;
    const int kblocks = (K + max_kc() - 1) / max_kc();
    const int kc = ((K + kblocks - 1) / kblocks + kGroup - 1) / kGroup * kGroup;
    const std::size_t panel_bytes = static_cast<std::size_t>(K) * kNr;
    for (int k0 = 0; k0 < K; k0 += kc) {
        const int kl = std::min(kc, K - k0), kq = kl / kGroup;
        const bool load_c = k0 > 0;
        for (int p = p0; p < p1; ++p) {
            const std::int8_t* b = pr.w + p * panel_bytes + static_cast<std::size_t>(k0) * kNr;
            const int n0 = p * kNr, nv = std::min(kNr, N - n0);
            // a group of 4 K values of a panel is one 64-byte line
            const std::int8_t* next = next_slice(pr.w, K, kNr, p0, p1, p, k0, kl);
            panel_tiles<kMr, kNr>(
                m0, m1, pr.acc + m0 * N + n0, N, nv, load_c, next, kq,
                [&](std::int64_t m, int mr, std::int32_t* c, std::int64_t ldc, const char* pf, int lines) {
                    kTiles[mr](pr.x + m * K + k0, K, b, kq, c, ldc, load_c, pf, lines);
                });
        }
    }
}

}  // namespace

PackedWeightsS8::PackedWeightsS8(const std::int8_t* w_nk, int K, int N) : K_(K), N_(N) {
    if (K <= 0 || N <= 0 || K % kGroup != 0)
        throw std::invalid_argument("gemm_u8s8: weights of " + std::to_string(N) + " x " + std::to_string(K) +
                                    ", expected at least one output feature and a positive multiple of 4 inputs");
    const int panels = (N + kNr - 1) / kNr;
    const std::size_t count = static_cast<std::size_t>(panels) * K * kNr;
    bytes_ = (count + 63) / 64 * 64;
    void* mem = std::aligned_alloc(64, std::max<std::size_t>(bytes_, 64));
    if (!mem) throw std::bad_alloc();
    data_ = std::shared_ptr<std::int8_t>(static_cast<std::int8_t*>(mem), [](std::int8_t* p) { std::free(p); });
    std::int8_t* d = data_.get();
    for (int p = 0; p < panels; ++p)
        for (int g = 0; g < K / kGroup; ++g)
            for (int j = 0; j < kNr; ++j)
                for (int i = 0; i < kGroup; ++i) {
                    const int n = p * kNr + j, k = g * kGroup + i;
                    const std::int8_t v = n < N ? w_nk[static_cast<std::size_t>(n) * K + k] : 0;
                    if (v > 63 || v < -63)
                        throw std::invalid_argument("gemm_u8s8: weight [" + std::to_string(n) + ", " +
                                                    std::to_string(k) + "] = " + std::to_string(v) +
                                                    ", expected 7 bits (|w| <= 63)");
                    d[((static_cast<std::size_t>(p) * (K / kGroup) + g) * kNr + j) * kGroup + i] = v;
                }
}

void gemm_u8s8(const std::uint8_t* x, std::int64_t M, const PackedWeightsS8& w, std::int32_t* acc) {
    if (M <= 0 || w.empty()) return;
    const Problem pr{x, M, w.K(), w.N(), w.data(), acc};
    const int panels = (pr.N + kNr - 1) / kNr;
    for_each_block(M, panels, kMc, kMr, 2.0 * static_cast<double>(M) * pr.K * pr.N,
                   [&](std::int64_t m0, std::int64_t m1, int p0, int p1) { run_block(pr, m0, m1, p0, p1); });
}

}  // namespace vit::gemm_avx2
