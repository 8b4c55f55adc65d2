// f32 multi-head attention on our own FMA kernels (AVX-512 or AVX2), for Attention's whole-sequence path (ops.hpp).
//
// Per (image, head), blocks of query rows go from Q·Kᵀ through the exponentials to P·V while their scores are in
// L1, all heads in one parallel region (each thread packs Kᵀ and V of the heads it works on). oneDNN's batched matmuls
// on these shapes (197 x 64 x 197 per head) ran at well under half the FMA peak, with an f32 score matrix per layer in
// memory, a softmax pass over it and a thread hand-off per step: ViT-B/16's attention took ~1.1 ms per layer (AVX-512,
// 2 threads) for 0.12 GFLOP.
//
// Dimension letters as in ops.hpp: B batch, T tokens, H heads, d head dim, D = H*d.
#pragma once

#include <cstdint>

#include "exp_rows.hpp"  // SimdLevel

namespace vit {

// qkv [B, T, 3, H, d] -> ctx [B, T, H, d] = softmax(Q·Kᵀ·scale)·V per (image, head), in f32. `probs`: null, or
// B*H*T*T floats that receive the probabilities [B, H, T, T] (for the attention sink). `level`: Avx512 or Avx2
// (the CPU must have it); scale > 0. `queries` (1..T, or -1 for T): only the first `queries` tokens of each image
// attend (their ctx rows are written, the others left as they are; keys and values are still all T tokens): the
// last block, whose output only the class and other prefix tokens carry on. Needs probs null when below T.
void attention_fused(const float* qkv, std::int64_t B, std::int64_t T, std::int64_t H, std::int64_t d, float scale,
                     float* probs, float* ctx, SimdLevel level, std::int64_t queries = -1);

}  // namespace vit
