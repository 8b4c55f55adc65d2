// The model's internals, shared by model.cpp (the forward pass, one function per stage) and model_load.cpp (the
// ops built from the weights): the per-block ops and VitModel::Impl with its scratch tensors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attention_amx.hpp"
#include "model.hpp"
#include "ops.hpp"
#include "ops_bf16.hpp"

namespace vit {

struct BlockWeights {
    LayerNorm norm1;  // D
    Linear qkv;       // D -> 3D, per token [3, H, d]
    Attention attn;   // H heads of d
    Linear proj;      // D -> D, layer scale folded in, residual fused
    LayerNorm norm2;  // D
    Linear fc1;       // D -> F with the activation fused; SwiGLU: D -> 2F, gated separately
    Linear fc2;       // F -> D, layer scale folded in, residual fused
    // BF16: the same heads on bf16 q, k, v
    AttentionBf16 attn_bf16;
};

struct VitModel::Impl {
    ModelSpec spec;
    Precision precision;

    Linear patch_proj;          // C*P*P -> D
    std::vector<float> prefix;  // [Nx, D] class, distillation, register tokens
    std::vector<float> pos;     // [T, D] at the run resolution; zero rows for tokens without one
    bool has_norm_pre = false;
    LayerNorm norm_pre;  // D
    std::vector<BlockWeights> blocks;
    LayerNorm norm;    // final norm (fc_norm after avg pooling)
    Linear head;       // E -> K
    Linear head_dist;  // D -> K (distilled DeiT)
    AttentionSink sink;

    std::int64_t scratch_batch = 0;
    std::vector<float> patches;      // [B*Np, C*P*P]
    std::vector<float> x;            // [B, T, D] residual stream
    std::vector<float> h;            // [B, T, D] normed / attention context
    std::vector<float> qkv;          // [B, T, 3D]
    std::vector<float> probs;        // [B, H, T, T] attention probabilities, only for the sink
    std::vector<float> mlp;          // [B, T, F] (SwiGLU: [B, T, 2F])
    QuantizedRows mlp_q;             // INT8: [B, T, F] as fc2's quantised input
    std::vector<float> gate;         // [B, T, F] SwiGLU output
    std::vector<float> px, ph;       // [B*n, D] the head's n tokens after the last attention
    std::vector<float> feat, feat2;  // [B, E] pooled features; distillation features
    std::vector<float> logits2;      // [B, K] distillation head
    // BF16 only: the activations that feed bf16 matmuls, as bf16 (the residual stream x stays f32).
    std::vector<std::uint16_t> hb;    // [B, T, D] normed / attention context
    std::vector<std::uint16_t> qkvb;  // [B, T, 3D]
    std::vector<std::uint16_t> mlpb;  // [B, T, F]
    std::vector<std::uint16_t> phb;   // [B*n, D]

    Impl(const ModelSpec& s, Precision p) : spec(s), precision(p) {}
    const ModelConfig& c() const { return spec.model; }

    void load(std::vector<std::string>* warnings);
    void ensure_scratch(std::int64_t B);
    int head_rows(FeaturePool pool) const;

    // Stages.
    void patch_embed(const float* images, std::int64_t B);  // images -> patches [B*Np, C*P*P] -> h [B*Np, D]
    void add_prefix_and_pos(std::int64_t B);                // x [B, T, D] = [prefix; patches] + pos
    // x += attn(norm1(x)); x += mlp(norm2(x)). With n > 0, the MLP half runs on the first n tokens of each image
    // alone, packed into px [B*n, D]: everything after attention is per token and the head reads only those.
    void block(int index, std::int64_t B, int n);
    void block_bf16(int index, std::int64_t B, int n);  // the same with bf16 activations between the matmuls
    // Attention on AMX tiles (attention_amx.hpp): any number of tokens, no T x T matrix in memory.
    bool amx_attention() const { return c().head_dim() <= kAmxMaxHeadDim && amx_attention_available(); }
    // BF16 runs attention in bf16 on AMX at any length; without AMX up to kAttentionWholeTokens tokens (oneDNN's
    // batched bf16 matmuls keep every head's T x T scores), longer sequences in the f32 Attention. DINOv2's 1370
    // tokens (ViT-S/14 at 518): 135 ms of attention per pass in f32, 29 on AMX.
    bool bf16_attention() const {
        return precision == Precision::BF16 && (c().num_tokens() <= kAttentionWholeTokens || amx_attention());
    }
    // INT8 on CPUs with AMX runs attention in bf16 on AMX tiles as well (the int8 linears around it round far more
    // than bf16 does; ~2.5x faster than the f32 kernels): q, k, v rounded to bf16, the context back to f32.
    bool int8_attention_amx() const { return precision == Precision::INT8 && amx_attention(); }
    // The query rows a block's attention needs: the first n tokens' in the last block (n > 0), whose output only
    // they carry on; all (-1) elsewhere and whenever the sink wants the probabilities.
    std::int64_t attention_queries(int n) const { return n > 0 && !sink ? n : -1; }
    void encode(const float* images, std::int64_t B, int n);         // all of the above
    void pool(std::int64_t B, int n, FeaturePool pool, float* out);  // final norm + pooling -> [B, E or D]
};

}  // namespace vit
