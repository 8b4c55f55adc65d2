// The tile kernels of attention_amx_tiles.hpp: the tile configuration and the products Q·Kᵀ and P·V of one or two
// blocks of 16 query rows.
#include "attention_amx_tiles.hpp"

#include <immintrin.h>

#include <algorithm>

namespace vit::amx_tiles {

namespace {

struct alignas(64) TileConfig {
    std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
    std::uint16_t colsb[16] = {};
    std::uint8_t rows[16] = {};
};

// GCC's tile intrinsics are asm statements that do not tell the compiler which memory they read: without a barrier
// the stores that fill a buffer could be moved past the tile load that reads it.
inline void compiler_barrier() { asm volatile("" ::: "memory"); }

// S [16, Tk] f32 (row stride Tk) = Q [16, NKC * 32] · Kᵀ for one block of queries `q` (row stride ldq): the
// queries in tiles 0..NKC-1, two key blocks at a time in tiles 4 and 5 accumulating into 6 and 7.
template <int NKC>
__attribute__((target("amx-tile,amx-bf16"))) void scores_block(const std::uint16_t* q, std::int64_t ldq,
                                                               const std::uint16_t* kp, std::int64_t Tk, float* S) {
    const long qs = static_cast<long>(ldq) * 2, ss = static_cast<long>(Tk) * 4;
    compiler_barrier();
    _tile_loadd(0, q, qs);
    if constexpr (NKC > 1) _tile_loadd(1, q + kDepth, qs);
    if constexpr (NKC > 2) _tile_loadd(2, q + 2 * kDepth, qs);
    if constexpr (NKC > 3) _tile_loadd(3, q + 3 * kDepth, qs);
    for (std::int64_t jb = 0; jb < Tk / kRows; jb += 2) {  // Tk is a multiple of 32: key blocks come in pairs
        const std::uint16_t* k0 = kp + jb * NKC * kTileElems;
        const std::uint16_t* k1 = k0 + NKC * kTileElems;
        _tile_zero(6);
        _tile_zero(7);
        _tile_loadd(4, k0, 64);
        _tile_loadd(5, k1, 64);
        _tile_dpbf16ps(6, 0, 4);
        _tile_dpbf16ps(7, 0, 5);
        if constexpr (NKC > 1) {
            _tile_loadd(4, k0 + kTileElems, 64);
            _tile_loadd(5, k1 + kTileElems, 64);
            _tile_dpbf16ps(6, 1, 4);
            _tile_dpbf16ps(7, 1, 5);
        }
        if constexpr (NKC > 2) {
            _tile_loadd(4, k0 + 2 * kTileElems, 64);
            _tile_loadd(5, k1 + 2 * kTileElems, 64);
            _tile_dpbf16ps(6, 2, 4);
            _tile_dpbf16ps(7, 2, 5);
        }
        if constexpr (NKC > 3) {
            _tile_loadd(4, k0 + 3 * kTileElems, 64);
            _tile_loadd(5, k1 + 3 * kTileElems, 64);
            _tile_dpbf16ps(6, 3, 4);
            _tile_dpbf16ps(7, 3, 5);
        }
        _tile_stored(6, S + jb * kRows, ss);
        _tile_stored(7, S + (jb + 1) * kRows, ss);
    }
}

// O [16, 16 NB] f32 (row stride os floats) = P [16, Tk] bf16 · V for NB consecutive column blocks of V starting at
// `vp`, accumulated in tiles 4..3+NB; P's depth chunks go through tile 0, V's tiles through 1..3.
template <int NB>
__attribute__((target("amx-tile,amx-bf16"))) void context_group(const std::uint16_t* P, std::int64_t Tk,
                                                                const std::uint16_t* vp, float* O, std::int64_t os) {
    const std::int64_t nkv = Tk / kDepth, next = nkv * kTileElems;
    const long ps = static_cast<long>(Tk) * 2, ob = static_cast<long>(os) * 4;
    compiler_barrier();
    _tile_zero(4);
    if constexpr (NB > 1) _tile_zero(5);
    if constexpr (NB > 2) _tile_zero(6);
    if constexpr (NB > 3) _tile_zero(7);
    for (std::int64_t kc = 0; kc < nkv; ++kc) {
        const std::uint16_t* b = vp + kc * kTileElems;
        _tile_loadd(0, P + kc * kDepth, ps);
        _tile_loadd(1, b, 64);
        _tile_dpbf16ps(4, 0, 1);
        if constexpr (NB > 1) {
            _tile_loadd(2, b + next, 64);
            _tile_dpbf16ps(5, 0, 2);
        }
        if constexpr (NB > 2) {
            _tile_loadd(3, b + 2 * next, 64);
            _tile_dpbf16ps(6, 0, 3);
        }
        if constexpr (NB > 3) {
            _tile_loadd(1, b + 3 * next, 64);
            _tile_dpbf16ps(7, 0, 1);
        }
    }
    _tile_stored(4, O, ob);
    if constexpr (NB > 1) _tile_stored(5, O + kRows, ob);
    if constexpr (NB > 2) _tile_stored(6, O + 2 * kRows, ob);
    if constexpr (NB > 3) _tile_stored(7, O + 3 * kRows, ob);
}

// The same for two blocks of queries at once (S [32, Tk]: q0's rows, then q1's), each key tile loaded once for both:
// q0 in tiles 0..NKC-1, q1 in 2..1+NKC, the key tiles through 6 and 7 into accumulators 4 (q0) and 5 (q1).
template <int NKC>
__attribute__((target("amx-tile,amx-bf16"))) void scores_pair_block(const std::uint16_t* q0, std::int64_t ld0,
                                                                    const std::uint16_t* q1, std::int64_t ld1,
                                                                    const std::uint16_t* kp, std::int64_t Tk,
                                                                    float* S) {
    static_assert(NKC == 1 || NKC == 2, "two blocks of queries fill four tiles at most");
    const long ss = static_cast<long>(Tk) * 4;
    float* S1 = S + kRows * Tk;
    compiler_barrier();
    _tile_loadd(0, q0, static_cast<long>(ld0) * 2);
    _tile_loadd(2, q1, static_cast<long>(ld1) * 2);
    if constexpr (NKC > 1) {
        _tile_loadd(1, q0 + kDepth, static_cast<long>(ld0) * 2);
        _tile_loadd(3, q1 + kDepth, static_cast<long>(ld1) * 2);
    }
    for (std::int64_t jb = 0; jb < Tk / kRows; ++jb) {
        const std::uint16_t* kb = kp + jb * NKC * kTileElems;
        _tile_zero(4);
        _tile_zero(5);
        _tile_loadd(6, kb, 64);
        if constexpr (NKC > 1) _tile_loadd(7, kb + kTileElems, 64);
        _tile_dpbf16ps(4, 0, 6);
        _tile_dpbf16ps(5, 2, 6);
        if constexpr (NKC > 1) {
            _tile_dpbf16ps(4, 1, 7);
            _tile_dpbf16ps(5, 3, 7);
        }
        _tile_stored(4, S + jb * kRows, ss);
        _tile_stored(5, S1 + jb * kRows, ss);
    }
}

// O [32, 16 NB] f32 (row stride os floats) = P [32, Tk] bf16 · V for NB (1 or 2) consecutive column blocks of V: P's
// two row blocks through tiles 0 and 1, V's tiles through 2 and 3, the accumulators in 4..7 (2 x 2 blocks).
template <int NB>
__attribute__((target("amx-tile,amx-bf16"))) void context_pair_group(const std::uint16_t* P, std::int64_t Tk,
                                                                     const std::uint16_t* vp, float* O,
                                                                     std::int64_t os) {
    const std::int64_t nkv = Tk / kDepth, next = nkv * kTileElems;
    const long ps = static_cast<long>(Tk) * 2, ob = static_cast<long>(os) * 4;
    compiler_barrier();
    _tile_zero(4);
    _tile_zero(6);
    if constexpr (NB > 1) {
        _tile_zero(5);
        _tile_zero(7);
    }
    for (std::int64_t kc = 0; kc < nkv; ++kc) {
        const std::uint16_t* b = vp + kc * kTileElems;
        _tile_loadd(0, P + kc * kDepth, ps);
        _tile_loadd(1, P + kRows * Tk + kc * kDepth, ps);
        _tile_loadd(2, b, 64);
        if constexpr (NB > 1) _tile_loadd(3, b + next, 64);
        _tile_dpbf16ps(4, 0, 2);
        _tile_dpbf16ps(6, 1, 2);
        if constexpr (NB > 1) {
            _tile_dpbf16ps(5, 0, 3);
            _tile_dpbf16ps(7, 1, 3);
        }
    }
    _tile_stored(4, O, ob);
    _tile_stored(6, O + kRows * os, ob);
    if constexpr (NB > 1) {
        _tile_stored(5, O + kRows, ob);
        _tile_stored(7, O + kRows * os + kRows, ob);
    }
}

}  // namespace

__attribute__((target("amx-tile"))) void tiles_configure() {
    TileConfig cfg;
    for (int i = 0; i < 8; ++i) {
        cfg.colsb[i] = 64;
        cfg.rows[i] = kRows;
    }
    compiler_barrier();
    _tile_loadconfig(&cfg);
}

__attribute__((target("amx-tile"))) void tiles_release() { _tile_release(); }

void scores(std::int64_t nkc, const std::uint16_t* q, std::int64_t ldq, const std::uint16_t* kp, std::int64_t Tk,
            float* S) {
    switch (nkc) {
        case 1: return scores_block<1>(q, ldq, kp, Tk, S);
        case 2: return scores_block<2>(q, ldq, kp, Tk, S);
        case 3: return scores_block<3>(q, ldq, kp, Tk, S);
        default: return scores_block<4>(q, ldq, kp, Tk, S);
    }
}

void scores_pair(std::int64_t nkc, const std::uint16_t* q0, std::int64_t ld0, const std::uint16_t* q1, std::int64_t ld1,
                 const std::uint16_t* kp, std::int64_t Tk, float* S) {
    if (nkc == 1) scores_pair_block<1>(q0, ld0, q1, ld1, kp, Tk, S);
    else scores_pair_block<2>(q0, ld0, q1, ld1, kp, Tk, S);
}

// O [16, dn] = P · V over all of V's column blocks, four at a time.
void context(const std::uint16_t* P, std::int64_t Tk, const std::uint16_t* vp, std::int64_t dn, float* O) {
    const std::int64_t nb = dn / kRows, next = Tk / kDepth * kTileElems;
    for (std::int64_t g = 0; g < nb; g += 4) {
        const std::uint16_t* v = vp + g * next;
        float* o = O + g * kRows;
        switch (std::min<std::int64_t>(4, nb - g)) {
            case 1: context_group<1>(P, Tk, v, o, dn); break;
            case 2: context_group<2>(P, Tk, v, o, dn); break;
            case 3: context_group<3>(P, Tk, v, o, dn); break;
            default: context_group<4>(P, Tk, v, o, dn); break;
        }
    }
}

// O [32, dn] = P [32, Tk] · V over all of V's column blocks, two at a time.
void context_pair(const std::uint16_t* P, std::int64_t Tk, const std::uint16_t* vp, std::int64_t dn, float* O) {
    const std::int64_t nb = dn / kRows, next = Tk / kDepth * kTileElems;
    for (std::int64_t g = 0; g < nb; g += 2) {
        if (nb - g >= 2) context_pair_group<2>(P, Tk, vp + g * next, O + g * kRows, dn);
        else context_pair_group<1>(P, Tk, vp + g * next, O + g * kRows, dn);
    }
}

}  // namespace vit::amx_tiles
