// The bf16 end-to-end ops of Precision::BF16: activations that feed a bf16 matmul are written in bf16 by the op
// before it (LayerNorm, fc1, the attention context), so no f32 -> bf16 reorder runs between ops; the residual stream,
// the attention scores and softmax's arithmetic stay f32.
//
// Dimension letters as in ops.hpp: B batch, T tokens, H heads, d head dim, D = H*d. bf16 values are stored as
// std::uint16_t (the upper half of the f32 bit pattern, rounded to nearest even).
#pragma once

#include <cstdint>
#include <map>
#include <utility>

#include "ops.hpp"

namespace vit {

// f32 -> bf16 with round-to-nearest-even (NaN stays NaN), n values; AVX-512 when the CPU has it.
void to_bf16(const float* x, std::int64_t n, std::uint16_t* y);
// Softmax over each row of s [rows, cols] (f32) written as bf16 into p [rows, cols]; s holds the f32
// probabilities afterwards with keep_f32, else scratch. exp_rows and one scaling pass that writes bf16: oneDNN's
// softmax took 2x the time of the Q·Kᵀ matmul before it on ViT-B's 197-token rows.
void softmax_rows_bf16(float* s, std::int64_t rows, std::int64_t cols, std::uint16_t* p, bool keep_f32);
// bf16 -> f32 (exact), n values.
void from_bf16(const std::uint16_t* x, std::int64_t n, float* y);

// Multi-head attention on bf16 packed projections. On CPUs with AMX it runs attention_amx (attention_amx.hpp), at
// any length; elsewhere oneDNN's batched matmuls as follows, the bf16 twin of Attention's whole-sequence path (the
// model runs sequences over kAttentionWholeTokens tokens through the f32 Attention there).
// qkv [B, T, 3, H, d] bf16 -> ctx [B, T, H, d] bf16 = softmax(Q·Kᵀ·scale)·V per (batch, head).
// Q·Kᵀ runs bf16 x bf16 -> f32 scores, softmax (softmax_rows_bf16) reads f32 and writes bf16 probabilities, P·V
// runs bf16 x bf16 with f32 accumulation. `probs`: null, or B*H*T*T floats that receive the f32 attention
// probabilities [B, H, T, T] (for the attention sink).
class AttentionBf16 {
public:
    AttentionBf16() = default;
    AttentionBf16(int num_heads, int head_dim, float scale) : H_(num_heads), d_(head_dim), scale_(scale) {}
    // `queries`: as in Attention::forward (a hint: the AMX kernel computes only those rows, the others all).
    void forward(const std::uint16_t* qkv, std::int64_t B, std::int64_t T, float* probs, std::uint16_t* ctx,
                 std::int64_t queries = -1) const;
    void prepare(std::int64_t B, std::int64_t T) const;

private:
    struct Prims {
        dnnl::matmul qk, pv;  // softmax: softmax_rows_bf16
    };
    const Prims& prims(std::int64_t B, std::int64_t T) const;
    bool on_amx() const;

    int H_ = 0, d_ = 0;
    float scale_ = 1;
    mutable std::map<std::pair<std::int64_t, std::int64_t>, Prims> prims_;
};

}  // namespace vit
