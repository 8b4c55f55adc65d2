// Model configuration: the JSON schema of config.json (model, preprocess, labels, weights) as structs.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace vit {

enum class GlobalPool { Token, Avg };
enum class Interpolation { Nearest, Bilinear, Bicubic };

// The "model" section: the architecture of a timm-style VisionTransformer.
struct ModelConfig {
    int image_size = 224;
    int patch_size = 16;
    int in_chans = 3;
    int embed_dim = 768;
    int depth = 12;
    int num_heads = 12;
    int mlp_dim = 3072;
    bool qkv_bias = true;
    double layer_norm_eps = 1e-6;
    int num_classes = 1000;
    bool class_token = true;
    GlobalPool global_pool = GlobalPool::Token;
    bool fc_norm = false;

    int grid() const { return image_size / patch_size; }              // patches per side
    int num_patches() const { return grid() * grid(); }
    int num_tokens() const { return num_patches() + (class_token ? 1 : 0); }
    int head_dim() const { return embed_dim / num_heads; }
    bool uses_fc_norm() const { return global_pool == GlobalPool::Avg && fc_norm; }
    // Throws ModelError naming the key ("model.embed_dim 200 is not divisible by model.num_heads 3").
    void validate() const;
};

// The "preprocess" section: how an image becomes model input (timm's eval transform).
struct PreprocessConfig {
    int resize = 256;                 // shorter side is resized to this
    int crop = 224;                   // then centre-cropped to crop x crop
    Interpolation interpolation = Interpolation::Bicubic;
    bool antialias = true;            // PIL-style antialiased resampling when downscaling
    std::vector<float> mean = {0.485f, 0.456f, 0.406f};   // one per input channel, on [0,1] pixels
    std::vector<float> std = {0.229f, 0.224f, 0.225f};
    void validate(int in_chans, int image_size) const;
};

// A whole model description: config.json plus the paths it names, resolved.
struct ModelSpec {
    ModelConfig model;
    PreprocessConfig preprocess;
    std::vector<std::string> labels;                 // num_classes entries
    std::filesystem::path config_path;               // where the config was read from (may be empty)
    std::filesystem::path weights_path;              // resolved relative to the config's directory
};

void from_json(const nlohmann::json& j, ModelConfig& c);
void from_json(const nlohmann::json& j, PreprocessConfig& c);
void to_json(nlohmann::json& j, const ModelConfig& c);
void to_json(nlohmann::json& j, const PreprocessConfig& c);

std::string to_string(Interpolation i);
std::string to_string(GlobalPool p);

// Reads and validates a config file; `weights_override` replaces the config's "weights" path when set.
// Errors are ModelError naming the file and JSON key.
ModelSpec load_model_spec(const std::filesystem::path& config_file,
                          const std::filesystem::path& weights_override = {});
// A model directory: DIR/config.json.
ModelSpec load_model_dir(const std::filesystem::path& dir);

}  // namespace vit
