// `vit info`: what was detected in a model directory (format, family, tokens, pooling, preprocessing, and where
// each setting came from), its size and cost.
#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "common.hpp"

namespace vit::app {

namespace {

struct InfoOptions {
    ModelOptions model;
    std::string format = "text";
};

std::string join(const std::vector<float>& v) {
    std::ostringstream os;
    for (std::size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
    return os.str();
}

// "1 class + 1 distillation + 4 registers + 196 patches = 202"
std::string token_summary(const ModelConfig& c) {
    std::ostringstream os;
    if (c.class_token) os << "1 class + ";
    if (c.dist_token) os << "1 distillation + ";
    if (c.reg_tokens) os << c.reg_tokens << " register" << (c.reg_tokens > 1 ? "s" : "") << " + ";
    os << c.num_patches() << " patches (" << c.grid() << "x" << c.grid() << ") = " << c.num_tokens();
    return os.str();
}

std::string pooling_summary(const ModelConfig& c) {
    switch (c.global_pool) {
        case GlobalPool::Token: return "class token";
        case GlobalPool::TokenDist: return "mean of the class head and the distillation head";
        case GlobalPool::TokenAvg: return "[class token, mean of the patch tokens] (2 x embed)";
        case GlobalPool::Avg: return std::string("mean of the patch tokens") + (c.fc_norm ? " + fc_norm" : "");
    }
    return "?";
}

std::string preprocess_summary(const PreprocessConfig& p) {
    std::ostringstream os;
    os << (p.resize_mode == ResizeMode::Exact ? "resize to " + std::to_string(p.resize) + "x" + std::to_string(p.resize)
                                              : "resize shorter side to " + std::to_string(p.resize))
       << " (" << to_string(p.interpolation) << (p.antialias ? ", antialias" : "") << "), centre crop " << p.crop
       << (p.crop_rounding == CropRounding::Floor ? " at (h - crop) // 2" : " at round((h - crop) / 2)") << ", rescale "
       << (p.rescale_factor > 0 ? "x " + std::to_string(p.rescale_factor) : std::string("/ 255")) << ", mean ["
       << join(p.mean) << "], std [" << join(p.std) << "]";
    return os.str();
}

int run_info(const InfoOptions& o) {
    auto model = load_model(o.model);
    const ModelSpec& s = model->spec();
    const ModelConfig& c = s.model;
    const PreprocessConfig& p = s.preprocess;
    nlohmann::json origins = nlohmann::json::object();
    for (const auto& [what, from] : s.origins) origins[what] = from;
    if (o.format == "json") {
        nlohmann::json j;
        j["config"] = s.config_path.string();
        j["weights"] = s.weights_path.string();
        if (!s.weight_shards.empty()) {
            j["weight_shards"] = nlohmann::json::array();
            for (const auto& f : s.weight_shards) j["weight_shards"].push_back(f.string());
        }
        if (!s.head_path.empty()) j["head"] = s.head_path.string();
        j["format"] = s.format;
        j["family"] = s.family;
        j["model"] = c;
        j["preprocess"] = p;
        j["origins"] = origins;
        j["parameters"] = model->parameter_count();
        j["gflops_per_image"] = model->gflops_per_image();
        j["tokens"] = c.num_tokens();
        j["num_labels"] = s.labels.size();
        std::cout << j.dump(2) << "\n";
        return kOk;
    }
    std::cout << "config        " << s.config_path.string() << "\n"
              << "weights       " << s.weights_path.string();
    if (!s.weight_shards.empty()) std::cout << " (" << s.weight_shards.size() << " shards)";
    std::cout << "\n";
    if (!s.head_path.empty()) std::cout << "head          " << s.head_path.string() << "\n";
    std::cout << "format        " << s.format << (s.family.empty() ? "" : ", family " + s.family) << ", tensor layout "
              << to_string(c.layout) << "\n"
              << "architecture  ViT, patch " << c.patch_size << ", image " << c.image_size << ", " << c.in_chans
              << " channel" << (c.in_chans > 1 ? "s" : "") << "\n"
              << "              embed " << c.embed_dim << ", depth " << c.depth << ", heads " << c.num_heads
              << " (head dim " << c.head_dim() << "), mlp " << c.mlp_dim << " (" << to_string(c.act) << ")\n"
              << "              qkv bias " << (c.qkv_bias ? "yes" : "no") << ", LayerNorm eps " << c.layer_norm_eps
              << (c.layer_scale ? ", layer scale" : "") << (c.norm_pre ? ", pre-norm" : "") << "\n"
              << "tokens        " << token_summary(c) << "\n"
              << "position      " << (c.stored_grid() == c.grid() ? "stored " : "resampled from ") << c.stored_grid()
              << "x" << c.stored_grid() << " (" << to_string(c.pos_resample)
              << "), prefix tokens with one: " << to_string(c.pos_embed_prefix) << "\n"
              << "pooling       " << pooling_summary(c) << "\n"
              << "parameters    " << model->parameter_count() << "\n"
              << "GFLOPs/image  " << std::fixed << std::setprecision(3) << model->gflops_per_image() << "\n"
              << "preprocess    " << preprocess_summary(p) << "\n"
              << "labels        " << s.labels.size() << " (" << (s.labels.empty() ? "" : s.labels.front())
              << (s.labels.size() > 1 ? ", ..., " + s.labels.back() : "") << ")\n";
    for (const auto& [what, from] : s.origins) std::cout << "from          " << what << ": " << from << "\n";
    return kOk;
}

}  // namespace

void setup_info(CLI::App& app, std::function<int()>& run) {
    auto opt = std::make_shared<InfoOptions>();
    auto* sub = app.add_subcommand("info",
                                   "Show what a model directory holds: format, family, architecture, tokens, "
                                   "pooling, preprocessing and where each setting came from");
    opt->model.add_to(*sub, false);
    sub->add_option("-f,--format", opt->format, "Output format")
        ->check(CLI::IsMember({"text", "json"}))
        ->capture_default_str();
    sub->callback([opt, &run] { run = [opt] { return run_info(*opt); }; });
}

}  // namespace vit::app
