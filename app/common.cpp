// Model selection and runtime settings shared by the subcommands.
#include "common.hpp"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <thread>

#include "errors.hpp"
#include "hub_cli.hpp"

#ifndef VIT_SOURCE_MODELS_DIR
#define VIT_SOURCE_MODELS_DIR ""
#endif

namespace vit::app {

namespace fs = std::filesystem;

void ModelOptions::add_to(CLI::App& app, bool with_precision) {
    const std::string model_help =
        "Model: a directory (DIR/config.json), a built-in model name (see `vit list`) or a Hugging Face Hub id "
        "ORG/NAME[@REVISION] (downloaded on first use); default: the built-in ";
    auto* m = app.add_option("-m,--model", model_dir, model_help + kDefaultModelName);
    auto* c = app.add_option("-c,--config", config, "Model config JSON (long form of --model)");
    app.add_option("-w,--weights", weights, "Weights file (.safetensors), overrides the config's \"weights\"");
    m->excludes(c);
    if (with_precision)
        app.add_option("-p,--precision", precision, "Numeric precision of the linear layers")
            ->check(CLI::IsMember({"fp32", "bf16", "int8"}))
            ->capture_default_str();
    app.add_option("-t,--threads", threads, "Inference threads (0 = all cores)")->check(CLI::Range(0, 4096));
    app.add_option("--image-size", image_size,
                   "Run the model at this input resolution (position embeddings resampled as the source library does)")
        ->check(CLI::Range(1, 8192));
}

std::vector<fs::path> model_roots() {
    std::vector<fs::path> roots;
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        // Installed (PREFIX/bin/vit -> PREFIX/share/vit/models), then the build tree of a checkout (build/vit).
        for (const fs::path& r : {exe.parent_path() / "../share/vit/models", exe.parent_path() / "../models"})
            if (fs::is_directory(r, ec)) roots.push_back(fs::weakly_canonical(r, ec));
    }
    if (*VIT_SOURCE_MODELS_DIR && fs::is_directory(VIT_SOURCE_MODELS_DIR, ec)) roots.push_back(VIT_SOURCE_MODELS_DIR);
    return roots;
}

std::optional<fs::path> find_builtin_model(const std::string& name) {
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) return std::nullopt;
    std::error_code ec;
    for (const fs::path& root : model_roots())
        if (fs::exists(root / name / "config.json", ec)) return fs::weakly_canonical(root / name, ec);
    return std::nullopt;
}

std::vector<std::pair<std::string, fs::path>> builtin_models() {
    std::vector<std::pair<std::string, fs::path>> out;
    std::error_code ec;
    for (const fs::path& root : model_roots())
        for (const auto& d : fs::directory_iterator(root, ec)) {
            const std::string name = d.path().filename().string();
            const bool seen = std::any_of(out.begin(), out.end(), [&](const auto& m) { return m.first == name; });
            if (!seen && fs::exists(d.path() / "config.json", ec))
                out.emplace_back(name, fs::weakly_canonical(d.path(), ec));
        }
    std::sort(out.begin(), out.end());
    return out;
}

fs::path builtin_models_dir() {
    if (auto dir = find_builtin_model(kDefaultModelName)) return dir->parent_path();
    return VIT_SOURCE_MODELS_DIR;
}

fs::path default_model_dir() {
    if (const char* env = std::getenv("VIT_DEFAULT_MODEL"); env && *env) return env;
    return builtin_models_dir() / kDefaultModelName;
}

fs::path resolve_model_arg(const std::string& arg) {
    std::error_code ec;
    if (fs::exists(arg, ec)) return arg;  // a directory, or a file that load_model_dir names as the wrong thing
    if (auto dir = find_builtin_model(arg)) return *dir;
    std::string repo_id, revision;
    if (parse_hub_arg(arg, repo_id, revision)) {
        try {
            return hub_model_dir(repo_id, revision);
        } catch (const hub::HubError& e) {
            if (e.kind != hub::HubError::Kind::NotFound) throw;
            throw hub::HubError(e.kind, arg + ": no such directory or built-in model, and on the Hub: " + e.what());
        }
    }
    std::string names;
    for (const auto& [name, dir] : builtin_models()) names += (names.empty() ? "" : ", ") + name;
    throw ModelError(arg + ": not a model directory (expected DIR/config.json), a built-in model name (" +
                     (names.empty() ? "none installed" : names) + ") or a Hub id ORG/NAME");
}

ModelSpec ModelOptions::resolve() const {
    if (!config.empty()) return load_model_spec(config, weights);
    const fs::path dir = model_dir.empty() ? default_model_dir() : resolve_model_arg(model_dir);
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
