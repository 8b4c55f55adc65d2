// Model configuration: parsing and validation of config.json with errors that name the offending key.
#include "config.hpp"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "errors.hpp"
#include "hub_formats.hpp"
#include "json_util.hpp"

namespace vit {
namespace {

using nlohmann::json;

// Hostile-input limits, checked before the work they bound.
constexpr std::uintmax_t kMaxConfigBytes = 16u << 20;  // config.json; an inline ImageNet-21k list is ~0.5 MB
constexpr std::uintmax_t kMaxLabelsBytes = 64u << 20;  // labels file
constexpr std::size_t kMaxJsonDepth = 16;              // the schema needs 3 levels
constexpr int kMaxDepth = 1024;                        // transformer blocks
constexpr int kMaxClasses = 1 << 20;                   // labels are generated for each class when absent

[[noreturn]] void wrong_type(const char* section, const char* key, const json& v) {
    throw ModelError(std::string(section) + "." + key + " has the wrong type: got " + std::string(v.type_name()) + " " +
                     brief(v));
}

// nlohmann's get<int>/get<float> convert silently (bool -> 1, 2^32 + 224 -> 224, 224.7 -> 224, 1e30 -> UB):
// keys are read through these instead, which take only values of the right kind and range.
void read_value(const json& v, const char* section, const char* key, int& out) {
    if (v.is_number_unsigned()) {
        if (v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<int>::max()))
            throw ModelError(std::string(section) + "." + key + " " + v.dump() + " is out of range");
    } else if (v.is_number_integer()) {
        if (v.get<std::int64_t>() < std::numeric_limits<int>::min())
            throw ModelError(std::string(section) + "." + key + " " + v.dump() + " is out of range");
    } else {
        wrong_type(section, key, v);  // also a float: sizes are integers
    }
    out = static_cast<int>(v.get<std::int64_t>());
}

void read_value(const json& v, const char* section, const char* key, double& out) {
    if (!v.is_number()) wrong_type(section, key, v);
    out = v.get<double>();
}

void read_value(const json& v, const char* section, const char* key, bool& out) {
    if (!v.is_boolean()) wrong_type(section, key, v);
    out = v.get<bool>();
}

void read_value(const json& v, const char* section, const char* key, std::string& out) {
    if (!v.is_string()) wrong_type(section, key, v);
    out = v.get<std::string>();
}

void read_value(const json& v, const char* section, const char* key, std::vector<float>& out) {
    if (!v.is_array()) wrong_type(section, key, v);
    out.clear();
    for (const auto& e : v) {
        if (!e.is_number()) wrong_type(section, key, v);
        const double d = e.get<double>();
        if (!(std::fabs(d) <= std::numeric_limits<float>::max()))  // also NaN; the cast would be undefined
            throw ModelError(std::string(section) + "." + key + " values must be finite floats, got " + e.dump());
        out.push_back(static_cast<float>(d));
    }
}

// Reads an optional key into `out`, with messages that name `section.key`.
template <typename T>
void get_opt(const json& j, const char* section, const char* key, T& out) {
    auto it = j.find(key);
    if (it == j.end()) return;
    read_value(*it, section, key, out);
}

// Required keys name themselves when absent.
template <typename T>
void get_req(const json& j, const char* section, const char* key, T& out) {
    if (!j.contains(key)) throw ModelError(std::string(section) + "." + key + " is missing");
    get_opt(j, section, key, out);
}

void require_positive(const char* key, long v) {
    if (v <= 0) throw ModelError(std::string(key) + " must be positive, got " + std::to_string(v));
}

void reject_unknown_keys(const json& j, const char* section, std::initializer_list<const char*> known) {
    for (auto it = j.begin(); it != j.end(); ++it) {
        bool ok = false;
        for (const char* k : known) ok = ok || it.key() == k;
        if (!ok) throw ModelError(std::string(section) + "." + it.key() + " is not a known key");
    }
}

}  // namespace

namespace {

// One table per enum: the config's strings.
const std::initializer_list<EnumName<GlobalPool>> kPools = {{GlobalPool::Token, "token"},
                                                            {GlobalPool::Avg, "avg"},
                                                            {GlobalPool::TokenDist, "token_dist"},
                                                            {GlobalPool::TokenAvg, "token_avg"}};
const std::initializer_list<EnumName<Interpolation>> kInterps = {
    {Interpolation::Bicubic, "bicubic"}, {Interpolation::Bilinear, "bilinear"}, {Interpolation::Nearest, "nearest"}};
const std::initializer_list<EnumName<Activation>> kActs = {{Activation::Gelu, "gelu"},
                                                           {Activation::GeluTanh, "gelu_tanh"},
                                                           {Activation::QuickGelu, "quick_gelu"},
                                                           {Activation::SwiGlu, "swiglu"}};
const std::initializer_list<EnumName<PosEmbedPrefix>> kPosPrefix = {
    {PosEmbedPrefix::All, "all"}, {PosEmbedPrefix::Class, "class"}, {PosEmbedPrefix::None, "none"}};
const std::initializer_list<EnumName<PosResample>> kPosResample = {{PosResample::BicubicAntialias, "bicubic_antialias"},
                                                                   {PosResample::Bicubic, "bicubic"}};
const std::initializer_list<EnumName<Layout>> kLayouts = {{Layout::Timm, "timm"},
                                                          {Layout::HfVit, "transformers-vit"},
                                                          {Layout::HfDeit, "transformers-deit"},
                                                          {Layout::HfDeitDistilled, "transformers-deit-distilled"},
                                                          {Layout::HfDinov2, "transformers-dinov2"},
                                                          {Layout::HfDinov2Registers, "transformers-dinov2-registers"}};
const std::initializer_list<EnumName<ResizeMode>> kResizeModes = {{ResizeMode::ShorterSide, "shorter"},
                                                                  {ResizeMode::Exact, "exact"}};
const std::initializer_list<EnumName<CropRounding>> kCropRoundings = {{CropRounding::Round, "round"},
                                                                      {CropRounding::Floor, "floor"}};

// An optional enum key: its string, mapped through the enum's table.
template <typename E>
void get_enum(const json& j, const char* section, const char* key, std::initializer_list<EnumName<E>> table, E& out) {
    std::string s = enum_to_string(table, out);
    get_opt(j, section, key, s);
    out = enum_from_string(table, s, std::string(section) + "." + key);
}

}  // namespace

std::string to_string(Interpolation i) { return enum_to_string(kInterps, i); }
std::string to_string(GlobalPool p) { return enum_to_string(kPools, p); }
std::string to_string(Activation a) { return enum_to_string(kActs, a); }
std::string to_string(PosEmbedPrefix p) { return enum_to_string(kPosPrefix, p); }
std::string to_string(PosResample r) { return enum_to_string(kPosResample, r); }
std::string to_string(Layout l) { return enum_to_string(kLayouts, l); }
std::string to_string(ResizeMode m) { return enum_to_string(kResizeModes, m); }
std::string to_string(CropRounding r) { return enum_to_string(kCropRoundings, r); }

int ModelConfig::pos_embed_prefix_tokens() const {
    switch (pos_embed_prefix) {
        case PosEmbedPrefix::All: return num_prefix_tokens();
        case PosEmbedPrefix::Class: return class_token ? 1 : 0;
        case PosEmbedPrefix::None: return 0;
    }
    return 0;
}

void from_json(const json& j, ModelConfig& c) {
    if (!j.is_object()) throw ModelError("model must be an object, got " + std::string(j.type_name()));
    reject_unknown_keys(
        j, "model", {"image_size",  "patch_size", "in_chans",         "embed_dim",      "depth",        "num_heads",
                     "mlp_dim",     "qkv_bias",   "patch_bias",       "layer_norm_eps", "num_classes",  "class_token",
                     "dist_token",  "reg_tokens", "pos_embed_prefix", "pos_embed_grid", "pos_resample", "norm_pre",
                     "layer_scale", "act",        "global_pool",      "fc_norm",        "layout"});
    get_req(j, "model", "image_size", c.image_size);
    get_req(j, "model", "patch_size", c.patch_size);
    get_opt(j, "model", "in_chans", c.in_chans);
    get_req(j, "model", "embed_dim", c.embed_dim);
    get_req(j, "model", "depth", c.depth);
    get_req(j, "model", "num_heads", c.num_heads);
    get_req(j, "model", "mlp_dim", c.mlp_dim);
    get_opt(j, "model", "qkv_bias", c.qkv_bias);
    get_opt(j, "model", "patch_bias", c.patch_bias);
    get_opt(j, "model", "layer_norm_eps", c.layer_norm_eps);
    get_req(j, "model", "num_classes", c.num_classes);
    get_opt(j, "model", "class_token", c.class_token);
    get_opt(j, "model", "dist_token", c.dist_token);
    get_opt(j, "model", "reg_tokens", c.reg_tokens);
    get_enum(j, "model", "pos_embed_prefix", kPosPrefix, c.pos_embed_prefix);
    get_opt(j, "model", "pos_embed_grid", c.pos_embed_grid);
    get_enum(j, "model", "pos_resample", kPosResample, c.pos_resample);
    get_opt(j, "model", "norm_pre", c.norm_pre);
    get_opt(j, "model", "layer_scale", c.layer_scale);
    get_enum(j, "model", "act", kActs, c.act);
    get_enum(j, "model", "global_pool", kPools, c.global_pool);
    get_opt(j, "model", "fc_norm", c.fc_norm);
    get_enum(j, "model", "layout", kLayouts, c.layout);
}

void ModelConfig::validate() const {
    require_positive("model.image_size", image_size);
    require_positive("model.patch_size", patch_size);
    require_positive("model.in_chans", in_chans);
    require_positive("model.embed_dim", embed_dim);
    require_positive("model.depth", depth);
    require_positive("model.num_heads", num_heads);
    require_positive("model.mlp_dim", mlp_dim);
    require_positive("model.num_classes", num_classes);
    if (depth > kMaxDepth)
        throw ModelError("model.depth " + std::to_string(depth) + " is too large (at most " +
                         std::to_string(kMaxDepth) + ")");
    if (num_classes > kMaxClasses)
        throw ModelError("model.num_classes " + std::to_string(num_classes) + " is too large (at most " +
                         std::to_string(kMaxClasses) + ")");
    if (!(layer_norm_eps > 0 && layer_norm_eps < 1))
        throw ModelError("model.layer_norm_eps must be in (0, 1), got " + std::to_string(layer_norm_eps));
    if (image_size % patch_size != 0)
        throw ModelError("model.image_size " + std::to_string(image_size) + " is not divisible by model.patch_size " +
                         std::to_string(patch_size));
    if (embed_dim % num_heads != 0)
        throw ModelError("model.embed_dim " + std::to_string(embed_dim) + " is not divisible by model.num_heads " +
                         std::to_string(num_heads));
    if (in_chans != 1 && in_chans != 3)
        throw ModelError("model.in_chans " + std::to_string(in_chans) + " is not supported (expected 1 or 3)");
    if (reg_tokens < 0 || reg_tokens > 1024)
        throw ModelError("model.reg_tokens must be in [0, 1024], got " + std::to_string(reg_tokens));
    if (pos_embed_grid < 0 || pos_embed_grid > 4096)
        throw ModelError("model.pos_embed_grid must be in [0, 4096], got " + std::to_string(pos_embed_grid));
    if (global_pool != GlobalPool::Avg && !class_token)
        throw ModelError("model.global_pool \"" + to_string(global_pool) + "\" needs model.class_token true");
    if (global_pool == GlobalPool::TokenDist && !dist_token)
        throw ModelError("model.global_pool \"token_dist\" needs model.dist_token true");
    if (dist_token && !class_token) throw ModelError("model.dist_token true needs model.class_token true");
    if (fc_norm && global_pool != GlobalPool::Avg)
        throw ModelError("model.fc_norm true needs model.global_pool \"avg\"");
    // Keep every tensor size well inside 32-bit element counts: guards all later shape products.
    const long long limit = 1LL << 31;
    if (1LL * image_size * image_size > limit || 1LL * embed_dim * mlp_dim > limit ||
        1LL * embed_dim * num_classes > limit || 1LL * embed_dim * embed_dim * 3 > limit ||
        1LL * num_tokens() * embed_dim > limit || 1LL * in_chans * patch_size * patch_size * embed_dim > limit ||
        1LL * pos_embed_tokens() * embed_dim > limit ||
        1LL * num_tokens() * num_tokens() * num_heads > limit)  // one image's attention scores
        throw ModelError("model dimensions are too large (a tensor would exceed 2^31 elements)");
}

void to_json(json& j, const ModelConfig& c) {
    j = json{{"image_size", c.image_size},
             {"patch_size", c.patch_size},
             {"in_chans", c.in_chans},
             {"embed_dim", c.embed_dim},
             {"depth", c.depth},
             {"num_heads", c.num_heads},
             {"mlp_dim", c.mlp_dim},
             {"qkv_bias", c.qkv_bias},
             {"patch_bias", c.patch_bias},
             {"layer_norm_eps", c.layer_norm_eps},
             {"num_classes", c.num_classes},
             {"class_token", c.class_token},
             {"dist_token", c.dist_token},
             {"reg_tokens", c.reg_tokens},
             {"pos_embed_prefix", to_string(c.pos_embed_prefix)},
             {"pos_embed_grid", c.stored_grid()},
             {"pos_resample", to_string(c.pos_resample)},
             {"norm_pre", c.norm_pre},
             {"layer_scale", c.layer_scale},
             {"act", to_string(c.act)},
             {"global_pool", to_string(c.global_pool)},
             {"fc_norm", c.fc_norm},
             {"layout", to_string(c.layout)}};
}

void from_json(const json& j, PreprocessConfig& c) {
    if (!j.is_object()) throw ModelError("preprocess must be an object, got " + std::string(j.type_name()));
    reject_unknown_keys(j, "preprocess",
                        {"resize", "resize_mode", "crop", "crop_rounding", "interpolation", "antialias",
                         "rescale_factor", "mean", "std"});
    get_opt(j, "preprocess", "resize", c.resize);
    get_enum(j, "preprocess", "resize_mode", kResizeModes, c.resize_mode);
    get_opt(j, "preprocess", "crop", c.crop);
    get_enum(j, "preprocess", "crop_rounding", kCropRoundings, c.crop_rounding);
    get_enum(j, "preprocess", "interpolation", kInterps, c.interpolation);
    get_opt(j, "preprocess", "antialias", c.antialias);
    get_opt(j, "preprocess", "rescale_factor", c.rescale_factor);
    get_opt(j, "preprocess", "mean", c.mean);
    get_opt(j, "preprocess", "std", c.std);
}

void PreprocessConfig::validate(int in_chans, int image_size) const {
    require_positive("preprocess.resize", resize);
    require_positive("preprocess.crop", crop);
    if (crop != image_size)
        throw ModelError("preprocess.crop " + std::to_string(crop) + " does not match model.image_size " +
                         std::to_string(image_size));
    if (resize < crop)
        throw ModelError("preprocess.resize " + std::to_string(resize) + " is smaller than preprocess.crop " +
                         std::to_string(crop));
    if (static_cast<int>(mean.size()) != in_chans)
        throw ModelError("preprocess.mean has " + std::to_string(mean.size()) + " values, expected " +
                         std::to_string(in_chans) + " (model.in_chans)");
    if (static_cast<int>(std.size()) != in_chans)
        throw ModelError("preprocess.std has " + std::to_string(std.size()) + " values, expected " +
                         std::to_string(in_chans) + " (model.in_chans)");
    for (float s : std)
        if (!(s > 0)) throw ModelError("preprocess.std values must be positive, got " + std::to_string(s));
    if (!(rescale_factor >= 0 && rescale_factor <= 1e6))
        throw ModelError("preprocess.rescale_factor must be in [0, 1e6], got " + std::to_string(rescale_factor));
}

void to_json(json& j, const PreprocessConfig& c) {
    j = json{{"resize", c.resize},
             {"resize_mode", to_string(c.resize_mode)},
             {"crop", c.crop},
             {"crop_rounding", to_string(c.crop_rounding)},
             {"interpolation", to_string(c.interpolation)},
             {"antialias", c.antialias},
             {"rescale_factor", c.rescale_factor},
             {"mean", c.mean},
             {"std", c.std}};
}

namespace {

std::vector<std::string> read_labels_file(const std::filesystem::path& p) {
    std::istringstream in(read_small_file(p, "labels", kMaxLabelsBytes));
    std::vector<std::string> out;
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        out.push_back(line);
    }
    while (!out.empty() && out.back().empty()) out.pop_back();  // tolerate a trailing blank line
    return out;
}

}  // namespace

namespace {

// "labels": a file name (relative to the config) or an inline list of strings.
std::vector<std::string> parse_labels(const json& l, const std::filesystem::path& base) {
    std::vector<std::string> out;
    if (l.is_string()) {
        std::filesystem::path lp = l.get<std::string>();
        return read_labels_file(lp.is_absolute() ? lp : base / lp);
    }
    if (!l.is_array())
        throw ModelError("labels must be a file name or a list of strings, got " + std::string(l.type_name()));
    for (const auto& e : l) {
        if (!e.is_string()) throw ModelError("labels must be strings, got " + brief(e));
        out.push_back(e.get<std::string>());
    }
    return out;
}

// A model written by `vit fit`: {"backbone": DIR, "head": FILE, "labels": [...]}: the backbone directory (any
// format) with its head replaced by FILE's, on the backbone's pooled features.
ModelSpec load_fitted_spec(const json& j, const std::filesystem::path& config_file) {
    namespace fs = std::filesystem;
    const fs::path base = config_file.parent_path();
    for (const char* k : {"model", "weights", "preprocess"})
        if (j.contains(k))
            throw ModelError(std::string(k) + " cannot be given with backbone (the backbone has its own)");
    for (const char* k : {"head", "labels"})
        if (!j.contains(k)) throw ModelError(std::string(k) + " is missing (a model with a backbone needs it)");
    if (!j["backbone"].is_string()) throw ModelError("backbone must be a directory name, got " + brief(j["backbone"]));
    if (!j["head"].is_string()) throw ModelError("head must be a file name, got " + brief(j["head"]));
    const std::string named = j["backbone"].get<std::string>();
    fs::path bb = named;
    if (bb.is_relative()) bb = base / bb;  // relative to this config's directory, not to the working directory
    std::error_code ec;
    if (!fs::is_directory(bb, ec))
        throw ModelError("backbone \"" + named + "\": no model directory at " + bb.string() +
                         " (moved or deleted? a relative backbone is resolved against the config's directory)");
    ModelSpec spec = load_model_dir(bb);
    spec.config_path = config_file;
    fs::path head = j["head"].get<std::string>();
    spec.head_path = head.is_relative() ? base / head : head;
    spec.labels = parse_labels(j["labels"], base);
    if (spec.labels.size() < 2) throw ModelError("labels must name at least 2 classes");
    spec.model.num_classes = static_cast<int>(spec.labels.size());
    if (spec.model.global_pool == GlobalPool::TokenDist) spec.model.global_pool = GlobalPool::Token;  // class token
    spec.family += " + fitted head";
    spec.origins.push_back({"head", spec.head_path.string() + " (vit fit) on the features of " + bb.string()});
    spec.origins.push_back({"labels", config_file.string()});
    return spec;
}

}  // namespace

ModelSpec load_model_spec(const std::filesystem::path& config_file, const std::filesystem::path& weights_override) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(config_file, ec))
        throw ModelError(config_file.string() + ": is a directory, expected a config JSON file");
    const std::string text = read_small_file(config_file, "config", kMaxConfigBytes);
    json j;
    try {
        j = parse_bounded(text, JsonLimits{kMaxJsonDepth});
    } catch (const ModelError& e) {
        throw ModelError(config_file.string() + ": invalid JSON: " + e.what());
    } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers such as 1e400
        throw ModelError(config_file.string() + ": invalid JSON: " + e.what());
    }
    ModelSpec spec;
    spec.config_path = config_file;
    const fs::path base = config_file.parent_path();
    try {
        if (!j.is_object()) throw ModelError("top level must be an object");
        reject_unknown_keys(j, "config",
                            {"model", "preprocess", "labels", "weights", "name", "description", "backbone", "head"});
        if (j.contains("backbone")) return load_fitted_spec(j, config_file);
        if (!j.contains("model")) throw ModelError("model is missing");
        spec.model = j.at("model").get<ModelConfig>();
        spec.model.validate();
        if (j.contains("preprocess")) spec.preprocess = j.at("preprocess").get<PreprocessConfig>();
        else {  // timm's default eval transform for the model's size
            spec.preprocess.crop = spec.model.image_size;
            spec.preprocess.resize = static_cast<int>(spec.model.image_size / 0.875);
            if (spec.model.in_chans == 1) spec.preprocess.mean = {0.5f}, spec.preprocess.std = {0.5f};
        }
        spec.preprocess.validate(spec.model.in_chans, spec.model.image_size);

        if (j.contains("labels")) {
            spec.labels = parse_labels(j.at("labels"), base);
            if (static_cast<int>(spec.labels.size()) != spec.model.num_classes)
                throw ModelError("labels has " + std::to_string(spec.labels.size()) + " entries, expected " +
                                 std::to_string(spec.model.num_classes) + " (model.num_classes)");
        } else {
            for (int i = 0; i < spec.model.num_classes; ++i) spec.labels.push_back("class_" + std::to_string(i));
        }

        fs::path wp;
        if (!weights_override.empty()) wp = weights_override;
        else if (j.contains("weights")) {
            if (!j.at("weights").is_string()) throw ModelError("weights must be a file name");
            wp = j.at("weights").get<std::string>();
            if (wp.is_relative()) wp = base / wp;
        } else {
            wp = base / "model.safetensors";
        }
        spec.weights_path = wp;
    } catch (const ModelError& e) {
        throw ModelError(config_file.string() + ": " + e.what());
    } catch (const json::exception& e) {
        throw ModelError(config_file.string() + ": " + e.what());
    }
    return spec;
}

void set_image_size(ModelSpec& spec, int image_size) {
    ModelConfig& c = spec.model;
    if (image_size <= 0 || image_size % c.patch_size != 0)
        throw ModelError("image size " + std::to_string(image_size) + " is not a positive multiple of the patch size " +
                         std::to_string(c.patch_size));
    if (c.pos_embed_grid == 0) c.pos_embed_grid = c.grid();  // keep the stored grid
    PreprocessConfig& p = spec.preprocess;
    p.resize = static_cast<int>(static_cast<long long>(p.resize) * image_size / p.crop);
    p.crop = image_size;
    c.image_size = image_size;
    c.validate();
    p.validate(c.in_chans, c.image_size);
    spec.origins.push_back(
        {"model.image_size", "--image-size " + std::to_string(image_size) + " (position embeddings resampled from a " +
                                 std::to_string(c.stored_grid()) + "x" + std::to_string(c.stored_grid()) + " grid)"});
}

ModelSpec load_model_dir(const std::filesystem::path& dir, int image_size) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw ModelError(dir.string() + ": not a model directory (expected DIR/config.json)");
    const fs::path file = dir / "config.json";
    if (!fs::exists(file, ec))
        throw ModelError(dir.string() + ": no config.json (expected a vit, transformers or timm model directory)");
    json j;
    try {
        j = parse_bounded(read_small_file(file, "config", kMaxConfigBytes), JsonLimits{kMaxJsonDepth});
    } catch (const ModelError& e) {
        throw ModelError(file.string() + ": invalid JSON: " + e.what());
    } catch (const json::exception& e) {
        throw ModelError(file.string() + ": invalid JSON: " + e.what());
    }
    ModelSpec spec;
    if (j.is_object() && j.contains("model_type")) spec = load_transformers_dir(dir, j);
    else if (j.is_object() && j.contains("architecture")) spec = load_timm_dir(dir, j);
    else spec = load_model_spec(file);
    if (image_size > 0 && image_size != spec.model.image_size) {
        try {
            set_image_size(spec, image_size);
        } catch (const ModelError& e) {
            throw ModelError(dir.string() + ": " + e.what());
        }
    }
    return spec;
}

}  // namespace vit
