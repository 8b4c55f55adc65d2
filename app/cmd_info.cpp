// `vit info`: architecture, size, cost and preprocessing of a model.
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "common.hpp"

namespace vit::app {

namespace {

struct InfoOptions {
    ModelOptions model;
    std::string format = "text";
};

int run_info(const InfoOptions& o) {
    auto model = load_model(o.model);
    const ModelSpec& s = model->spec();
    const ModelConfig& c = s.model;
    const PreprocessConfig& p = s.preprocess;
    if (o.format == "json") {
        nlohmann::json j;
        j["config"] = s.config_path.string();
        j["weights"] = s.weights_path.string();
        j["model"] = c;
        j["preprocess"] = p;
        j["parameters"] = model->parameter_count();
        j["gflops_per_image"] = model->gflops_per_image();
        j["tokens"] = c.num_tokens();
        j["num_labels"] = s.labels.size();
        std::cout << j.dump(2) << "\n";
        return kOk;
    }
    auto join = [](const std::vector<float>& v) {
        std::ostringstream os;
        for (std::size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
        return os.str();
    };
    std::cout << "config        " << s.config_path.string() << "\n"
              << "weights       " << s.weights_path.string() << "\n"
              << "architecture  ViT, patch " << c.patch_size << ", image " << c.image_size << ", " << c.in_chans
              << " channel" << (c.in_chans > 1 ? "s" : "") << "\n"
              << "              embed " << c.embed_dim << ", depth " << c.depth << ", heads " << c.num_heads
              << " (head dim " << c.head_dim() << "), mlp " << c.mlp_dim << "\n"
              << "              tokens " << c.num_tokens() << (c.class_token ? " (with class token)" : "")
              << ", pooling " << to_string(c.global_pool) << (c.uses_fc_norm() ? " + fc_norm" : "")
              << ", qkv bias " << (c.qkv_bias ? "yes" : "no") << ", LayerNorm eps " << c.layer_norm_eps << "\n"
              << "parameters    " << model->parameter_count() << "\n"
              << "GFLOPs/image  " << std::fixed << std::setprecision(3) << model->gflops_per_image() << "\n"
              << "preprocess    resize " << p.resize << " (" << to_string(p.interpolation)
              << (p.antialias ? ", antialias" : "") << "), crop " << p.crop << ", mean [" << join(p.mean)
              << "], std [" << join(p.std) << "]\n"
              << "labels        " << s.labels.size() << " (" << (s.labels.empty() ? "" : s.labels.front())
              << (s.labels.size() > 1 ? ", ..., " + s.labels.back() : "") << ")\n";
    return kOk;
}

}  // namespace

void setup_info(CLI::App& app, std::function<int()>& run) {
    auto opt = std::make_shared<InfoOptions>();
    auto* sub = app.add_subcommand("info", "Show a model's architecture, parameter count, GFLOPs and preprocessing");
    opt->model.add_to(*sub, false);
    sub->add_option("-f,--format", opt->format, "Output format")->check(CLI::IsMember({"text", "json"}))->capture_default_str();
    sub->callback([opt, &run] { run = [opt] { return run_info(*opt); }; });
}

}  // namespace vit::app
