// Model selection and runtime settings shared by the subcommands.
#include "common.hpp"

#include <unistd.h>

#include <iostream>
#include <thread>

#include "errors.hpp"

#ifndef VIT_SOURCE_MODELS_DIR
#define VIT_SOURCE_MODELS_DIR ""
#endif

namespace vit::app {

namespace fs = std::filesystem;

void ModelOptions::add_to(CLI::App& app, bool with_precision) {
    const std::string model_help = "Model directory (DIR/config.json); default: the built-in ";
    auto* m = app.add_option("-m,--model", model_dir, model_help + kDefaultModelName);
    auto* c = app.add_option("-c,--config", config, "Model config JSON (long form of --model)");
    app.add_option("-w,--weights", weights, "Weights file (.safetensors), overrides the config's \"weights\"");
    m->excludes(c);
    if (with_precision)
        app.add_option("-p,--precision", precision, "Numeric precision of the linear layers")
            ->check(CLI::IsMember({"fp32", "bf16", "int8"}))
            ->capture_default_str();
    app.add_option("-t,--threads", threads, "Inference threads (0 = all cores)")->check(CLI::NonNegativeNumber);
    app.add_option("--image-size", image_size,
                   "Run the model at this input resolution (position embeddings resampled as the source library does)")
        ->check(CLI::Range(1, 8192));
}

fs::path builtin_models_dir() {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        // Installed (PREFIX/bin/vit -> PREFIX/share/vit/models), then the build tree of a checkout (build/vit).
        for (const fs::path& cand : {exe.parent_path() / "../share/vit/models", exe.parent_path() / "../models"})
            if (fs::exists(cand / kDefaultModelName / "config.json", ec)) return fs::weakly_canonical(cand, ec);
    }
    return VIT_SOURCE_MODELS_DIR;
}

fs::path default_model_dir() {
    if (const char* env = std::getenv("VIT_DEFAULT_MODEL"); env && *env) return env;
    return builtin_models_dir() / kDefaultModelName;
}

ModelSpec ModelOptions::resolve() const {
    if (!config.empty()) return load_model_spec(config, weights);
    const fs::path dir = model_dir.empty() ? default_model_dir() : fs::path(model_dir);
    if (weights.empty()) return load_model_dir(dir);
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw ModelError(dir.string() + ": not a model directory (expected DIR/config.json)");
    return load_model_spec(dir / "config.json", weights);
}

int apply_threads(int threads) {
    const int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    set_num_threads(n);
    return n;
}

std::unique_ptr<VitModel> load_model(const ModelOptions& opt) {
    apply_threads(opt.threads);
    ModelSpec spec = opt.resolve();
    if (opt.image_size > 0 && opt.image_size != spec.model.image_size) set_image_size(spec, opt.image_size);
    std::vector<std::string> warnings;
    auto model = std::make_unique<VitModel>(spec, parse_precision(opt.precision), &warnings);
    for (const auto& w : warnings) warn(w);
    return model;
}

void warn(const std::string& msg) { std::cerr << "vit: warning: " << msg << "\n"; }

}  // namespace vit::app
