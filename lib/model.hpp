// The ViT encoder: patch_embed -> add_cls_and_pos -> N x block(attn, mlp) -> norm -> pool -> head.
//
// Dimension legend: B batch, C input channels, S image side, P patch side, G = S/P patches per side,
// Np = G*G patches, T tokens (Np + class token), D embed dim, H heads, d = D/H head dim, F mlp dim,
// K classes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "config.hpp"
#include "ops.hpp"

namespace vit {

struct BlockWeights {
    LayerNorm norm1;       // D
    Linear qkv;            // D -> 3D
    Attention attn;        // H heads of d
    Linear proj;           // D -> D, residual fused
    LayerNorm norm2;       // D
    Linear fc1;            // D -> F, GELU fused
    Linear fc2;            // F -> D, residual fused
};

class VitModel {
public:
    // Loads and checks the weights named by the spec; the safetensors mapping is dropped after load.
    // `warnings` receives non-fatal findings (NaN/Inf weights).
    VitModel(const ModelSpec& spec, Precision precision = Precision::F32, std::vector<std::string>* warnings = nullptr);

    // images [B, C, S, S] (preprocessed) -> logits [B, K].
    void forward(const float* images, std::int64_t B, float* logits);

    const ModelSpec& spec() const { return spec_; }
    const ModelConfig& config() const { return spec_.model; }
    Precision precision() const { return precision_; }
    std::int64_t input_size() const;                  // C*S*S floats per image
    std::int64_t parameter_count() const;
    double gflops_per_image() const;                  // multiply-adds x2 of every matmul
    std::size_t weight_bytes() const;                 // resident weights after load

private:
    // Stages; each works on the scratch buffers for batch B.
    void patch_embed(const float* images, std::int64_t B);           // images -> patches_ [B*Np, C*P*P] -> x_ tokens
    void add_cls_and_pos(std::int64_t B);                             // x_ [B, T, D]
    // x_ += attn(norm1(x_)); x_ += mlp(norm2(x_)). With class_token_only, the MLP half runs on the class tokens
    // alone and leaves them in pooled_ [B, D].
    void block(const BlockWeights& w, std::int64_t B, bool class_token_only);
    void pool_and_head(std::int64_t B, float* logits);                // norm, pooling, fc_norm, head

    void ensure_scratch(std::int64_t B);

    ModelSpec spec_;
    Precision precision_;

    Linear patch_proj_;                         // C*P*P -> D
    std::vector<float> cls_token_;              // [D]
    std::vector<float> pos_embed_;              // [T, D]
    std::vector<BlockWeights> blocks_;
    LayerNorm norm_;                            // final norm (or fc_norm after avg pooling)
    Linear head_;                               // D -> K

    std::int64_t scratch_batch_ = 0;
    std::vector<float> patches_;                // [B*Np, C*P*P]
    std::vector<float> x_;                      // [B, T, D] residual stream
    std::vector<float> h_;                      // [B, T, D] normed / attention context
    std::vector<float> qkv_;                    // [B, T, 3D]
    std::vector<float> scores_;                 // [B, H, T, T]
    std::vector<float> mlp_;                    // [B, T, F]
    std::vector<float> pooled_;                 // [B, D]
    std::vector<float> pooled_norm_;            // [B, D]
};

}  // namespace vit
