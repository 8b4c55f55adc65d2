// The AMX tile kernels of attention_amx.cpp (internal): the products of one or two blocks of 16 query rows with a
// head's keys (scores) and of their exponentials with its values (context), on K and V packed as B tiles.
//
// Palette 1, all eight tiles 16 rows x 64 bytes: an A tile is 16 rows x 32 bf16; a B tile 16 pairs of rows x 16
// columns, the two values of a pair side by side (VNNI layout); a C tile 16 x 16 f32. A head's packed tiles:
// - Kᵀ: tile (key block jb of 16, depth chunk kc of 32) at jb * nkc + kc holds at [k2][j][e] K[16 jb + j][32 kc +
//   2 k2 + e] (nkc = the head dim rounded up to 32, over 32);
// - V: tile (column block nb of 16, key chunk kc of 32) at nb * Tk/32 + kc holds at [k2][n][e] V[32 kc + 2 k2 + e]
//   [16 nb + n]; Tk = the keys rounded up to 32. Padding is zero; tiles are 1 KB and 64-byte aligned.
// All of them run between tiles_configure() and tiles_release() on the calling thread. bf16 as std::uint16_t.
#pragma once

#include <cstdint>

namespace vit::amx_tiles {

inline constexpr std::int64_t kRows = 16, kDepth = 32, kTileElems = kRows * kDepth;  // 512 bf16: one A or B tile

// Loads the all-16x64-byte configuration; releases the tile state.
void tiles_configure();
void tiles_release();

// S [16, Tk] f32 (row stride Tk) = Q [16, 32 nkc] · Kᵀ for one block of queries q (row stride ldq, zero-padded to
// 32 nkc columns), nkc in 1..4.
void scores(std::int64_t nkc, const std::uint16_t* q, std::int64_t ldq, const std::uint16_t* kp, std::int64_t Tk,
            float* S);

// S [32, Tk]: the same for two blocks at once (q0's rows, then q1's), nkc in 1..2; each key tile serves both.
void scores_pair(std::int64_t nkc, const std::uint16_t* q0, std::int64_t ld0, const std::uint16_t* q1, std::int64_t ld1,
                 const std::uint16_t* kp, std::int64_t Tk, float* S);

// O [16, dn] f32 (row stride dn) = P [16, Tk] bf16 · V, dn a multiple of 16.
void context(const std::uint16_t* P, std::int64_t Tk, const std::uint16_t* vp, std::int64_t dn, float* O);

// O [32, dn] = P [32, Tk] · V: two blocks of rows, each V tile serving both.
void context_pair(const std::uint16_t* P, std::int64_t Tk, const std::uint16_t* vp, std::int64_t dn, float* O);

}  // namespace vit::amx_tiles
