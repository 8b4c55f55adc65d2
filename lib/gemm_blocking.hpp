// The blocking both AVX2 GEMMs share (gemm_avx2.cpp f32, gemm_u8s8_avx2.cpp int8), BLIS's loop order: OpenMP tasks
// of (row block) x (range of 16-column panels), K blocks whose panel slice stays in L1, and the next slice's weights
// prefetched into L2 by the micro-tiles on the way.
#pragma once

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace vit::gemm_avx2 {

// The K block's panel slice fills half of L1 at most: `bytes_48k` where L1 has 48 KiB or more, two thirds of it
// otherwise (32 KiB). f32: 384 x 64 B lines against 256 gave ViT-B/16 on the AVX2 path 172 -> 165 ms per pass.
inline int slice_bytes_for_l1(int bytes_48k) {
    static const bool big_l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE) >= 48 * 1024;
    return big_l1 ? bytes_48k : bytes_48k * 2 / 3;
}

// Runs block(m0, m1, p0, p1) over the OpenMP threads for every task: rows [m0, m1) in blocks of whole mr-row
// micro-tiles, at most mc rows each, times panel ranges [p0, p1) (one range per thread where the rows make one
// block). Serial when the work (ops) is too small to share.
template <class Block>
void for_each_block(std::int64_t M, int panels, std::int64_t mc, int mr, double ops, Block&& block) {
    const std::int64_t mblocks = (M + mc - 1) / mc;
    const std::int64_t mrows = ((M + mblocks - 1) / mblocks + mr - 1) / mr * mr;
    const int threads = omp_get_max_threads();
    const int nchunks = std::max(1, std::min(threads, panels));
    const std::int64_t tasks = mblocks * nchunks;
#pragma omp parallel for schedule(static) \
    num_threads(static_cast <int>(std::min <std::int64_t>(threads, tasks))) if (ops > 2e5 && threads > 1)
    for (std::int64_t t = 0; t < tasks; ++t) {
        const std::int64_t mb = t / nchunks;
        const int ch = static_cast<int>(t % nchunks);
        const std::int64_t m0 = mb * mrows, m1 = std::min(M, m0 + mrows);
        const int p0 = static_cast<int>(static_cast<std::int64_t>(panels) * ch / nchunks);
        const int p1 = static_cast<int>(static_cast<std::int64_t>(panels) * (ch + 1) / nchunks);
        if (m0 < m1 && p0 < p1) block(m0, m1, p0, p1);
    }
}

// The weights slice after panel p's at K offset k0 (kl values) in a block's order: panel p + 1's, or the first
// panel's (p0) in the next K block; null after the last. w: panels of K x nr values each, K-major.
template <class T>
const T* next_slice(const T* w, int K, int nr, int p0, int p1, int p, int k0, int kl) {
    const std::size_t panel = static_cast<std::size_t>(K) * nr;
    if (p + 1 < p1) return w + (p + 1) * panel + static_cast<std::size_t>(k0) * nr;
    if (k0 + kl < K) return w + p0 * panel + static_cast<std::size_t>(k0 + kl) * nr;
    return nullptr;
}

// One panel's micro-tiles over rows [m0, m1) of C (corner c0, row stride ldc): tile(m, mr, c, ldc, pf, pf_lines)
// per MR-row tile at row m, with c its corner of C, or, where the panel has only nv < NR valid columns (past N's
// last full panel), a scratch tile (loaded from C when load_c, its nv valid columns stored back). Tile i also
// prefetches its share of the `lines` 64-byte lines at next (null: none): lines [first, first + count) of an even
// split. All of them from the first tile stalled it on the line fill buffers (f32 ViT-B/16 on the AVX2 path: 174 ->
// 170 ms per pass).
template <int MR, int NR, class C, class Tile>
void panel_tiles(std::int64_t m0, std::int64_t m1, C* c0, std::int64_t ldc, int nv, bool load_c, const void* next,
                 int lines, Tile&& tile) {
    alignas(32) C scratch[MR * NR];
    const int tiles = static_cast<int>((m1 - m0 + MR - 1) / MR);
    const int share = (lines + tiles - 1) / tiles;
    for (std::int64_t m = m0; m < m1; m += MR) {
        const int mr = static_cast<int>(std::min<std::int64_t>(MR, m1 - m));
        const int first = static_cast<int>((m - m0) / MR) * share;
        const int count = next ? std::max(0, std::min(share, lines - first)) : 0;
        const char* pf = count > 0 ? static_cast<const char*>(next) + static_cast<std::size_t>(first) * 64 : nullptr;
        C* c = c0 + (m - m0) * ldc;
        if (nv == NR) {
            tile(m, mr, c, ldc, pf, count);
            continue;
        }
        for (int r = 0; r < mr; ++r)
            for (int j = 0; j < NR; ++j) scratch[r * NR + j] = load_c && j < nv ? c[r * ldc + j] : C{0};
        tile(m, mr, scratch, std::int64_t{NR}, pf, count);
        for (int r = 0; r < mr; ++r)
            for (int j = 0; j < nv; ++j) c[r * ldc + j] = scratch[r * NR + j];
    }
}

}  // namespace vit::gemm_avx2
