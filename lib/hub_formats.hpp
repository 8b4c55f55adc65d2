// Model directories as the Hugging Face Hub serves them, read with no conversion: transformers (config.json with
// model_type, preprocessor_config.json) and timm (config.json with architecture + pretrained_cfg). Each becomes
// a ModelSpec: the architecture, the preprocessing with the source library's semantics, labels, the weights
// files, and where each setting came from.
#pragma once

#include <filesystem>

#include <nlohmann/json.hpp>

#include "config.hpp"

namespace vit {

// `config` is DIR/config.json, parsed. Errors are ModelError naming the file and key.
ModelSpec load_transformers_dir(const std::filesystem::path& dir, const nlohmann::json& config);
ModelSpec load_timm_dir(const std::filesystem::path& dir, const nlohmann::json& config);

// The spec both loaders start from: config_path DIR/config.json and the format's name ("transformers", "timm").
ModelSpec hub_spec(const std::filesystem::path& dir, const char* format);

// The weights of a Hub directory: model.safetensors, else the shards named by model.safetensors.index.json.
// A directory with only PyTorch pickles (pytorch_model.bin, *.pth) is refused with a pointer to the exporter.
void find_hub_weights(const std::filesystem::path& dir, ModelSpec& spec);

// The 1000 ImageNet-1k class names in class-index order (built into the binary).
const std::vector<std::string>& imagenet_labels();

}  // namespace vit
