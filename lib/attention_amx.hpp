// Multi-head attention on AMX tiles (Sapphire Rapids and later) for AttentionBf16 (ops_bf16.hpp).
//
// softmax(Q·Kᵀ·scale)·V runs per (image, head) in items of 32 query rows (two 16-row tile blocks sharing each K and V
// tile): an item's scores go from the tile product with Kᵀ through the exponentials to the tile product with V in
// the core's L1 (L2 for long sequences: any length runs here, no T x T matrix is kept), all heads in one parallel
// region, each thread packing K and V of the heads it works on. oneDNN's batched matmuls (the path of CPUs without
// AMX) need an f32 score matrix per layer in memory, a separate softmax pass over it and a thread hand-off per step:
// on ViT-B/16 (197 tokens) that was ~0.6 ms of attention per layer against the 0.3 ms of its two matmuls'
// arithmetic; now 0.14 ms (build/tests/bench_attention).
//
// Dimension letters as in ops.hpp: B batch, T tokens, H heads, d head dim, D = H*d. bf16 as std::uint16_t.
#pragma once

#include <cstdint>

namespace vit {

// Head dims up to this run on AMX (four 32-deep tiles of Q per block); larger ones take oneDNN's path.
inline constexpr std::int64_t kAmxMaxHeadDim = 128;

// True when the CPU has AMX-BF16 and AVX512-BF16, oneDNN may use AMX (ONEDNN_MAX_CPU_ISA unset or allowing it,
// so that one machine can time the other paths) and Linux granted this process the tile data state.
bool amx_attention_available();

// qkv [B, T, 3, H, d] bf16 -> ctx [B, T, H, d] bf16 = softmax(Q·Kᵀ·scale)·V per (image, head), with f32 scores,
// exponentials and accumulation; the unnormalised exponentials are rounded to bf16 for the product with V and the
// row sums divide its result. `probs`: null, or B*H*T*T floats that receive the f32 probabilities [B, H, T, T] (for
// the attention sink). Requires amx_attention_available(), d <= kAmxMaxHeadDim and scale > 0. `queries` as in
// attention_fused (attention_fused.hpp): only the first `queries` tokens of each image attend (the last block).
void attention_amx(const std::uint16_t* qkv, std::int64_t B, std::int64_t T, std::int64_t H, std::int64_t d,
                   float scale, float* probs, std::uint16_t* ctx, std::int64_t queries = -1);

}  // namespace vit
