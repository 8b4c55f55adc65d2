// Where a ViT looked: attention rollout (Abnar & Zuidema 2020) and last-layer class-token attention (DINO,
// Caron et al. 2021) as one map per image over the patch grid.
//
// Dimension legend: B batch, H heads, T tokens = Nx prefix tokens + Np patches (class token first),
// G x G patch grid (Np = G*G), L blocks.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "config.hpp"

namespace vit {

enum class ExplainMethod { Rollout, Attention };
enum class HeadFusion { Mean, Max, Min };

struct ExplainOptions {
    ExplainMethod method = ExplainMethod::Rollout;
    HeadFusion fusion = HeadFusion::Mean;
    double discard_ratio = 0;  // rollout: the fraction of each fused layer's smallest entries zeroed, in [0, 1)
    int head = -1;             // attention: this head alone instead of fusing the heads; -1 = fuse
};

// "rollout" | "attention", "mean" | "max" | "min"; std::invalid_argument naming the accepted values otherwise.
ExplainMethod parse_explain_method(const std::string& s);
HeadFusion parse_head_fusion(const std::string& s);
std::string to_string(ExplainMethod m);
std::string to_string(HeadFusion f);

// Throws ModelError when `opt` cannot explain `cfg`'s predictions: both methods follow the class token, so a
// model without one (global average pooling) is refused; a head index past the model's heads; a discard ratio
// outside [0, 1).
void check_explainable(const ModelConfig& cfg, const ExplainOptions& opt);

// One image's rollout map. layers[l] is block l's attention [H, T, T] (rows: queries, each summing to 1).
// Per layer: fuse the heads (mean/max/min) into A [T, T]; zero the floor(T*T*discard) smallest entries (ties by
// position; the class token's own entry A[0][0] is never zeroed); A' = (A + I) / 2 with each row divided by its
// sum. R = A'_L ... A'_1; the map is R's class-token row over the Np patch tokens (prefix tokens dropped),
// divided by its maximum. Computed in double as a row vector times the layers from the last down: O(L*T*T).
std::vector<float> rollout_map(const std::vector<const float*>& layers, int H, int T, int prefix, HeadFusion fusion,
                               double discard_ratio);

// One image's last-layer attention map: the class token's row [H, T, T][h][0][prefix:] fused over the heads
// (or head `head` alone when >= 0), divided by its maximum. `last` is the last block's attention [H, T, T].
std::vector<float> class_attention_map(const float* last, int H, int T, int prefix, HeadFusion fusion, int head);

// Turns the attention a model reports through VitModel::set_attention_sink into one map per image: pass
// `on_attention` as the sink; after each forward pass the batch's maps are queued in batch-row order.
// Rollout keeps each block's fused [T, T] per image (L*B*T*T floats) until the last block; attention keeps none.
class AttentionRecorder {
public:
    AttentionRecorder(const ModelConfig& cfg, const ExplainOptions& opt);  // check_explainable
    void on_attention(int block, const float* probs, std::int64_t B, std::int64_t H, std::int64_t T);
    // The oldest queued map (Np floats, grid row-major); throws std::logic_error when none is queued.
    std::vector<float> pop();
    std::size_t queued() const { return maps_.size(); }
    int grid() const { return grid_; }

private:
    ModelConfig cfg_;
    ExplainOptions opt_;
    int grid_;
    std::vector<std::vector<double>> fused_;  // rollout: [block] -> [B, T, T], A' of each image
    std::deque<std::vector<float>> maps_;
};

}  // namespace vit
