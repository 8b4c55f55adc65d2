// Weights discovery for Hub directories (single file, sharded index, pickles refused), the spec both Hub loaders
// start from, and the built-in ImageNet-1k class names.
#include <fstream>
#include <set>
#include <sstream>

#include "errors.hpp"
#include "hub_formats.hpp"
#include "json_util.hpp"

namespace vit {

namespace fs = std::filesystem;

ModelSpec hub_spec(const fs::path& dir, const char* format) {
    ModelSpec spec;
    spec.config_path = dir / "config.json";
    spec.format = format;
    return spec;
}

void find_hub_weights(const fs::path& dir, ModelSpec& spec) {
    std::error_code ec;
    if (fs::exists(dir / "model.safetensors", ec)) {
        spec.weights_path = dir / "model.safetensors";
        return;
    }
    const fs::path index = dir / "model.safetensors.index.json";
    if (fs::exists(index, ec)) {
        nlohmann::json j;
        try {
            j = parse_bounded(read_small_file(index, "weights index", 64u << 20), JsonLimits{8});
        } catch (const ModelError& e) {
            throw ModelError(index.string() + ": invalid JSON: " + e.what());
        } catch (const nlohmann::json::exception& e) {
            throw ModelError(index.string() + ": invalid JSON: " + e.what());
        }
        if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
            throw ModelError(index.string() + ": weight_map is missing (expected {tensor name: shard file})");
        std::set<std::string> seen;
        for (const auto& [name, file] : j["weight_map"].items()) {
            if (!file.is_string())
                throw ModelError(index.string() + ": weight_map." + name + " must be a file name, got " + brief(file));
            const std::string f = file.get<std::string>();
            if (f.find('/') != std::string::npos || f == ".." || f.empty())
                throw ModelError(index.string() + ": weight_map." + name + " names \"" + f +
                                 "\", expected a file in the same directory");
            if (!seen.insert(f).second) continue;
            if (!fs::exists(dir / f, ec))
                throw ModelError(index.string() + ": shard \"" + f + "\" (holding \"" + name + "\") is missing");
            spec.weight_shards.push_back(dir / f);
        }
        if (spec.weight_shards.empty()) throw ModelError(index.string() + ": weight_map is empty");
        spec.weights_path = index;
        return;
    }
    for (const char* pickle : {"pytorch_model.bin", "pytorch_model.bin.index.json", "open_clip_pytorch_model.bin"})
        if (fs::exists(dir / pickle, ec))
            throw ModelError(dir.string() + ": has " + pickle +
                             " (PyTorch pickle) but no model.safetensors: vit reads safetensors only. Convert it "
                             "with scripts/export_weights.py (needs PyTorch), or download the repository's "
                             "model.safetensors if it has one");
    throw ModelError(dir.string() + ": no model.safetensors or model.safetensors.index.json");
}

}  // namespace vit
