// transformers model directories: config.json (model_type, architectures, sizes, id2label) and
// preprocessor_config.json (the image processor's settings), read with transformers' semantics.
#include <cmath>

#include "errors.hpp"
#include "hub_formats.hpp"
#include "json_util.hpp"

namespace vit {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// One row per supported (model_type, architecture): the tensor layout and what the family's forward does.
struct HfFamily {
    const char* model_type;
    const char* architecture;
    Layout layout;
    const char* family;
    GlobalPool pool;
    bool dist_token;
    bool layer_scale;
    PosEmbedPrefix pos_prefix;
    PosResample resample;   // its interpolate_pos_encoding (bicubic; antialiased for dinov2_with_registers)
    const char* processor;  // the image processor class the family ships with (its defaults apply)
    double default_eps;
    int default_patch;
};

const HfFamily kFamilies[] = {
    {"vit", "ViTForImageClassification", Layout::HfVit, "vit", GlobalPool::Token, false, false, PosEmbedPrefix::All,
     PosResample::Bicubic, "ViTImageProcessor", 1e-12, 16},
    {"deit", "DeiTForImageClassificationWithTeacher", Layout::HfDeitDistilled, "deit-distilled", GlobalPool::TokenDist,
     true, false, PosEmbedPrefix::All, PosResample::Bicubic, "DeiTImageProcessor", 1e-12, 16},
    {"deit", "DeiTForImageClassification", Layout::HfDeit, "deit", GlobalPool::Token, true, false, PosEmbedPrefix::All,
     PosResample::Bicubic, "DeiTImageProcessor", 1e-12, 16},
    {"dinov2", "Dinov2ForImageClassification", Layout::HfDinov2, "dinov2", GlobalPool::TokenAvg, false, true,
     PosEmbedPrefix::Class, PosResample::Bicubic, "BitImageProcessor", 1e-6, 14},
    {"dinov2_with_registers", "Dinov2WithRegistersForImageClassification", Layout::HfDinov2Registers,
     "dinov2-registers", GlobalPool::TokenAvg, false, true, PosEmbedPrefix::Class, PosResample::BicubicAntialias,
     "BitImageProcessor", 1e-6, 14},
};

// hidden_act -> activation (transformers' ACT2FN names).
const std::initializer_list<EnumName<Activation>> kHiddenActs = {{Activation::Gelu, "gelu"},
                                                                 {Activation::GeluTanh, "gelu_new"},
                                                                 {Activation::GeluTanh, "gelu_pytorch_tanh"},
                                                                 {Activation::GeluTanh, "gelu_fast"},
                                                                 {Activation::QuickGelu, "quick_gelu"}};

// A processor's defaults (used for keys its preprocessor_config.json leaves out).
struct ProcessorDefaults {
    const char* name;
    bool default_to_square;  // get_size_dict's reading of an int `size`
    int size;                // as {height, width} or {shortest_edge}
    bool do_center_crop;
    int crop;
    int resample;  // PIL code
    float mean, mean2, mean3, std1, std2, std3;
};

const ProcessorDefaults kProcessors[] = {
    {"ViTImageProcessor", true, 224, false, 224, 2, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f},
    {"DeiTImageProcessor", true, 256, true, 224, 3, 0.485f, 0.456f, 0.406f, 0.229f, 0.224f, 0.225f},
    {"BitImageProcessor", false, 224, true, 224, 3, 0.48145466f, 0.4578275f, 0.40821073f, 0.26862954f, 0.26130258f,
     0.27577711f},
};

const ProcessorDefaults& processor_defaults(std::string name) {
    // Legacy FeatureExtractor names and Fast variants read the same keys.
    for (const char* suffix : {"FeatureExtractor", "ImageProcessorFast"}) {
        const std::string s(suffix);
        if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0)
            name = name.substr(0, name.size() - s.size()) + "ImageProcessor";
    }
    for (const auto& p : kProcessors)
        if (name == p.name) return p;
    std::string known;
    for (const auto& p : kProcessors) known += std::string(known.empty() ? "" : ", ") + p.name;
    throw ModelError("image processor \"" + name + "\" is not supported (supported: " + known + ")");
}

int int_key(const json& j, const char* key, int fallback) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_number_integer()) throw ModelError(std::string(key) + " must be an integer, got " + brief(*it));
    const auto v = it->get<std::int64_t>();
    if (v <= 0 || v > (1 << 20)) throw ModelError(std::string(key) + " " + std::to_string(v) + " is out of range");
    return static_cast<int>(v);
}

// image_size may be an int or [h, w]; only square inputs are supported.
int square_size(const json& j, const char* key, int fallback) {
    auto it = j.find(key);
    if (it != j.end() && it->is_array()) {
        if (it->size() != 2 || !(*it)[0].is_number_integer() || (*it)[0] != (*it)[1])
            throw ModelError(std::string(key) + " " + brief(*it) + " is not square: only square inputs are supported");
        return int_key(json{{key, (*it)[0]}}, key, fallback);
    }
    return int_key(j, key, fallback);
}

// transformers' get_size_dict: an int is {height, width} or {shortest_edge} depending on the processor.
struct SizeDict {
    int value = 0;
    bool shortest_edge = false;
};

SizeDict size_dict(const json& v, const char* key, bool default_to_square) {
    if (v.is_number_integer()) return {int_key(json{{key, v}}, key, 0), !default_to_square};
    if (v.is_object()) {
        if (v.contains("shortest_edge")) {
            if (v.contains("longest_edge"))
                throw ModelError(std::string(key) + " " + brief(v) + ": longest_edge is not supported");
            return {int_key(v, "shortest_edge", 0), true};
        }
        const int h = int_key(v, "height", 0), w = int_key(v, "width", 0);
        if (!h || h != w)
            throw ModelError(std::string(key) + " " + brief(v) + " is not square: only square inputs are supported");
        return {h, false};
    }
    throw ModelError(std::string(key) + " must be an integer or an object, got " + brief(v));
}

bool bool_key(const json& j, const char* key, bool fallback) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) throw ModelError(std::string(key) + " must be true or false, got " + brief(*it));
    return it->get<bool>();
}

std::vector<float> floats_key(const json& j, const char* key, std::vector<float> fallback) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (it->is_number()) return std::vector<float>(fallback.size(), it->get<float>());
    if (!it->is_array()) throw ModelError(std::string(key) + " must be a list of numbers, got " + brief(*it));
    std::vector<float> out;
    for (const auto& e : *it) {
        if (!e.is_number()) throw ModelError(std::string(key) + " must be a list of numbers, got " + brief(*it));
        out.push_back(e.get<float>());
    }
    return out;
}

Interpolation pil_resample(int code) {
    switch (code) {
        case 0: return Interpolation::Nearest;
        case 2: return Interpolation::Bilinear;
        case 3: return Interpolation::Bicubic;
        default:
            throw ModelError("resample " + std::to_string(code) +
                             " is not supported (0 nearest, 2 bilinear and 3 bicubic are; 1 lanczos, 4 box and "
                             "5 hamming are not)");
    }
}

void read_preprocessor(const fs::path& dir, const HfFamily& fam, ModelSpec& spec) {
    const fs::path file = dir / "preprocessor_config.json";
    std::error_code ec;
    json j = json::object();
    const bool present = fs::exists(file, ec);
    if (present) {
        try {
            j = parse_bounded(read_small_file(file, "preprocessor config", 1u << 20), JsonLimits{8});
        } catch (const ModelError& e) {
            throw ModelError(file.string() + ": invalid JSON: " + e.what());
        } catch (const json::exception& e) {
            throw ModelError(file.string() + ": invalid JSON: " + e.what());
        }
        if (!j.is_object()) throw ModelError(file.string() + ": expected a JSON object");
    }
    const std::string src = present ? "preprocessor_config.json" : std::string("defaults of ") + fam.processor;
    try {
        std::string type = fam.processor;
        for (const char* k : {"image_processor_type", "feature_extractor_type"})
            if (j.contains(k) && j[k].is_string()) type = j[k].get<std::string>();
        const ProcessorDefaults& d = processor_defaults(type);
        PreprocessConfig& p = spec.preprocess;
        if (!bool_key(j, "do_resize", true)) throw ModelError("do_resize false is not supported (inputs vary in size)");
        const SizeDict size = j.contains("size") ? size_dict(j["size"], "size", d.default_to_square)
                                                 : SizeDict{d.size, !d.default_to_square};
        p.resize = size.value;
        p.resize_mode = size.shortest_edge ? ResizeMode::ShorterSide : ResizeMode::Exact;
        const bool crop = bool_key(j, "do_center_crop", d.do_center_crop);
        if (crop) {
            p.crop = j.contains("crop_size") ? size_dict(j["crop_size"], "crop_size", true).value : d.crop;
        } else {
            if (size.shortest_edge)
                throw ModelError("size {shortest_edge} without do_center_crop gives non-square inputs (not supported)");
            p.crop = p.resize;
        }
        p.crop_rounding = CropRounding::Floor;
        int resample = d.resample;
        if (j.contains("resample") && !j["resample"].is_null()) {
            if (!j["resample"].is_number_integer())
                throw ModelError("resample must be a PIL filter code, got " + brief(j["resample"]));
            resample = j["resample"].get<int>();
        }
        p.interpolation = pil_resample(resample);
        p.antialias = true;  // PIL's resize
        p.rescale_factor = bool_key(j, "do_rescale", true)
                               ? (j.contains("rescale_factor") && j["rescale_factor"].is_number()
                                      ? j["rescale_factor"].get<double>()
                                      : 1.0 / 255.0)
                               : 1.0;
        if (bool_key(j, "do_normalize", true)) {
            p.mean = floats_key(j, "image_mean", {d.mean, d.mean2, d.mean3});
            p.std = floats_key(j, "image_std", {d.std1, d.std2, d.std3});
        } else {
            p.mean.assign(3, 0.f);
            p.std.assign(3, 1.f);
        }
        if (spec.model.in_chans == 1) p.mean.resize(1), p.std.resize(1);
        spec.model.image_size = p.crop;
        spec.origins.push_back(
            {"preprocess", src + " (" + d.name + ": " + (size.shortest_edge ? "shortest_edge" : "height x width") +
                               " resize" + (crop ? ", centre crop with (h - crop) // 2" : "") + ", PIL resample)"});
    } catch (const ModelError& e) {
        throw ModelError((present ? file : dir).string() + ": " + e.what());
    }
}

}  // namespace

ModelSpec load_transformers_dir(const fs::path& dir, const json& j) {
    ModelSpec spec = hub_spec(dir, "transformers");
    const fs::path file = spec.config_path;
    const HfFamily* fam = nullptr;
    try {
        if (!j["model_type"].is_string())
            throw ModelError("model_type must be a string, got " + brief(j["model_type"]));
        const std::string type = j["model_type"].get<std::string>();
        std::string arch;
        if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
            j["architectures"][0].is_string())
            arch = j["architectures"][0].get<std::string>();
        std::string known;
        for (const auto& f : kFamilies) {
            known += std::string(known.empty() ? "" : ", ") + f.model_type + "/" + f.architecture;
            if (type == f.model_type && (arch == f.architecture || (arch.empty() && !fam))) fam = &f;
        }
        if (!fam)
            throw ModelError("model_type \"" + type + "\"" +
                             (arch.empty() ? "" : " with architecture \"" + arch + "\"") +
                             " is not supported (supported: " + known + ")");
        spec.family = fam->family;
        ModelConfig& c = spec.model;
        c.layout = fam->layout;
        c.global_pool = fam->pool;
        c.class_token = true;
        c.dist_token = fam->dist_token;
        c.layer_scale = fam->layer_scale;
        c.pos_embed_prefix = fam->pos_prefix;
        c.pos_resample = fam->resample;  // interpolate_pos_encoding: bicubic, align_corners=False
        c.embed_dim = int_key(j, "hidden_size", 768);
        c.depth = int_key(j, "num_hidden_layers", 12);
        c.num_heads = int_key(j, "num_attention_heads", 12);
        c.patch_size = int_key(j, "patch_size", fam->default_patch);
        c.in_chans = int_key(j, "num_channels", 3);
        c.qkv_bias = bool_key(j, "qkv_bias", true);
        c.layer_norm_eps = j.contains("layer_norm_eps") && j["layer_norm_eps"].is_number()
                               ? j["layer_norm_eps"].get<double>()
                               : fam->default_eps;
        const std::string act = j.contains("hidden_act") && j["hidden_act"].is_string()
                                    ? j["hidden_act"].get<std::string>()
                                    : "gelu";
        c.act = enum_from_string(kHiddenActs, act, "hidden_act");
        if (c.layout == Layout::HfDinov2 || c.layout == Layout::HfDinov2Registers) {
            double ratio = 4.0;
            if (j.contains("mlp_ratio") && j["mlp_ratio"].is_number()) ratio = j["mlp_ratio"].get<double>();
            int hidden = static_cast<int>(c.embed_dim * ratio);
            if (bool_key(j, "use_swiglu_ffn", false)) {
                c.act = Activation::SwiGlu;
                hidden = (static_cast<int>(hidden * 2.0 / 3.0) + 7) / 8 * 8;
            }
            c.mlp_dim = hidden;
            if (j.contains("layerscale_value") && !j["layerscale_value"].is_number())
                throw ModelError("layerscale_value must be a number");
        } else {
            c.mlp_dim = int_key(j, "intermediate_size", 3072);
        }
        if (c.layout == Layout::HfDinov2Registers) c.reg_tokens = int_key(j, "num_register_tokens", 4);
        const int trained = square_size(j, "image_size", 224);
        if (trained % c.patch_size)
            throw ModelError("image_size " + std::to_string(trained) + " is not divisible by patch_size " +
                             std::to_string(c.patch_size));
        c.pos_embed_grid = trained / c.patch_size;

        // Labels: id2label {"0": "tench", ...}, one per class.
        if (!j.contains("id2label") || !j["id2label"].is_object() || j["id2label"].empty())
            throw ModelError("id2label is missing (a classification model names its classes there)");
        const json& id2label = j["id2label"];
        spec.labels.assign(id2label.size(), "");
        for (const auto& [k, v] : id2label.items()) {
            std::size_t pos = 0;
            long idx = -1;
            try {
                idx = std::stol(k, &pos);
            } catch (const std::exception&) {
            }
            if (pos != k.size() || idx < 0 || idx >= static_cast<long>(id2label.size()))
                throw ModelError("id2label key \"" + k + "\" is not a class index in [0, " +
                                 std::to_string(id2label.size()) + ")");
            if (!v.is_string()) throw ModelError("id2label." + k + " must be a string, got " + brief(v));
            spec.labels[static_cast<std::size_t>(idx)] = v.get<std::string>();
        }
        c.num_classes = static_cast<int>(spec.labels.size());
        spec.origins.push_back({"model", "config.json (" + type + "/" + (arch.empty() ? fam->architecture : arch) +
                                             ", hidden_act " + act + ")"});
        spec.origins.push_back({"labels", "config.json id2label"});
    } catch (const ModelError& e) {
        throw ModelError(file.string() + ": " + e.what());
    } catch (const json::exception& e) {
        throw ModelError(file.string() + ": " + e.what());
    }
    read_preprocessor(dir, *fam, spec);
    find_hub_weights(dir, spec);
    try {
        spec.model.validate();
        spec.preprocess.validate(spec.model.in_chans, spec.model.image_size);
    } catch (const ModelError& e) {
        throw ModelError(dir.string() + ": " + e.what());
    }
    return spec;
}

}  // namespace vit
