// The ViT encoder: patch_embed -> add_prefix_and_pos -> norm_pre -> N x block(attn, mlp) -> norm -> pool -> head.
//
// Dimension legend: B batch, C input channels, S image side, P patch side, G = S/P patches per side,
// Np = G*G patches, Nx prefix tokens (class, distillation, registers), T = Nx + Np tokens, D embed dim,
// H heads, d = D/H head dim, F mlp dim, E head input features (D, or 2D for DINOv2's classifier), K classes.
//
// oneDNN stays behind the pimpl: this header is all app/ sees of the engine.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config.hpp"
#include "runtime.hpp"

namespace vit {

// What `forward_features` returns per image.
//   Head: exactly what the head reads (class token, avg + fc_norm, DINOv2's [class, patch mean]; a distilled
//         DeiT's class token), E floats.
//   Cls:  the final-normed class token, D floats (needs a class token).
//   Mean: the mean of the patch tokens (prefix tokens excluded) after the final norm (or fc_norm), D floats.
enum class FeaturePool { Head, Cls, Mean };

class VitModel {
public:
    // Loads and checks the weights named by the spec; the safetensors mapping is dropped after load.
    // `warnings` receives non-fatal findings (NaN/Inf weights).
    VitModel(const ModelSpec& spec, Precision precision = Precision::F32, std::vector<std::string>* warnings = nullptr);
    ~VitModel();
    VitModel(const VitModel&) = delete;
    VitModel& operator=(const VitModel&) = delete;

    // images [B, C, S, S] (preprocessed) -> logits [B, K].
    void forward(const float* images, std::int64_t B, float* logits);
    // images [B, C, S, S] -> features [B, feature_dim(pool)]. Throws ModelError when the model lacks what `pool`
    // needs (Cls without a class token).
    void forward_features(const float* images, std::int64_t B, float* features, FeaturePool pool = FeaturePool::Head);
    int feature_dim(FeaturePool pool = FeaturePool::Head) const;

    // Called after each block's attention softmax with that block's probabilities [B, H, T, T] (rows: queries),
    // while a sink is set (vit explain); costs nothing otherwise.
    using AttentionSink =
        std::function<void(int block, const float* probs, std::int64_t B, std::int64_t H, std::int64_t T)>;
    void set_attention_sink(AttentionSink sink);

    const ModelSpec& spec() const;
    const ModelConfig& config() const { return spec().model; }
    Precision precision() const;
    std::int64_t input_size() const;  // C*S*S floats per image
    std::int64_t parameter_count() const;
    double gflops_per_image() const;   // multiply-adds x2 of every matmul
    std::size_t weight_bytes() const;  // resident weights after load

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace vit
