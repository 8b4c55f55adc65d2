// Pieces shared by the subcommands: model selection options, thread settings, exit codes.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "model.hpp"

namespace vit::app {

enum ExitCode { kOk = 0, kFatal = 1, kSomeInputsFailed = 2 };

// --model DIR | --config FILE [--weights FILE], defaulting to the built-in model.
struct ModelOptions {
    std::string model_dir;
    std::string config;
    std::string weights;
    std::string precision = "fp32";
    int threads = 0;
    int image_size = 0;  // run at this resolution (0 = the model's own)

    void add_to(CLI::App& app, bool with_precision = true);
    ModelSpec resolve() const;  // throws ModelError
};

// The built-in default model, ImageNet-1k DeiT-tiny (models/deit-tiny-imagenet).
inline constexpr const char* kDefaultModelName = "deit-tiny-imagenet";

// Where built-in models live, in search order: PREFIX/share/vit/models next to an installed PREFIX/bin/vit,
// models/ of the checkout a build/vit belongs to, then the source tree it was built from.
std::vector<std::filesystem::path> model_roots();
// The built-in model `name` (a folder with config.json under a root), first root first.
std::optional<std::filesystem::path> find_builtin_model(const std::string& name);
// Every built-in model, by name (the first root that has a name wins).
std::vector<std::pair<std::string, std::filesystem::path>> builtin_models();

// The root that holds the default model (else the source tree's models/).
std::filesystem::path builtin_models_dir();

// $VIT_DEFAULT_MODEL, else builtin_models_dir() / kDefaultModelName.
std::filesystem::path default_model_dir();

// --model X: an existing path, else a built-in model name, else a Hub id ORG/NAME[@REV] (the cached snapshot,
// downloaded on first use unless HF_HUB_OFFLINE is set). Throws ModelError / hub::HubError naming X.
std::filesystem::path resolve_model_arg(const std::string& arg);

// Applies --threads (0 = all cores) and returns the inference thread count.
int apply_threads(int threads);

// Loads the model, printing weight warnings to stderr.
std::unique_ptr<VitModel> load_model(const ModelOptions& opt);

void warn(const std::string& msg);  // "vit: warning: ..." on stderr

}  // namespace vit::app
