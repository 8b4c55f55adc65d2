// The blocking both AVX2 GEMMs share (gemm_avx2.cpp f32, gemm_u8s8_avx2.cpp int8), BLIS's loop order: OpenMP tasks
// of (row block) x (range of 16-column panels), K blocks whose panel slice stays in L1, and the next slice's weights
// prefetched into L2 by the micro-tiles on the way.
#pragma once

#include <omp.h>
#include <unistd.h>

#include <algorithm>
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

// The next panel slice's `lines` cache lines, spread over a row block's `tiles` micro-tiles: tile i prefetches
// lines [first, first + count). All of them from the first tile stalled it on the line fill buffers (f32 ViT-B/16
// on the AVX2 path: 174 -> 170 ms per pass).
struct PrefetchShare {
    int first = 0, count = 0;
};
inline PrefetchShare prefetch_share(int tile, int tiles, int lines) {
    const int share = (lines + tiles - 1) / tiles, first = tile * share;
    return {first, std::max(0, std::min(share, lines - first))};
}

}  // namespace vit::gemm_avx2
