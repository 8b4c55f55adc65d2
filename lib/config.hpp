// Model configuration: the JSON schema of config.json (model, preprocess, labels, weights) as structs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace vit {

// How the head reads the encoder's output tokens.
//   Token:     the class token (timm "token", transformers ViT).
//   Avg:       the mean of the patch tokens (prefix tokens excluded), then fc_norm when set (timm "avg").
//   TokenDist: distilled DeiT: (head(class token) + head_dist(distillation token)) / 2.
//   TokenAvg:  DINOv2's classifier: head([class token, mean of the patch tokens]) on 2*D features.
enum class GlobalPool { Token, Avg, TokenDist, TokenAvg };
enum class Interpolation { Nearest, Bilinear, Bicubic };
// The MLP's activation: exact (erf) GELU, tanh-approximated GELU (gelu_new), x*sigmoid(1.702x) (quick_gelu),
// or a SwiGLU MLP (silu(x W1a) * x W1b, then W2).
enum class Activation { Gelu, GeluTanh, QuickGelu, SwiGlu };
// Which prefix tokens carry a position embedding: all of them (timm's default, transformers ViT/DeiT), only the
// class token (transformers DINOv2: registers are inserted after), none (timm's no_embed_class).
enum class PosEmbedPrefix { All, Class, None };
// How stored position embeddings are resampled to another grid: torch bicubic (align_corners=False, as
// transformers' interpolate_pos_encoding) or with antialias=True (timm's resample_abs_pos_embed).
enum class PosResample { Bicubic, BicubicAntialias };
// The checkpoint's tensor-name layout (lib/arch.hpp has one table per layout).
enum class Layout { Timm, HfVit, HfDeit, HfDeitDistilled, HfDinov2, HfDinov2Registers };

std::string to_string(Interpolation i);
std::string to_string(GlobalPool p);
std::string to_string(Activation a);
std::string to_string(PosEmbedPrefix p);
std::string to_string(PosResample r);
std::string to_string(Layout l);

// The "model" section: the architecture. Defaults are timm's VisionTransformer.
//
// Token order in the encoder: [class][distillation][registers x reg_tokens][patches].
struct ModelConfig {
    int image_size = 224;  // the resolution the model runs at
    int patch_size = 16;
    int in_chans = 3;
    int embed_dim = 768;
    int depth = 12;
    int num_heads = 12;
    int mlp_dim = 3072;  // hidden width of the MLP (of each SwiGLU half)
    bool qkv_bias = true;
    bool patch_bias = true;  // the patch embedding's bias (CLIP image towers have none)
    double layer_norm_eps = 1e-6;
    int num_classes = 1000;
    bool class_token = true;
    bool dist_token = false;  // distilled DeiT
    int reg_tokens = 0;       // register tokens
    PosEmbedPrefix pos_embed_prefix = PosEmbedPrefix::All;
    int pos_embed_grid = 0;  // grid the stored position embeddings are for; 0 = grid()
    PosResample pos_resample = PosResample::BicubicAntialias;
    bool norm_pre = false;     // LayerNorm after the embeddings (CLIP)
    bool layer_scale = false;  // per-channel scales on both residual branches (DeiT III, DINOv2)
    Activation act = Activation::Gelu;
    GlobalPool global_pool = GlobalPool::Token;
    bool fc_norm = false;  // with Avg: the final norm moves after pooling
    Layout layout = Layout::Timm;

    int grid() const { return image_size / patch_size; }  // patches per side
    int num_patches() const { return grid() * grid(); }
    int num_prefix_tokens() const { return (class_token ? 1 : 0) + (dist_token ? 1 : 0) + reg_tokens; }
    int num_tokens() const { return num_patches() + num_prefix_tokens(); }
    int stored_grid() const { return pos_embed_grid > 0 ? pos_embed_grid : grid(); }
    int pos_embed_prefix_tokens() const;  // prefix tokens the stored table covers
    int pos_embed_tokens() const { return stored_grid() * stored_grid() + pos_embed_prefix_tokens(); }
    int head_dim() const { return embed_dim / num_heads; }
    int head_in_features() const { return global_pool == GlobalPool::TokenAvg ? 2 * embed_dim : embed_dim; }
    bool uses_fc_norm() const { return global_pool == GlobalPool::Avg && fc_norm; }
    // Throws ModelError naming the key ("model.embed_dim 200 is not divisible by model.num_heads 3").
    void validate() const;
};

// The "preprocess" section: how an image becomes model input (timm's eval transform).
// The "preprocess" section: how an image becomes model input. Defaults are timm's eval transform; the other
// settings express transformers' image processors (exact-size resize, floor crop offsets, rescale factor).
enum class ResizeMode { ShorterSide, Exact };  // shorter side to `resize` (aspect kept) | resize x resize
enum class CropRounding { Round, Floor };      // torchvision: round((h - c) / 2) | transformers: (h - c) // 2

struct PreprocessConfig {
    int resize = 256;
    ResizeMode resize_mode = ResizeMode::ShorterSide;
    int crop = 224;  // then centre-cropped to crop x crop
    CropRounding crop_rounding = CropRounding::Round;
    Interpolation interpolation = Interpolation::Bicubic;
    bool antialias = true;  // PIL-style antialiased resampling when downscaling
    // 0: torchvision's ToTensor (float(v) / 255 in float32); else float32(double(v) * rescale_factor) as
    // transformers' rescale does (1 / 255 usually; 1 when do_rescale is false).
    double rescale_factor = 0;
    std::vector<float> mean = {0.485f, 0.456f, 0.406f};  // one per input channel, on rescaled pixels
    std::vector<float> std = {0.229f, 0.224f, 0.225f};
    void validate(int in_chans, int image_size) const;
};

std::string to_string(ResizeMode m);
std::string to_string(CropRounding r);

// A whole model description: config.json plus the paths it names, resolved.
struct ModelSpec {
    ModelConfig model;
    PreprocessConfig preprocess;
    std::vector<std::string> labels;                   // num_classes entries
    std::filesystem::path config_path;                 // where the config was read from (may be empty)
    std::filesystem::path weights_path;                // resolved relative to the config's directory
    std::vector<std::filesystem::path> weight_shards;  // a sharded checkpoint's files; empty = weights_path alone
    // A head trained by `vit fit` in its own file (head.weight [K, E], head.bias [K]) replacing the model's own.
    std::filesystem::path head_path;
    std::string format = "vit";  // "vit" (this project's config), "transformers", "timm"
    std::string family;          // e.g. "vit", "deit-distilled", "dinov2", as detected
    // Where each setting came from, for `vit info`: {"preprocess.resize", "preprocessor_config.json size"}.
    std::vector<std::pair<std::string, std::string>> origins;
};

void from_json(const nlohmann::json& j, ModelConfig& c);
void from_json(const nlohmann::json& j, PreprocessConfig& c);
void to_json(nlohmann::json& j, const ModelConfig& c);
void to_json(nlohmann::json& j, const PreprocessConfig& c);

// Reads and validates a config file; `weights_override` replaces the config's "weights" path when set.
// Errors are ModelError naming the file and JSON key.
ModelSpec load_model_spec(const std::filesystem::path& config_file, const std::filesystem::path& weights_override = {});
// A model directory: this project's config.json, a transformers directory (config.json with model_type,
// preprocessor_config.json, model.safetensors or a sharded index) or a timm Hub directory (config.json with
// architecture and pretrained_cfg). `image_size` > 0 runs the model at that resolution (position embeddings
// resampled). Errors name the file and what is unsupported.
ModelSpec load_model_dir(const std::filesystem::path& dir, int image_size = 0);

// Runs a spec at another input resolution: image_size, the crop and the resize follow (resize keeps the spec's
// resize/crop ratio), position embeddings are resampled at load. Throws ModelError when the size does not fit
// the patch size.
void set_image_size(ModelSpec& spec, int image_size);

}  // namespace vit
